"""`doubledip info`: a readable description of good files, one-line errors (exit 2) for bad ones."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from doubledip.cli import main
from doubledip.io import Measurement, write_measurement, write_result
from doubledip.result import Result

from test_io import counts, write_edf

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "planar_cdi_1024.tif"


@pytest.fixture
def info(capsys):
    """Run ``doubledip info ARGS`` through the real entry point; return (rc, stdout, stderr)."""

    def run(*args):
        rc = main(["info", *map(str, args)])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


@pytest.fixture
def good(tmp_path, rng):
    mask = np.zeros((16, 16), np.uint8)
    mask[7:10, 7:10] = 1
    path = tmp_path / "good.npz"
    write_measurement(path, Measurement(counts(rng, (16, 16), np.float32), mask, meta={"kind": "test"}))
    return path


def test_table(info, good):
    rc, out, err = info(good)
    assert rc == 0 and err == ""
    assert "16 x 16" in out and "3.52 %" in out and "float32" in out and "warnings:  none" in out


def test_json_and_mask_option(info, good, tmp_path):
    rc, out, _ = info(good, "--json")
    described = json.loads(out)
    assert rc == 0 and described["shape"] == [16, 16] and described["masked_pixels"] == 9
    np.save(tmp_path / "m.npy", np.ones((16, 16)) - np.eye(16))
    rc, out, _ = info(good, "--mask", tmp_path / "m.npy", "--json")
    described = json.loads(out)
    assert rc == 0 and described["masked_pixels"] == 16 * 15
    assert any("inverted" in w for w in described["warnings"])


@pytest.mark.skipif(not REAL_DATA.exists(), reason="shared real data not present")
def test_real_planar_cdi_data(info):
    rc, out, err = info(REAL_DATA, "--json")
    described = json.loads(out)
    assert rc == 0 and err == ""
    assert described["shape"] == [1024, 1024] and described["dtype"] == "uint16"
    assert all(abs(o) < 2 for o in described["centre_offset"])  # README: zero frequency near (511, 511)
    assert 0.85 < described["zero_fraction"] < 0.95


# ----------------------------------------------------------------------------- bad inputs


def _save_npy(array):
    return lambda p: np.save(p, array)


def _truncated(writer, keep=0.5):
    def make(path):
        writer(path)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return make


def _h5(datasets, attrs=None):
    def make(path):
        with h5py.File(path, "w") as f:
            for key, value in datasets.items():
                f[key] = value
            for key, (name, value) in (attrs or {}).items():
                f[key].attrs[name] = value

    return make


def _npz(**arrays):
    return lambda p: np.savez(p, **arrays)


GOOD = counts(np.random.default_rng(0), (16, 16))
WITH_NAN, WITH_INF, NEGATIVE = GOOD.astype(float), GOOD.astype(float), GOOD.astype(float)
WITH_NAN[3, 3], WITH_INF[4, 4], NEGATIVE[5, 5] = np.nan, np.inf, -0.5
CENTRE_ONLY = np.zeros((16, 16))
CENTRE_ONLY[8, 8] = 10.0


def _result(path):
    obj = np.ones((16, 16), np.complex64)
    write_result(path, Result(obj, np.ones((16, 16), bool), {"loss": [1.0]}, {"method": "er"}, 1, {}))


BAD = {
    "missing": ("absent.npz", None, "no such file"),
    "unknown suffix": ("pattern.png", lambda p: p.write_bytes(b"\x89PNG...."), "unknown file type"),
    "truncated npz": ("cut.npz", _truncated(_npz(intensity=GOOD)), "truncated or corrupt"),
    "truncated npy": ("cut.npy", _truncated(_save_npy(GOOD)), "truncated or corrupt"),
    "truncated tif": ("cut.tif", _truncated(lambda p: tifffile.imwrite(p, GOOD), 0.3), "truncated or corrupt"),
    "truncated h5": ("cut.h5", _truncated(_h5({"/data": GOOD})), "truncated or corrupt"),
    "truncated cxi": ("cut.cxi", _truncated(lambda p: write_measurement(p, Measurement(GOOD))),
                      "truncated or corrupt"),
    "edf header only": ("header.edf", lambda p: write_edf(p, GOOD, "UnsignedShort", data=False), "truncated"),
    "edf without header": ("raw.edf", lambda p: p.write_bytes(GOOD.tobytes()), "not an EDF file"),
    "edf unknown type": ("type.edf", lambda p: write_edf(p, GOOD, "Quaternion"), "unknown EDF DataType"),
    "not hdf5": ("text.h5", lambda p: p.write_text("hello"), "truncated or corrupt"),
    "npz missing key": ("keys.npz", _npz(counts=GOOD, dark=GOOD), "holds: counts, dark"),
    "npz result given": ("result.npz", _result, "is a reconstruction result"),
    "h5 missing dataset": ("f.h5:/nope", _h5({"/a/b": GOOD}), "file holds: /a/b (16, 16) uint16"),
    "h5 no default": ("many.h5", _h5({"/a": GOOD, "/b": GOOD}), "no pattern at the CXI paths"),
    "cxi frames": ("frames.cxi", _h5({"/entry_1/data_1/data": np.stack([GOOD] * 5)},
                                     {"/entry_1/data_1/data": ("axes", "translation:y:x")}), "5 frames"),
    "cxi result given": ("result.cxi", _result, "complex"),
    "1d": ("line.npy", _save_npy(np.arange(1.0, 65.0)), "1 dimension"),
    "4d": ("stack.npy", _save_npy(np.ones((2, 8, 8, 8))), "2 frames"),
    "too small": ("small.npy", _save_npy(np.ones((3, 30))), "too small"),
    "complex": ("complex.npy", _save_npy(GOOD * (1 + 1j)), "complex"),
    "strings": ("text.npy", _save_npy(np.array([["a"] * 8] * 8)), "not numeric"),
    "booleans": ("bool.npy", _save_npy(np.ones((8, 8), bool)), "not numeric"),
    "pickled objects": ("objects.npy", lambda p: np.save(p, np.empty((8, 8), object), allow_pickle=True),
                        "pickled"),
    "colour tif": ("rgb.tif", lambda p: tifffile.imwrite(p, np.ones((16, 16, 3), np.uint8), photometric="rgb"),
                   "colour"),
    "nan": ("nan.npy", _save_npy(WITH_NAN), "NaN or Inf"),
    "inf": ("inf.npy", _save_npy(WITH_INF), "NaN or Inf"),
    "negative": ("negative.npy", _save_npy(NEGATIVE), "clip or re-threshold the background"),
    "all zero": ("zero.npy", _save_npy(np.zeros((16, 16))), "all-zero"),
    "zero where measured": ("centre.npz", _npz(intensity=CENTRE_ONLY, mask=CENTRE_ONLY > 0),
                            "zero at every measured pixel"),
    "all masked": ("masked.npz", _npz(intensity=GOOD, mask=np.ones((16, 16))), "all 256 pixels are masked"),
    "mask shape in file": ("shape.npz", _npz(intensity=GOOD, mask=np.zeros((8, 8))), "(8, 8) does not match"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2(info, tmp_path, case):
    name, make, problem = BAD[case]
    if make is not None:
        make(tmp_path / name.split(":")[0])
    rc, out, err = info(tmp_path / name)
    assert rc == 2 and out == ""
    assert err.startswith("doubledip: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert name.split(":")[0] in err and problem in err


@pytest.mark.parametrize(
    "mask_name, make, problem",
    [("m.npy", _save_npy(np.zeros((8, 8))), "mask shape (8, 8) does not match the pattern shape (16, 16)"),
     ("absent.npy", None, "no such file"),
     ("ones.tif", lambda p: tifffile.imwrite(p, np.ones((16, 16), np.uint8)), "all 256 pixels are masked"),
     ("nan.npy", _save_npy(np.full((16, 16), np.nan)), "NaN or Inf")],
)
def test_bad_mask_is_one_line_exit_2(info, good, tmp_path, mask_name, make, problem):
    if make is not None:
        make(tmp_path / mask_name)
    rc, out, err = info(good, "--mask", tmp_path / mask_name)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert problem in err and (mask_name in err or "good.npz" in err)


def test_real_process_prints_one_line(tmp_path):
    """Outside pytest's log capture too: libraries' own log messages must not reach the terminal."""
    path = tmp_path / "cut.tif"
    _truncated(lambda p: tifffile.imwrite(p, GOOD), 0.3)(path)
    code = "import sys, doubledip.cli as c; sys.exit(c.main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "info", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "cut.tif" in proc.stderr and "Traceback" not in proc.stderr
