"""`doubledip simulate` and `doubledip evaluate` end to end, on small files in tmp_path."""

import json

import numpy as np
import pytest

from doubledip import io
from doubledip.metrics import conjugate_flip
from doubledip.result import Result

CASES = [
    ("crystal2d", ["--size", "12", "--dislocation"]),
    ("crystal3d", ["--size", "6"]),
    ("cell2d", ["--size", "11", "--pattern-size", "23"]),
]


@pytest.fixture
def doubledip(run_cli):
    return run_cli


def _evaluate(doubledip, result, truth, *extra):
    code, out, err = doubledip("evaluate", result, "--truth", truth, "--json", *extra)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    return json.loads(out)


@pytest.mark.parametrize("kind, options", CASES)
@pytest.mark.parametrize("photons", [None, 1e6])
def test_sample_against_itself_and_its_symmetric_copy(doubledip, tmp_path, kind, options, photons):
    sample = tmp_path / "sample.npz"
    noise = ["--photons", photons] if photons else []
    code, out, err = doubledip("simulate", kind, "-o", sample, *options, *noise, "--beamstop", "1", "--gaps", "1",
                               "--seed", "3")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1 and "seed 3" in out and sample.exists()

    report = _evaluate(doubledip, sample, sample)
    for key in ("sa_error", "sa_error_scaled", "r_factor", "amplitude_error", "method", "seed"):
        assert key in report
    assert report["sa_error"] < 1e-6 and report["sa_error_scaled"] < 1e-6
    if photons is None:
        assert report["r_factor"] < 1e-5
    else:
        assert 0 < report["r_factor"] < 1  # the truth scores the noise level

    truth = io.read_pattern(sample).object
    ndim = truth.ndim
    copy = np.exp(2.1j) * np.roll(truth, (3, -2, 1)[:ndim], axis=tuple(range(ndim)))
    copy = conjugate_flip(copy).astype(np.complex64)
    result = tmp_path / "moved.npz"
    io.write_result(result, Result(copy, np.abs(copy) > 0, {"loss": [1.0]}, {"method": "test"}, 7, {}))
    report = _evaluate(doubledip, result, sample)
    assert report["sa_error"] < 1e-5 and report["sa_error_scaled"] < 1e-5
    assert report["method"] == "test" and report["seed"] == 7 and report["conjugate"] is True
    if photons is None:
        assert report["r_factor"] < 1e-5  # the far field does not see the symmetries
    subpixel = _evaluate(doubledip, result, sample, "--subpixel")
    assert subpixel["sa_error"] < 1e-5


def test_cxi_sample_and_table_output(doubledip, tmp_path):
    sample = tmp_path / "sample.cxi"
    code, out, err = doubledip("simulate", "crystal2d", "-o", sample, "--size", "10", "--photons", "1e5",
                               "--beamstop", "1.5", "--seed", "1")
    assert code == 0, err
    assert "20x20" in out and "masked" in out
    assert _evaluate(doubledip, sample, sample)["sa_error"] < 1e-6
    truth = io.read_pattern(sample).object
    result = tmp_path / "result.cxi"
    io.write_result(result, Result(np.roll(truth, 1, axis=1), np.ones(truth.shape, bool), {}, {"method": "er"}, 2, {}))
    code, out, err = doubledip("evaluate", result, "--truth", sample)
    assert code == 0, err
    assert "er, seed 2" in out
    for name in ("sa_error", "sa_error_scaled", "r_factor", "amplitude_error"):
        assert name in out


def test_scaled_error_ignores_a_wrong_scale(doubledip, tmp_path):
    sample = tmp_path / "s.npz"
    assert doubledip("simulate", "cell2d", "-o", sample, "--size", "8", "--seed", "0")[0] == 0
    truth = io.read_pattern(sample).object
    result = tmp_path / "r.npz"
    io.write_result(result, Result(0.5 * truth, np.ones(truth.shape, bool), {}, {"method": "half"}, 0, {}))
    report = _evaluate(doubledip, result, sample)
    assert report["sa_error"] == pytest.approx(0.5, abs=1e-5)
    assert report["sa_error_scaled"] < 1e-5
    assert report["r_factor"] < 1e-5  # the R-factor fits the scale


def test_fresnel_result_is_judged_up_to_a_global_phase_only(doubledip, tmp_path):
    sample = tmp_path / "s.npz"
    assert doubledip("simulate", "crystal2d", "-o", sample, "--size", "8", "--seed", "0")[0] == 0
    truth = io.read_pattern(sample).object
    result = tmp_path / "r.npz"
    moved = np.roll(truth, 2, axis=0)
    io.write_result(result, Result(moved, np.ones(truth.shape, bool), {}, {"method": "x", "model": "fresnel"}, 0, {}))
    report = _evaluate(doubledip, result, sample)
    assert report["symmetries"] == ["phase"] and report["sa_error"] > 0.1


def _one_line_error(code, out, err):
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("doubledip: error:"), err
    return lines[0]


@pytest.mark.parametrize("argv, words", [
    (["cell2d", "--dislocation"], "crystal2d only"),
    (["crystal2d", "--photons", "-5"], "positive"),
    (["crystal2d", "--photons", "nan"], "positive"),
    (["crystal2d", "--size", "3"], "at least 4"),
    (["crystal2d", "--size", "8", "--pattern-size", "6"], "smaller than the object"),
    (["crystal2d", "--beamstop", "-1"], "radius"),
    (["crystal2d", "--gaps", "-1"], "gaps"),
])
def test_simulate_bad_options(doubledip, tmp_path, argv, words):
    out_file = tmp_path / "s.npz"
    line = _one_line_error(*doubledip("simulate", argv[0], "-o", out_file, *argv[1:]))
    assert words in line
    assert not out_file.exists()


def test_simulate_bad_output_path(doubledip, tmp_path):
    line = _one_line_error(*doubledip("simulate", "crystal2d", "-o", tmp_path / "s.png", "--size", "8"))
    assert ".npz" in line
    _one_line_error(*doubledip("simulate", "crystal2d", "-o", tmp_path / "missing" / "s.npz", "--size", "8"))
    assert list(tmp_path.iterdir()) == []


def test_evaluate_bad_inputs(doubledip, tmp_path):
    small, large = tmp_path / "small.npz", tmp_path / "large.npz"
    assert doubledip("simulate", "crystal2d", "-o", small, "--size", "8")[0] == 0
    assert doubledip("simulate", "crystal2d", "-o", large, "--size", "10")[0] == 0
    line = _one_line_error(*doubledip("evaluate", small, "--truth", large))
    assert "does not match" in line

    pattern_only = tmp_path / "pattern.npz"
    np.savez(pattern_only, intensity=np.ones((16, 16), np.float32))
    line = _one_line_error(*doubledip("evaluate", small, "--truth", pattern_only))
    assert "ground-truth object" in line
    line = _one_line_error(*doubledip("evaluate", pattern_only, "--truth", small))
    assert "pattern.npz" in line
    _one_line_error(*doubledip("evaluate", tmp_path / "nothing.npz", "--truth", small))
