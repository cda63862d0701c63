"""``doubledip phase`` end to end on a tiny file."""

import numpy as np
import pytest
import torch

import doubledip.cli as cli
from doubledip import fft, io


@pytest.fixture
def sample(tmp_path):
    obj = np.zeros((24, 24), np.complex64)
    obj[8:15, 9:14] = np.exp(1j * np.linspace(0, 1, 35)).reshape(7, 5)
    obj[8:11, 14:16] = 1
    intensity = (np.abs(fft.cfft(obj, 2)) ** 2).astype(np.float32)
    mask = np.zeros(intensity.shape, np.uint8)
    mask[12, 12] = 1
    path = tmp_path / "sample.npz"
    io.write_measurement(path, io.Measurement(intensity, mask, obj, "test"))
    return path


def run(*argv):
    return cli.main([str(a) for a in argv])


def test_phase_writes_a_readable_result(sample, tmp_path, capsys):
    out = tmp_path / "result.npz"
    rc = run("phase", sample, "-o", out, "--recipe", "30*HIO + 2*(10*HIO + SW) + 20*ER", "--starts", 3,
             "--seed", 5)
    assert rc == 0
    result = io.read_result(out)
    assert result.object.shape == (24, 24) and result.support.dtype == bool
    assert result.seed == 5
    config = result.config
    assert config["method"] == "hio-er-sw" and config["seed"] == 5 and config["starts"] == 3
    assert config["recipe"] == "30*HIO + 2*(10*HIO + SW) + 20*ER"
    assert result.history["loss_starts"].shape == (3, 70)
    assert "wrote" in capsys.readouterr().out


def test_phase_writes_cxi_and_reads_a_config(sample, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('method = "raar-er-sw"\nseed = 9\nbeta = 0.75\n[raar-er-sw]\nstarts = 2\n'
                      'recipe = "20*RAAR + SW + 10*ER"\n')
    out = tmp_path / "result.cxi"
    assert run("phase", sample, "-o", out, "--config", config, "--no-progress") == 0
    result = io.read_result(out)
    assert result.config["method"] == "raar-er-sw" and result.config["beta"] == 0.75
    assert result.config["starts"] == 2 and result.seed == 9
    assert result.config["recipe"] == "20*RAAR + SW + 10*ER"


def test_flags_override_the_config(sample, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('starts = 4\nrecipe = "5*ER"\n')
    out = tmp_path / "r.npz"
    assert run("phase", sample, "-o", out, "--config", config, "--starts", 1, "--recipe", "3*HIO + 2*ER") == 0
    result = io.read_result(out)
    assert result.config["starts"] == 1 and result.config["recipe"] == "3*HIO + 2*ER"


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith("doubledip: error: ")
    for needle in needles:
        assert needle in first
    return err


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--method", "nope"], ["unknown method 'nope'", "hio-er-sw"]),
        (["--device", "tpu"], ["tpu"]),
        (["--starts", "0"], ["starts"]),
    ],
)
def test_bad_arguments_give_one_line_and_code_2(sample, tmp_path, capsys, extra, needles):
    out = tmp_path / "r.npz"
    assert run("phase", sample, "-o", out, *extra) == 2
    err = _one_line_error(capsys, *needles)
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_recipe_points_at_the_token(sample, tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert run("phase", sample, "-o", out, "--recipe", "20*ER + 3*(180*HOI + SW)") == 2
    err = _one_line_error(capsys, "unknown operation 'HOI'", "column 16")
    shown, caret = err.splitlines()[1:3]
    assert caret.index("^") == shown.index("HOI")
    assert not out.exists()


def test_bad_config_lists_known_options(sample, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("betta = 0.5\n")
    assert run("phase", sample, "-o", tmp_path / "r.npz", "--config", config) == 2
    err = _one_line_error(capsys, "betta", "known options", "beta")
    assert len(err.strip().splitlines()) == 1
    config.write_text("[nomethod]\nbeta = 0.5\n")
    assert run("phase", sample, "-o", tmp_path / "r.npz", "--config", config) == 2
    _one_line_error(capsys, "nomethod")
    config.write_text("beta = \n")
    assert run("phase", sample, "-o", tmp_path / "r.npz", "--config", config) == 2
    _one_line_error(capsys, "TOML")


def test_bad_output_fails_before_running(sample, tmp_path, capsys):
    assert run("phase", sample, "-o", tmp_path / "r.txt") == 2
    _one_line_error(capsys, "r.txt")
    assert run("phase", sample, "-o", tmp_path / "missing" / "r.npz") == 2
    _one_line_error(capsys, "r.npz")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_without_a_gpu_is_a_user_error(sample, tmp_path, capsys):
    assert run("phase", sample, "-o", tmp_path / "r.npz", "--device", "cuda") == 2
    _one_line_error(capsys, "CUDA is not available")


def test_progress_bar_follows_the_callback(capsys):
    from doubledip.cli.phase import _Progress

    progress = _Progress("hio-er-sw", enabled=True)
    for i in (10, 20, 30):
        progress(dict(iteration=i, total=30, loss=0.5 / i))
    assert progress.bar.n == 30 and progress.bar.total == 30
    progress.close()
    assert "hio-er-sw" in capsys.readouterr().err
    silent = _Progress("x", enabled=False)
    silent(dict(iteration=1, total=2, loss=1.0))
    assert silent.bar is None
