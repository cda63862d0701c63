"""The fused CPU loops do the same arithmetic as the torch operations they replace."""

import numpy as np
import pytest
import torch

from doubledip.classical import ClassicalOptions, Engine, fused
from doubledip.classical.projections import modulus_projection_, prepare_data

pytestmark = pytest.mark.skipif(not fused.AVAILABLE, reason="numba is not installed")


def random_field(rng, shape):
    return torch.from_numpy((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64))


@pytest.mark.parametrize("shape", [(2, 9, 10), (3, 5, 6, 4), (1, 190, 191)])  # the last: 3 chunks, parallel build
def test_modulus_projection_matches_torch(rng, shape):
    grid = shape[1:]
    intensity = rng.uniform(0, 4, grid).astype(np.float32)
    valid = rng.uniform(size=grid) > 0.2
    free = valid & (rng.uniform(size=grid) > 0.9)
    data = prepare_data(intensity, valid, free, device="cpu")
    X = random_field(rng, shape)
    X[0].view(-1)[0] = 0  # a zero field on a measured or unmeasured pixel stays finite
    reference = X.clone()
    loss_ref, free_ref = modulus_projection_(reference, data)
    loss, free_loss = fused.modulus_projection_(X, data)
    assert torch.allclose(X, reference, rtol=1e-5, atol=1e-6)
    assert torch.allclose(loss, loss_ref, rtol=1e-4)
    assert torch.allclose(free_loss, free_ref, rtol=1e-4)
    assert torch.isfinite(X).all()


@pytest.mark.parametrize("constraint", [{}, {"positivity": True}, {"real": True}, {"positivity": True, "real": True}])
@pytest.mark.parametrize("recipe", ["3*ER", "3*HIO", "3*RAAR", "2*HIO + SW + 2*RAAR + 2*ER"])
def test_engine_steps_match_torch(rng, constraint, recipe):
    N = 24
    obj = np.zeros((N, N), np.complex64)
    obj[8:16, 9:15] = rng.uniform(0.5, 1, (8, 6)) * np.exp(1j * rng.uniform(-1, 1, (8, 6)))
    intensity = (np.abs(np.fft.fftshift(np.fft.fft2(obj, norm="ortho"))) ** 2).astype(np.float32)
    mask = np.zeros((N, N), np.uint8)
    mask[11:14, 11:14] = 1
    runs = {}
    for on in (True, False):
        e = Engine(intensity, mask, options=ClassicalOptions(starts=3, fused=on, **constraint), seed=4)
        assert e.fused is on
        e.run(recipe)
        runs[on] = (e.x, e.history())
    assert torch.allclose(runs[True][0], runs[False][0], rtol=1e-4, atol=1e-5)
    for key in ("loss_starts", "free_loss_starts", "support_fraction_starts"):
        np.testing.assert_allclose(runs[True][1][key], runs[False][1][key], rtol=1e-4, atol=1e-7)


def test_object_update_is_the_object_projection_for_er(rng):
    x, y = random_field(rng, (2, 7, 8)), random_field(rng, (2, 7, 8))
    support = torch.from_numpy(rng.uniform(size=(2, 7, 8)) > 0.5)
    fused.object_update_(x, y, support, alpha=0.0, gamma=0.0, positivity=True)
    expected = torch.where(support, torch.complex(y.real.clamp_min(0), y.imag), torch.zeros_like(y))
    assert torch.equal(x, expected)


def _project_once(N):
    X = torch.ones((1, N, N), dtype=torch.complex64)
    data = prepare_data(np.full((N, N), 4.0, np.float32), np.ones((N, N), bool), np.zeros((N, N), bool), device="cpu")
    return float(fused.modulus_projection_(X, data)[0][0]) * data.norm  # the unnormalised residual


def test_a_forked_worker_can_use_the_loops_after_its_parent():
    # numba's GNU OpenMP layer aborts such a child; worker pools fork on Linux
    multiprocessing = pytest.importorskip("multiprocessing")
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    # the parent runs more than two chunks: the parallel build (and its thread pool) where there are threads;
    # the child's torch operations stay small (torch's own OpenMP pool is not usable after a fork either)
    assert _project_once(192) == 192.0**2
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(_project_once, [4]) == [16.0]
