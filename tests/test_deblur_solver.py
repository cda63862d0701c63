"""doubledip.deblur.deblur on tiny images: loss falls, valid kernel, seeded, colour, errors; baselines; scores."""

import numpy as np
import pytest

from doubledip.deblur import DeblurOptions, deblur, degrade, estimate_kernel, gaussian_kernel, motion_kernel
from doubledip.deblur.baseline import richardson_lucy, wiener
from doubledip.deblur.evaluation import aligned_scores, kernel_error
from doubledip.deblur.model import gcv_weight
from doubledip.errors import ConfigError

TINY = dict(kernel_size=5, iterations=30, width=8, depth=2, kernel_hidden=16, window=10, patience=30)


def _scene(rng, shape=(24, 24)):
    from scipy import ndimage

    image = ndimage.gaussian_filter(rng.random(shape), 1.5)
    image = (image - image.min()) / (image.max() - image.min())
    return image.astype(np.float32)


@pytest.fixture
def blurry(rng):
    image = _scene(rng)
    return degrade(image, gaussian_kernel(3, sigma=0.8), noise=0.01, seed=0)


def test_loss_falls_and_the_kernel_stays_a_kernel(blurry):
    result = deblur(blurry, {**TINY, "early_stopping": "none"}, seed=1)
    loss = result.history["loss"]
    assert len(loss) == 30 and loss[-5:].mean() < loss[:5].mean()
    k = result.kernel
    assert k.shape == (5, 5) and k.min() >= 0 and abs(float(k.sum(dtype=np.float64)) - 1) < 1e-4
    assert result.image.shape == blurry.shape and np.all(np.isfinite(result.image))
    assert result.extended.shape == (28, 28)
    assert result.config["kernel_size"] == 5 and result.config["data_term"] == "l2" and result.seed == 1


def test_same_seed_same_result_and_restarts_are_recorded(blurry):
    a = deblur(blurry, TINY, seed=3)
    b = deblur(blurry, TINY, seed=3)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.kernel, b.kernel)
    c = deblur(blurry, {**TINY, "iterations": 10, "restarts": 2}, seed=3)
    assert len(c.history["start_data"]) == 2
    assert c.config["best_start"] == int(np.argmin(c.history["start_data"]))


@pytest.mark.parametrize("noise", ["poisson", "impulse"])
def test_colour_and_other_noise_models(rng, noise):
    image = np.stack([_scene(rng, (20, 22)) for _ in range(3)], axis=-1)
    y = degrade(image, gaussian_kernel(3, sigma=0.8), noise=0.02, noise_type=noise, seed=0)
    result = deblur(y, {**TINY, "iterations": 5, "noise": noise}, seed=0)
    assert result.image.shape == (20, 22, 3)
    assert result.config["data_term"] == {"poisson": "poisson", "impulse": "l1"}[noise]


def test_bad_options_and_sizes_are_config_errors(blurry):
    with pytest.raises(ConfigError, match="known options"):
        deblur(blurry, {"kernel_sise": 5})
    with pytest.raises(ConfigError, match="kernel size"):
        deblur(blurry, {**TINY, "kernel_size": 41})
    with pytest.raises(ConfigError, match="data_term"):
        deblur(blurry, {"data_term": "l3"})
    with pytest.raises(ValueError):
        DeblurOptions(restarts=0)
    with pytest.raises(ConfigError, match="init_nonneg_below"):
        deblur(blurry, {"init_nonneg_below": -0.01})
    for factors in ((), (1.0, -2.0), ("a",), (True,)):
        with pytest.raises(ValueError, match="known_weight_factors"):
            DeblurOptions(known_weight_factors=factors)


def test_known_kernel_baselines_beat_the_blurry_input(rng):
    image = _scene(rng, (32, 32))
    k = gaussian_kernel(5, sigma=1.2)
    y = degrade(image, k, noise=0.001, seed=0)
    blurry = aligned_scores(image, y, kernel=k)["psnr"]
    assert aligned_scores(image, wiener(y, k, balance=1e-3), kernel=k)["psnr"] > blurry
    assert aligned_scores(image, richardson_lucy(y, k, iterations=30), kernel=k)["psnr"] > blurry


def test_scores_are_invariant_to_the_shift_ambiguity(rng):
    image = _scene(rng, (32, 32))
    shifted = np.roll(image, (2, -1), axis=(0, 1))
    scores = aligned_scores(image, shifted, crop=4)
    assert scores["psnr"] > 60 and scores["ssim"] > 0.999
    np.testing.assert_allclose(scores["shift"], (-2, 1), atol=0.02)
    k = motion_kernel(9, seed=0)
    assert kernel_error(k, np.roll(np.pad(k, 3), (1, 2), axis=(0, 1))) < 1e-6
    assert kernel_error(k, np.full((9, 9), 1 / 81)) > 0.3


def test_without_a_generator_fit_the_l0_estimate_is_the_kernel(blurry):
    result = deblur(blurry, {"kernel_size": 5, "iterations": 0, "kernel_init": "l0"}, seed=0)
    expected = estimate_kernel(blurry, 5)
    np.testing.assert_allclose(result.kernel, expected, atol=1e-6)
    assert result.config["kernel_choice"] is None
    assert result.config["iterations_run"] == 0 and result.config["final"] == "tv"
    assert result.config["final_weight"] > 0 and result.image.shape == blurry.shape
    assert np.all(np.isfinite(result.image)) and "loss" not in result.history
    with pytest.raises(ConfigError, match="final 'dip'"):
        deblur(blurry, {"kernel_size": 5, "iterations": 0, "final": "dip"})


def test_select_keeps_the_candidate_that_best_predicts_held_out_pixels(blurry):
    result = deblur(blurry, {"kernel_size": 7, "kernel_candidates": ["l0", "sparse", "coarse"]}, seed=4)
    choice = result.config["kernel_choice"]
    errors = choice["holdout_errors"]
    assert list(errors) == ["l0", "sparse", "coarse"] and choice["chosen"] == min(errors, key=errors.get)
    variant = {"l0": {}, "sparse": {"threshold": 0.1}, "coarse": {"lam": 8e-3}}[choice["chosen"]]
    np.testing.assert_allclose(result.kernel, estimate_kernel(blurry, 7, **variant), atol=1e-6)
    again = deblur(blurry, {"kernel_size": 7, "kernel_candidates": ["l0", "sparse", "coarse"]}, seed=4)
    assert again.config["kernel_choice"] == choice
    with pytest.raises(ConfigError, match="kernel_candidates"):
        deblur(blurry, {"kernel_candidates": ["l0", "huge"]})
    with pytest.raises(ConfigError, match="holdout_size"):
        deblur(blurry, {"holdout_size": 2})


def test_gcv_weight_is_at_least_the_noise_floor(blurry):
    opts = {"kernel_size": 5, "iterations": 0, "final": "tikhonov"}
    gcv = deblur(blurry, {**opts, "tikhonov_weight": "gcv"}).config
    noise = deblur(blurry, {**opts, "tikhonov_weight": "noise"}).config
    assert noise["final_weight"] == pytest.approx(60.0 * (noise["noise_std"] / noise["intensity_scale"]) ** 2)
    assert gcv["final_weight"] >= noise["final_weight"]
    scaled = deblur(blurry, {**opts, "gcv_scale": 1e3})
    cv = gcv_weight(blurry / scaled.config["intensity_scale"], scaled.kernel)
    assert scaled.config["final_weight"] == pytest.approx(max(noise["final_weight"], 1e3 * cv))


def test_gaussian_kernel_init_still_fits(blurry):
    result = deblur(blurry, {**TINY, "kernel_init": "gaussian", "iterations": 5}, seed=0)
    assert result.config["kernel_init"] == "gaussian" and "kernel_init" not in result.timings
    assert abs(float(result.kernel.sum(dtype=np.float64)) - 1) < 1e-4


def test_impulse_noise_is_median_filtered_before_the_classical_steps(rng):
    image = _scene(rng, (28, 28))
    y = degrade(image, gaussian_kernel(3, sigma=0.8), noise=0.05, noise_type="impulse", seed=0)
    opts = {"kernel_size": 5, "iterations": 0}
    robust = deblur(y, {**opts, "noise": "impulse"})
    naive = deblur(y, {**opts, "noise": "gaussian"})
    err = [float(np.abs(r.image - image)[4:-4, 4:-4].mean()) for r in (robust, naive)]
    assert np.all(np.isfinite(robust.image)) and err[0] < err[1]


def test_a_given_kernel_is_normalised_and_used_as_is(blurry):
    import torch

    from doubledip.deblur.nonblind import tv_deconvolve, tv_weight

    k = gaussian_kernel(5, sigma=0.8)
    result = deblur(blurry, kernel=3 * k)
    np.testing.assert_allclose(result.kernel, k, atol=1e-6)
    assert result.config["kernel_given"] and result.config["iterations_run"] == 0 and result.config["final"] == "tv"
    scale = result.config["intensity_scale"]
    choice = result.config["weight_choice"]
    assert list(choice["holdout_errors"]) == ["0.5", "1.0", "2.0", "4.0"]
    assert str(choice["factor"]) == min(choice["holdout_errors"], key=choice["holdout_errors"].get)
    weight = tv_weight(result.config["noise_std"] / scale) * choice["factor"]
    assert result.config["final_weight"] == pytest.approx(weight)
    x = tv_deconvolve(torch.as_tensor(blurry / scale, dtype=torch.float64), torch.as_tensor(k, dtype=torch.float64),
                      weight).numpy()
    np.testing.assert_allclose(result.extended, x * scale, atol=1e-5)
    rule = deblur(blurry, {"known_weight_factors": [1]}, kernel=k)
    assert rule.config["weight_choice"] is None
    assert rule.config["final_weight"] == pytest.approx(weight / choice["factor"])
    even = deblur(blurry, kernel=np.ones((4, 4)))
    assert even.kernel.shape == (5, 5) and even.kernel[4].sum() == 0 and even.kernel[:, 4].sum() == 0
    for bad in (np.ones((3, 5)), -k, np.full((3, 3), np.nan)):
        with pytest.raises(ConfigError, match="kernel"):
            deblur(blurry, kernel=bad)
