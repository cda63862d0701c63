"""The ddip method: free pixels, objective, tiny end-to-end runs, exact resume, registry."""

import numpy as np
import pytest
import torch

from doubledip import fft
from doubledip.config import make_options
from doubledip.dip.solver import (DDIPOptions, FarFieldObjective, binary_penalty, centre_object, free_islands,
                                  parseval_energy, solve)
from doubledip.errors import ConfigError, DataError
from doubledip.io import Measurement
from doubledip.methods import get_method
from doubledip.physics import FarField

TINY = dict(width=4, depth=2, max_width=8, iterations=20, lr=1e-2, restarts=1, retries=0, checkpoint_every=5)


def _measurement(rng, n=16, beamstop=True):
    box = np.zeros((n // 2, n // 2), np.complex64)
    box[2:6, 1:6] = np.exp(1j * rng.uniform(0, 1, (4, 5)))
    far = FarField((n, n), box.shape)
    intensity = np.abs(far(box)) ** 2
    mask = np.zeros((n, n), np.uint8)
    if beamstop:
        mask[n // 2, n // 2] = 1
        intensity[mask != 0] = 0
    return Measurement(intensity.astype(np.float32), mask, far.pad(box))


def test_free_islands_are_measured_symmetric_and_seeded():
    mask = np.zeros((32, 32), np.uint8)
    mask[14:19, 14:19] = 1
    free = free_islands(mask, 0.05, island=2, seed=3)
    assert not (free & (mask != 0)).any()
    assert 0.05 <= free.sum() / (mask == 0).sum() < 0.1
    mate = np.roll(free[::-1, ::-1], (1, 1), axis=(0, 1))  # q -> 2*(N//2) - q mod N for even N
    assert np.array_equal(free, mate)
    assert np.array_equal(free, free_islands(mask, 0.05, island=2, seed=3))
    assert not np.array_equal(free, free_islands(mask, 0.05, island=2, seed=4))


def test_no_gradient_on_free_or_masked_pixels(rng):
    m = _measurement(rng)
    free = free_islands(m.mask, 0.1, seed=0)
    train = (m.mask == 0) & ~free
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    objective = FarFieldObjective(FarField((16, 16), (8, 8)), t(m.intensity), t(train), t(free))
    amplitude = torch.rand(16, 16, requires_grad=True)
    objective.data(amplitude).backward()
    grad = amplitude.grad.numpy()
    assert np.all(grad[free] == 0) and np.all(grad[m.mask != 0] == 0)
    assert np.any(grad[train] != 0)
    x = torch.as_tensor(rng.standard_normal((8, 8)) + 1j * rng.standard_normal((8, 8)), dtype=torch.complex64)
    assert set(objective.monitor(x)) == {"free", "free_chi2"}


def test_parseval_energy():
    x = np.random.default_rng(0).standard_normal((8, 8)) + 0j
    intensity = np.abs(fft.cfft(np.pad(x, 4), 2)) ** 2
    mask = np.zeros((16, 16), np.uint8)
    assert parseval_energy(intensity, mask) == pytest.approx(np.sum(np.abs(x) ** 2))
    mask[7:10, 7:10] = 1
    assert parseval_energy(intensity * (mask == 0), mask, model_intensity=intensity) == pytest.approx(
        np.sum(np.abs(x) ** 2))
    assert parseval_energy(intensity * (mask == 0), mask) > intensity[mask == 0].sum()


def test_centre_object_puts_mass_at_centre():
    x = np.zeros((15, 16), np.complex64)
    x[0:3, 13:16] = 1  # a blob near a corner
    y = centre_object(np.roll(x, (-1, 2), axis=(0, 1)))
    com = [np.sum(np.abs(y) ** 2 * g) / np.sum(np.abs(y) ** 2) for g in np.meshgrid(
        np.arange(15), np.arange(16), indexing="ij")]
    assert np.allclose(com, [7, 8], atol=0.5)


def test_tiny_cold_run_fits_and_returns_contract(rng):
    m = _measurement(rng)
    seen = []
    r = solve(m, DDIPOptions(start="cold", **TINY), seed=1, callback=seen.append)
    assert r.object.shape == (16, 16) and r.object.dtype == np.complex64 and r.support.shape == (16, 16)
    loss = r.history["loss"]
    assert loss[-3:].mean() < loss[:3].mean()
    assert len(r.history["free_loss"]) == len(loss) == 20
    assert r.config["seed"] == 1 and r.config["start"] == "cold" and r.seed == 1
    assert seen[-1]["iteration"] == seen[-1]["total"] == 20 and "loss" in seen[-1]
    # global phase normalised
    assert abs(np.angle(np.sum(r.object * np.abs(r.object)))) < 1e-3
    again = solve(m, DDIPOptions(start="cold", **TINY), seed=1)
    np.testing.assert_array_equal(again.object, r.object)


def test_resume_equals_uninterrupted(rng, tmp_path):
    m = _measurement(rng)
    options = DDIPOptions(start="cold", **{**TINY, "restarts": 2})
    reference = solve(m, options, seed=2)

    class Killed(Exception):
        pass

    def kill(info):
        if info["start"] == 1 and info["iteration"] == 33:
            raise Killed

    with pytest.raises(Killed):
        solve(m, options, seed=2, checkpoint=tmp_path, callback=kill)
    resumed = solve(m, options, seed=2, checkpoint=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.object, reference.object)
    np.testing.assert_array_equal(resumed.history["free_loss_all"], reference.history["free_loss_all"])
    with pytest.raises(DataError, match="another run"):
        solve(m, options, seed=3, checkpoint=tmp_path, resume=True)


def test_registered_and_options_checked():
    method = get_method("ddip")
    assert method.options_cls is DDIPOptions
    assert make_options(DDIPOptions, {"lr": 1, "object_size": [8, 8]}).lr == 1.0
    with pytest.raises(ConfigError, match="known options"):
        make_options(DDIPOptions, {"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="start"):
        make_options(DDIPOptions, {"start": "lukewarm"})


def test_tiny_3d_cold_run(rng):
    box = np.zeros((4, 4, 4), np.complex64)
    box[1:3, 1:4, 0:3] = 1
    far = FarField((8, 8, 8), box.shape)
    m = Measurement((np.abs(far(box)) ** 2).astype(np.float32), np.zeros((8, 8, 8), np.uint8))
    r = solve(m, DDIPOptions(start="cold", **{**TINY, "depth": 1, "iterations": 10}), seed=0)
    assert r.object.shape == (8, 8, 8) and np.isfinite(r.history["loss"]).all()


def test_tiny_warm_start_run(rng):
    m = _measurement(rng)
    options = DDIPOptions(start="warm", pretrain_iterations=10, warm_options={"support": "box",
                          "recipe": "20*HIO + 2*(5*HIO + SW) + 10*ER"}, warm_starts=2, **TINY)
    r = solve(m, options, seed=0)
    assert r.timings["warm_start"] > 0 and r.config["starts"] == 1
    assert len(r.history["loss"]) == 20


def test_binary_penalty_is_zero_on_two_levels_and_blind_to_scale_and_phase():
    yy, xx = np.mgrid[:16, :16] - 8
    disc = (xx**2 + yy**2 <= 36).astype(np.float32)
    flat = torch.as_tensor(disc * np.exp(1j * 0.3 * xx)).to(torch.complex64)
    ring = flat * torch.as_tensor(1 - 0.5 * np.exp(-(xx**2 + yy**2) / 8.0)).to(torch.complex64)
    assert float(binary_penalty(flat)) < 1e-6
    assert float(binary_penalty(ring)) > 100 * float(binary_penalty(flat)) + 1e-4
    assert abs(float(binary_penalty(3.0 * np.exp(1.0j) * ring)) - float(binary_penalty(ring))) < 1e-6
