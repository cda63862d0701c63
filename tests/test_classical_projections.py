"""Projections of the classical engine: nearest points, idempotence, free pixels; supports."""

import numpy as np
import pytest
import torch

from doubledip import fft
from doubledip.classical.freepixels import free_islands
from doubledip.classical.projections import (
    fourier_errors,
    gaussian_transfer,
    modulus_projection_,
    prepare_data,
    project_modulus,
    project_object,
)
from doubledip.classical.support import autocorrelation_support, box_support, shrink_wrap, sigma_schedule


def _cplx(rng, shape):
    return torch.as_tensor((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64))


def _data(rng, shape=(5, 6), masked=4, free=3):
    intensity = rng.uniform(0.5, 4.0, shape).astype(np.float32)
    valid = np.ones(shape, bool)
    flat = rng.permutation(valid.size)
    valid.reshape(-1)[flat[:masked]] = False
    free_mask = np.zeros(shape, bool)
    free_mask.reshape(-1)[flat[masked : masked + free]] = True
    return prepare_data(intensity, valid, free_mask, device="cpu"), intensity, valid, free_mask


def _random_point_in_M(rng, data):
    """A random point of the modulus set: measured amplitudes, any phase, anything elsewhere."""
    X = _cplx(rng, data.shape)
    measured = data.measured > 0
    X = torch.where(measured, data.amplitude * torch.exp(1j * torch.angle(X)), X)
    return fft.ifft(X, data.ndim)


@pytest.mark.parametrize("shape", [(5, 6), (4, 3, 5)])
def test_modulus_projection_is_the_nearest_point(rng, shape):
    data, *_ = _data(rng, shape)
    for _ in range(5):
        x = _cplx(rng, shape)
        p = project_modulus(x, data)
        P = fft.fft(p, data.ndim)
        measured = data.measured > 0
        assert torch.allclose(P.abs()[measured], data.amplitude[measured], atol=1e-5)
        d_p = torch.linalg.vector_norm(x - p)
        for _ in range(200):
            q = _random_point_in_M(rng, data)
            assert d_p <= torch.linalg.vector_norm(x - q) + 1e-5
        # and small moves along the set (phase jitter, free pixels) never get closer
        for scale in (1e-3, 1e-2, 1e-1):
            Q = P.clone()
            jitter = torch.as_tensor(rng.normal(0, scale, shape), dtype=torch.float32)
            Q = torch.where(measured, Q * torch.exp(1j * jitter), Q + scale * _cplx(rng, shape))
            assert d_p <= torch.linalg.vector_norm(x - fft.ifft(Q, data.ndim)) + 1e-5


def test_modulus_projection_keeps_masked_and_free_pixels(rng):
    data, intensity, valid, free = _data(rng, (6, 7), masked=6, free=5)
    x = _cplx(rng, (3, 6, 7))
    X = fft.fft(x, 2)
    Y = X.clone()
    modulus_projection_(Y, data)
    untouched = data.measured == 0
    assert torch.equal(Y[:, untouched], X[:, untouched])
    assert untouched.sum() == (~valid).sum() + free.sum()


def test_modulus_projection_is_idempotent_and_batched(rng):
    data, *_ = _data(rng, (6, 5))
    x = _cplx(rng, (4, 6, 5))
    p = project_modulus(x, data)
    assert torch.allclose(project_modulus(p, data), p, atol=1e-5)
    single = torch.stack([project_modulus(x[k], data) for k in range(4)])
    assert torch.allclose(single, p, atol=1e-6)


def test_modulus_projection_reports_the_fourier_error_before_projecting(rng):
    data, *_ = _data(rng, (6, 6))
    X = fft.fft(_cplx(rng, (2, 6, 6)), 2)
    expected, expected_free = fourier_errors(X, data)
    measured = data.measured > 0
    manual = ((X.abs() - data.amplitude)[:, measured] ** 2).sum(-1) / (data.amplitude[measured] ** 2).sum()
    assert torch.allclose(expected, manual, rtol=1e-5)
    loss, free = modulus_projection_(X, data)
    assert torch.allclose(loss, expected) and torch.allclose(free, expected_free)
    after, _ = fourier_errors(X, data)
    assert float(after.max()) < 1e-10


@pytest.mark.parametrize("positivity, real", [(False, False), (True, False), (False, True), (True, True)])
def test_object_projection_is_idempotent_and_nearest(rng, positivity, real):
    shape = (5, 6)
    support = torch.as_tensor(rng.random(shape) < 0.5)
    x = _cplx(rng, shape)
    p = project_object(x, support, positivity=positivity, real=real)
    assert torch.equal(project_object(p, support, positivity=positivity, real=real), p)
    assert torch.all(p[~support] == 0)
    if real:
        assert torch.all(p.imag == 0)
    if positivity:
        assert torch.all(p.real >= 0)
    d_p = torch.linalg.vector_norm(x - p)
    for _ in range(200):  # random points of the (convex) set are never nearer
        q = _cplx(rng, shape) * support
        if real:
            q = q.real.to(torch.complex64)
        if positivity:
            q = torch.complex(q.real.abs(), q.imag)
        assert d_p <= torch.linalg.vector_norm(x - q) + 1e-6


def test_gaussian_transfer_is_a_unit_sum_blur():
    shape = (8, 9)
    g = gaussian_transfer(shape, 1.5, device="cpu")
    assert g[0, 0] == pytest.approx(1.0)
    kernel = fft.ifft(g.to(torch.complex64), 2).real / np.sqrt(np.prod(shape))
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-5)
    half = gaussian_transfer(shape, 1.5, device="cpu", rfft=True)
    assert torch.allclose(half, g[:, : 9 // 2 + 1])


def test_autocorrelation_support_contains_a_translate_of_the_object(rng):
    N = 32
    obj = np.zeros((N, N), np.complex64)
    obj[12:20, 10:22] = np.exp(1j * rng.uniform(0, 1, (8, 12)))
    intensity = np.abs(fft.cfft(obj, 2)) ** 2
    support = autocorrelation_support(torch.as_tensor(fft.uncentre(intensity, 2)), torch.ones(N, N), threshold=0.05)
    centred = fft.centre(support.numpy(), 2)
    box = np.zeros((N, N), bool)
    box[12:20, 10:22] = True
    # the object, centred on the origin, fits inside the autocorrelation support
    assert np.all(centred[box])
    assert centred.sum() < N * N / 2


def test_box_support_is_a_centred_box():
    s = box_support((10, 7), 0.5)
    centred = fft.centre(s.numpy(), 2)
    rows, cols = np.nonzero(centred)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 7, 1, 4)  # sizes 5 and 4, box centre n // 2 on N // 2


def test_shrink_wrap_thresholds_each_start_at_its_own_maximum(rng):
    x = torch.zeros((2, 16, 16), dtype=torch.complex64)
    x[0, 4:8, 4:8] = 1.0
    x[1, 2:10, 3:6] = 5.0
    support = torch.ones((2, 16, 16), dtype=torch.bool)
    new = shrink_wrap(x, support, sigma=1.0, threshold=0.2, ndim=2)
    assert new[0, 4:8, 4:8].all() and not new[0, 12:, 12:].any()
    assert new[1, 2:10, 3:6].all()
    tight = shrink_wrap(x, support, sigma=1.0, threshold=torch.tensor([0.2, 0.9]), ndim=2)
    assert torch.equal(tight[0], new[0]) and tight[1].sum() < new[1].sum()


def test_sigma_schedule_goes_from_start_to_end():
    values = [sigma_schedule(i, 10, 3.0, 1.0) for i in range(10)]
    assert values[0] == pytest.approx(3.0) and values[-1] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert sigma_schedule(0, 1, 3.0, 1.0) == 3.0


def test_free_islands_are_seeded_measured_and_about_the_fraction():
    valid = np.ones((40, 40), bool)
    valid[18:22, 18:22] = False
    a = free_islands(valid, 0.05, radius=1, rng=np.random.default_rng(3))
    b = free_islands(valid, 0.05, radius=1, rng=np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert not np.any(a & ~valid)
    assert 0.05 <= a.sum() / valid.sum() <= 0.05 + 9 / valid.sum()
    # islands: almost every held-out pixel has a held-out neighbour
    padded = np.pad(a, 1)
    neighbours = sum(np.roll(np.roll(padded, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))[1:-1, 1:-1]
    assert np.mean(neighbours[a] > 1) > 0.9
    assert not free_islands(valid, 0.0, rng=np.random.default_rng(0)).any()
