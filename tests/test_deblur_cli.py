"""`doubledip simulate blur`, `doubledip deblur` and `doubledip evaluate` on a blur sample, end to end and tiny."""

import json

import numpy as np
import pytest

from doubledip.deblur.images import read_image, write_image
from doubledip.errors import DataError


@pytest.fixture
def doubledip(run_cli):
    return run_cli


@pytest.fixture
def sharp_png(tmp_path, rng):
    from scipy import ndimage

    image = ndimage.gaussian_filter(rng.random((24, 26)), 1.2)
    image = (image - image.min()) / (image.max() - image.min())
    path = tmp_path / "sharp.png"
    write_image(path, image)
    return path


def test_simulate_deblur_evaluate_end_to_end(doubledip, tmp_path, sharp_png):
    sample = tmp_path / "blurred.npz"
    code, out, err = doubledip("simulate", "blur", sharp_png, "-o", sample, "--kernel", "motion", "--kernel-size", "5",
                               "--noise", "0.01", "--seed", "2")
    assert code == 0, err
    assert "seed 2" in out and sample.exists()
    with np.load(sample) as z:
        assert z["blurred"].shape == z["image"].shape == (24, 26) and z["kernel"].shape == (5, 5)
        assert json.loads(str(z["meta"]))["kernel_size"] == 5
    estimate, kernel = tmp_path / "est.png", tmp_path / "k.png"
    code, out, err = doubledip("deblur", sample, "-o", estimate, "--kernel-size", "7", "--kernel-out", kernel,
                               "--iterations", "5", "--seed", "1", "--quiet")
    assert code == 0, err
    assert read_image(estimate).shape == (24, 26) and read_image(kernel).shape == (7, 7)
    code, out, err = doubledip("evaluate", estimate, "--truth", sample, "--kernel", kernel, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert np.isfinite(report["psnr"]) and -1 <= report["ssim"] <= 1 and report["kernel_error"] >= 0
    code, out, err = doubledip("evaluate", sample, "--truth", sample, "--json")
    assert code == 0 and json.loads(out)["kernel_error"] == 0  # the truth against itself
    npz = tmp_path / "est.npz"
    code, out, err = doubledip("deblur", sharp_png, "-o", npz, "--kernel-size", "5", "--iterations", "3", "--quiet")
    assert code == 0, err
    with np.load(npz) as z:
        assert z["image"].shape == (24, 26) and abs(float(z["kernel"].sum()) - 1) < 1e-4


@pytest.mark.parametrize("argv, words", [
    (["deblur", "{tmp}/missing.png", "-o", "{tmp}/o.png"], "no such file"),
    (["deblur", "{tmp}/notes.png", "-o", "{tmp}/o.png"], "cannot be read as an image"),
    (["deblur", "{png}", "-o", "{tmp}/o.jpg"], "unknown output format"),
    (["deblur", "{png}", "-o", "{tmp}/o.png", "--kernel-size", "99"], "kernel size"),
    (["deblur", "{png}", "-o", "{tmp}/nowhere/o.png"], "does not exist"),
    (["deblur", "{png}", "-o", "{tmp}/o.png", "--kernel", "{tmp}/k.npy", "--iterations", "5"], "do not apply"),
    (["deblur", "{png}", "-o", "{tmp}/o.png", "--kernel", "{tmp}/negative.npy"], "is not a usable kernel"),
    (["deblur", "{png}", "-o", "{tmp}/o.png", "--kernel", "{tmp}/huge.npy"], "larger than the image"),
    (["simulate", "blur", "-o", "{tmp}/b.npz"], "needs an IMAGE"),
    (["simulate", "blur", "skimage:nothing", "-o", "{tmp}/b.npz"], "unknown scikit-image sample"),
    (["simulate", "blur", "mpl:nothing", "-o", "{tmp}/b.npz"], "unknown matplotlib sample"),
    (["simulate", "blur", "{png}", "-o", "{tmp}/b.cxi"], "use a .npz"),
])
def test_bad_inputs_give_one_line_and_exit_code_2(doubledip, tmp_path, sharp_png, argv, words):
    (tmp_path / "notes.png").write_text("not an image")
    np.save(tmp_path / "k.npy", np.full((3, 3), 1 / 9))
    np.save(tmp_path / "negative.npy", -np.ones((3, 3)))
    np.save(tmp_path / "huge.npy", np.ones((31, 31)))
    argv = [a.format(tmp=tmp_path, png=sharp_png) for a in argv]
    code, out, err = doubledip(*argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_deblur_with_a_known_kernel_file(doubledip, tmp_path, sharp_png):
    sample = tmp_path / "blurred.npz"
    assert doubledip("simulate", "blur", sharp_png, "-o", sample, "--kernel-size", "5", "--seed", "3")[0] == 0
    with np.load(sample) as z:
        np.save(tmp_path / "k.npy", z["kernel"])
        image, blurred = z["image"], z["blurred"]
    estimate = tmp_path / "sharp.npy"
    code, out, err = doubledip("deblur", sample, "-o", estimate, "--kernel", tmp_path / "k.npy", "--quiet")
    assert code == 0, err
    assert "the given 5x5 kernel (TV weight x" in out and "chosen by held-out pixels" in out
    inner = (slice(3, -3), slice(3, -3))
    assert np.abs(np.load(estimate) - image)[inner].mean() < np.abs(blurred - image)[inner].mean()


def test_image_files_round_trip(tmp_path, rng):
    gray = rng.random((8, 9)).astype(np.float32)
    colour = rng.random((8, 9, 3)).astype(np.float32)
    for name, image, tol in (("a.npy", gray, 0), ("a.tif", colour, 0), ("a.png", gray, 1e-4), ("c.png", colour, 3e-3)):
        write_image(tmp_path / name, image)
        np.testing.assert_allclose(read_image(tmp_path / name), image, atol=tol)
    with pytest.raises(DataError, match="unknown image format"):
        read_image(tmp_path / "a.bmp")
    assert read_image("skimage:camera").shape == (512, 512)
    assert read_image("skimage:motorcycle_left").ndim == 3
    for name in ("s1045", "jacksboro_fault_dem"):
        sample = read_image(f"mpl:{name}")
        assert sample.ndim == 2 and sample.min() == 0 and sample.max() == 1  # scaled by its own range
