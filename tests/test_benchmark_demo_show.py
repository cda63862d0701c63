"""End-to-end checks of benchmark, demo and show on tiny problems, and the least-squares baseline."""

import json

import numpy as np
import pytest

from doubledip import io
from doubledip.benchmark import BenchmarkSpec, run_benchmark, summarise
from doubledip.cli import main
from doubledip.cli.options import parse_set
from doubledip.errors import ConfigError
from doubledip.leastsquares import gradient_descent, operator_norm
from doubledip.physics import FarField, Gaussian

FAST = {"recipe": "20*ER + 2*(20*HIO + SW) + 20*ER", "starts": 2}


def test_benchmark_writes_tables_figures_and_skips_finished_pairs(tmp_path):
    spec = BenchmarkSpec("crystal2d", count=2, methods=("hio-er-sw",), size=8, method_options={"hio-er-sw": FAST})
    rows = run_benchmark(spec, tmp_path)
    assert len(rows) == 2 and {r["sample"] for r in rows} == {"sample_0000", "sample_0001"}
    for name in ("samples.csv", "summary.md", "summary.json", "errors.png", "gallery_hio-er-sw.png"):
        assert (tmp_path / name).is_file()
    result = io.read_result(tmp_path / "results" / "hio-er-sw" / "sample_0000.npz")
    assert result.object.shape == (16, 16)
    stamp = (tmp_path / "rows" / "hio-er-sw" / "sample_0000.json").stat().st_mtime_ns
    bigger = BenchmarkSpec("crystal2d", count=3, methods=("hio-er-sw",), size=8, method_options={"hio-er-sw": FAST})
    rows = run_benchmark(bigger, tmp_path)
    assert len(rows) == 3
    assert (tmp_path / "rows" / "hio-er-sw" / "sample_0000.json").stat().st_mtime_ns == stamp
    table = summarise(rows)
    assert table[0]["samples"] == 3 and 0 <= table[0]["success_0.1"] <= 1


def test_benchmark_refuses_a_folder_with_other_settings(tmp_path):
    run_benchmark(BenchmarkSpec("crystal2d", count=1, methods=("er",), size=8,
                                method_options={"er": {"recipe": "10*ER", "starts": 1}}), tmp_path)
    with pytest.raises(ConfigError, match="other settings"):
        run_benchmark(BenchmarkSpec("crystal2d", count=1, methods=("er",), size=10), tmp_path)


def test_models_suite_gradient_descent_solves_gaussian_data(tmp_path):
    spec = BenchmarkSpec("models", count=1, methods=("gd-gaussian", "gd-farfield"), size=6)
    rows = {r["method"]: r for r in run_benchmark(spec, tmp_path)}
    assert rows["gd-gaussian"]["sa_error"] < 1e-3


def test_benchmark_rejects_unknown_suite_method_and_options():
    with pytest.raises(ConfigError, match="known suites"):
        BenchmarkSpec("nope").resolved()
    with pytest.raises(ConfigError, match="known methods"):
        BenchmarkSpec("crystal2d", methods=("nope",)).resolved()
    with pytest.raises(ConfigError, match="not run"):
        BenchmarkSpec("crystal2d", methods=("er",), method_options={"ddip": {}}).resolved()
    with pytest.raises(ConfigError, match="models"):
        BenchmarkSpec("crystal2d", methods=("gd-gaussian",)).resolved()


def test_benchmark_cli_bad_count_is_one_line(tmp_path, capsys):
    assert main(["benchmark", "--suite", "crystal2d", "--count", "0", "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--count" in err[0]


def test_parse_set_reads_toml_values():
    tables = parse_set(["ddip.iterations=30", "ddip.start=cold", 'er.recipe="10*ER"', "er.positivity=true"])
    assert tables == {"ddip": {"iterations": 30, "start": "cold"}, "er": {"recipe": "10*ER", "positivity": True}}
    with pytest.raises(ConfigError):
        parse_set(["iterations=3"])


def test_gradient_descent_lowers_the_loss_and_recovers_gaussian_measurements(rng):
    x = (rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))).astype(np.complex64)
    model = Gaussian((4, 4), 8 * 16, seed=1)
    est, history = gradient_descent(model, model.intensity(x), iterations=800, seed=2)
    assert history[-1] < 1e-3 * history[0]
    c = np.vdot(est, x) / abs(np.vdot(est, x))
    assert np.linalg.norm(x - c * est) / np.linalg.norm(x) < 1e-2


def test_operator_norm_of_unitary_far_field_is_one():
    assert operator_norm(FarField((8, 8), (8, 8))) == pytest.approx(1.0, rel=1e-4)


def test_demo_and_show_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--size", "8", "--photons", "1e5", "--beamstop", "1", "--methods", "er"])
    assert rc == 0
    assert (out / "demo.png").is_file() and (out / "er.npz").is_file()
    printed = capsys.readouterr().out
    assert "er" in printed and "error" in printed
    assert main(["show", str(out / "er.npz"), "-o", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_show_missing_file_is_one_line_error(tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.npz" in err[0]
    assert not list(tmp_path.iterdir())


def test_flush_denormals_flushes_inside_the_block():
    import torch

    from doubledip.methods import flush_denormals

    tiny = torch.tensor([1e-39], dtype=torch.float32)
    with flush_denormals():
        assert float(tiny * 1.0) == 0.0


def test_benchmark_row_is_json(tmp_path):
    run_benchmark(BenchmarkSpec("cell2d", count=1, methods=("er",), size=8,
                                method_options={"er": {"recipe": "10*ER", "starts": 1}}), tmp_path)
    row = json.loads((tmp_path / "rows" / "er" / "sample_0000.json").read_text())
    assert {"sa_error", "sa_error_scaled", "r_factor", "time_s", "seed"} <= set(row)
