# The quality sweep run on the 16-core GPU machine (device tool): 2D crystals on 11 CPU workers,
# cells on 4, 3D crystals on the GPU, all at once.  Usage: OUT=dir bash benchmarks/ddip_sweep.sh
export PYTHONPATH=src PYTHONUNBUFFERED=1
B=benchmarks/ddip_quality.py
(timeout 320 python3 $B --conditions crystal3d --samples 6 --jobs 1 --threads 4 --device cuda --entry ddip --entry 'hio-box=hio-er-sw:{"support":"box"}' --entry hio-er-sw --out $OUT/q3d > $OUT/q3d.log 2>&1) &
(timeout 320 python3 $B --conditions cells --samples 12 --jobs 4 --entry 'ddip-ri=ddip:{"parameterization":"real-imag","nonneg_real":true}' --entry 'hio-box=hio-er-sw:{"support":"box"}' --entry hio-er-sw --out $OUT/qcells > /dev/null 2>&1) &
timeout 320 python3 $B --conditions noisy,dislocation,noiseless --samples 16 --jobs 11 --entry ddip --entry 'hio-box=hio-er-sw:{"support":"box"}' --entry hio-er-sw --out $OUT/q2d 2>&1 | grep -v Warn | tail -15
wait; rm -f $OUT/*.json; tail -5 $OUT/q3d.log
