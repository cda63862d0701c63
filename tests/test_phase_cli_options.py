"""``doubledip phase``: preprocessing flags, checkpoints/--resume, --prtf; ``doubledip evaluate --data``."""

import numpy as np
import pytest

import doubledip.cli as cli
import doubledip.cli.phase as phase_cli
from doubledip import fft, io, resolution

TINY_DDIP = """
[ddip]
width = 4
depth = 2
max_width = 8
pretrain_iterations = 6
iterations = 12
lr = 1e-2
retries = 0
checkpoint_every = 4
warm_starts = 2
warm_options = {support = "box", recipe = "10*HIO + SW + 5*ER"}
"""


def _write_sample(path, n, rng):
    obj = np.zeros((n, n), np.complex64)
    c = n // 2
    obj[c - 3: c + 2, c - 2: c + 2] = np.exp(1j * rng.uniform(0, 1, (5, 4)))
    obj[c - 3: c - 1, c + 2] = 0.7
    intensity = (np.abs(fft.cfft(obj, 2)) ** 2 * 50).astype(np.float32)
    io.write_measurement(path, io.Measurement(intensity, np.zeros(intensity.shape, np.uint8), obj, "test"))
    return path


@pytest.fixture
def sample16(tmp_path, rng):
    return _write_sample(tmp_path / "s16.npz", 16, rng)


@pytest.fixture
def sample24(tmp_path, rng):
    return _write_sample(tmp_path / "s24.npz", 24, rng)


@pytest.fixture
def tiny_ddip(tmp_path):
    path = tmp_path / "ddip.toml"
    path.write_text(TINY_DDIP)
    return path


def run(*argv):
    return cli.main([str(a) for a in argv])


RECIPE = "20*HIO + 2*(5*HIO + SW) + 10*ER"


def test_preprocessing_flags_and_prepare_table(sample24, tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert run("phase", sample24, "-o", out, "--recipe", RECIPE, "--starts", 2, "--size", 16, "--no-progress") == 0
    text = capsys.readouterr().out
    assert "prepare: " in text and "R-factor" in text
    result = io.read_result(out)
    assert result.object.shape == (16, 16)
    assert result.config["prepare"]["output_shape"] == [16, 16]
    config = tmp_path / "run.toml"
    config.write_text("[prepare]\nsize = 12\n")
    out2 = tmp_path / "r2.npz"
    assert run("phase", sample24, "-o", out2, "--recipe", RECIPE, "--starts", 2, "--config", config) == 0
    assert io.read_result(out2).object.shape == (12, 12)
    # a flag overrides the table
    assert run("phase", sample24, "-o", out2, "--recipe", RECIPE, "--starts", 2, "--config", config,
               "--size", 20) == 0
    assert io.read_result(out2).object.shape == (20, 20)


def test_no_preprocessing_leaves_the_pattern_alone(sample24, tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert run("phase", sample24, "-o", out, "--recipe", RECIPE, "--starts", 1) == 0
    assert "prepare:" not in capsys.readouterr().out
    assert "prepare" not in io.read_result(out).config


@pytest.mark.parametrize("argv, words", [
    (["--resume"], "--resume needs --checkpoint"),
    (["--checkpoint", "ck"], "does not write checkpoints"),
    (["--prtf", "--starts", "1"], "at least 2 starts"),
    (["--prtf-runs", "3"], "--prtf-runs does not apply"),
    (["--bin", "x"], "--bin"),
])
def test_bad_flags_are_one_line_errors(sample24, tmp_path, capsys, argv, words):
    out = tmp_path / "r.npz"
    assert run("phase", sample24, "-o", out, "--recipe", RECIPE, *argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not out.exists()


def test_ddip_resume_through_the_cli_equals_an_uninterrupted_run(sample16, tiny_ddip, tmp_path, monkeypatch):
    plain = tmp_path / "plain.npz"
    assert run("phase", sample16, "-o", plain, "--method", "ddip", "--config", tiny_ddip, "--seed", 3) == 0
    checkpoint = tmp_path / "ck"

    def interrupt(self, info):
        if info.get("stage") == "fit" and info["iteration"] >= 6 + 7:  # after the checkpoint at fit step 4
            raise KeyboardInterrupt

    monkeypatch.setattr(phase_cli._Progress, "__call__", interrupt)
    killed = tmp_path / "killed.npz"
    assert run("phase", sample16, "-o", killed, "--method", "ddip", "--config", tiny_ddip, "--seed", 3,
               "--checkpoint", checkpoint) == 130
    assert not killed.exists() and any(checkpoint.iterdir())
    monkeypatch.undo()
    assert run("phase", sample16, "-o", killed, "--method", "ddip", "--config", tiny_ddip, "--seed", 3,
               "--checkpoint", checkpoint, "--resume") == 0
    a, b = io.read_result(plain), io.read_result(killed)
    np.testing.assert_array_equal(a.object, b.object)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])


def test_classical_prtf_is_stored_with_a_figure(sample24, tmp_path, capsys):
    out = tmp_path / "r.npz"
    figure = tmp_path / "prtf.png"
    assert run("phase", sample24, "-o", out, "--recipe", RECIPE, "--starts", 3, "--prtf-figure", figure) == 0
    assert "PRTF over 3 reconstructions" in capsys.readouterr().out
    result = io.read_result(out)
    q, values = result.history["prtf_q"], result.history["prtf"]
    assert q.shape == values.shape and np.all(np.diff(q) > 0) and q[-1] <= 12
    assert np.all(values >= 0)
    assert result.config["prtf_reconstructions"] == 3
    assert result.config["resolution_px"] == pytest.approx(24 / (2 * result.config["prtf_q_cut"]))
    assert figure.stat().st_size > 1000


def test_ddip_prtf_over_runs(sample16, tiny_ddip, tmp_path):
    out = tmp_path / "r.npz"
    assert run("phase", sample16, "-o", out, "--method", "ddip", "--config", tiny_ddip, "--prtf-runs", 2) == 0
    result = io.read_result(out)
    assert result.config["prtf_runs"] == 2 and result.config["prtf_reconstructions"] == 2
    assert result.config["prtf_chosen_run"] in (0, 1)
    assert (tmp_path / "r_prtf.png").exists()


def test_prtf_of_identical_reconstructions_is_one(rng):
    n = 16
    obj = np.zeros((n, n), np.complex64)
    obj[5:11, 6:10] = rng.normal(size=(6, 4)) + 1j * rng.normal(size=(6, 4))
    m = io.Measurement((np.abs(fft.cfft(obj, 2)) ** 2).astype(np.float32), np.zeros((n, n), np.uint8))
    twin = np.conj(np.roll(obj[::-1, ::-1], (1, 1), axis=(0, 1)))  # the conjugate flip about N//2
    summary = resolution.prtf_summary(np.stack([obj, np.roll(twin, (2, -1), axis=(0, 1)) * 1j]), m)
    np.testing.assert_allclose(summary["prtf"], 1, atol=1e-6)
    assert summary["q_cut"] == summary["q_max"]


def test_evaluate_with_data_only(sample24, tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert run("phase", sample24, "-o", out, "--recipe", RECIPE, "--starts", 2, "--seed", 1) == 0
    capsys.readouterr()
    assert run("evaluate", out, "--data", sample24) == 0
    text = capsys.readouterr().out
    assert "r_factor" in text and "no ground truth" in text
    stored = io.read_result(out).config["r_factor"]
    assert run("evaluate", out, "--data", sample24, "--json") == 0
    import json

    assert json.loads(capsys.readouterr().out)["r_factor"] == pytest.approx(stored, rel=1e-6)
    assert run("evaluate", out) == 2
    assert "--truth SAMPLE" in capsys.readouterr().err


def test_classical_starts_returns_what_the_preset_returns(sample24):
    from doubledip.methods import get_method

    method = get_method("hio-er-sw")
    options = method.options_cls(recipe=RECIPE, starts=3)
    m = io.read_pattern(sample24)
    plain = method.solve(m, options, seed=4)
    kept, objects = resolution.classical_starts(m, options, seed=4, method="hio-er-sw")
    np.testing.assert_array_equal(plain.object, kept.object)
    assert objects.shape == (3, 24, 24)
    best = int(np.argmin(kept.history["rank_starts"]))
    np.testing.assert_array_equal(objects[best], kept.object)
