"""Simulated objects and measurements: seeding, geometry, strain, dislocation, noise, beamstop, gaps."""

import numpy as np
import pytest
from scipy import ndimage

from doubledip import fft
from doubledip.simulate import (
    KINDS,
    beamstop_mask,
    cell2d,
    crystal2d,
    crystal3d,
    gap_mask,
    make_object,
    poisson_noise,
    simulate,
    simulate_measurement,
)

SMALL = {"crystal2d": 24, "crystal3d": 12, "cell2d": 23}


def _border(obj):
    values = []
    for axis in range(obj.ndim):
        values.append(np.abs(np.take(obj, [0, -1], axis=axis)).max())
    return max(values)


def _circular_ptp(angles):
    """Length of the shortest arc holding every angle (the peak-to-peak of a phase that does not wrap)."""
    a = np.sort(np.mod(angles, 2 * np.pi))
    gaps = np.diff(np.concatenate([a, [a[0] + 2 * np.pi]]))
    return 2 * np.pi - gaps.max()


@pytest.mark.parametrize("kind", list(KINDS))
def test_generators_are_seeded(kind):
    size = SMALL[kind]
    a = make_object(kind, size, seed=3)
    b = make_object(kind, size, seed=3)
    c = make_object(kind, size, seed=4)
    assert a.dtype == np.complex64 and a.shape == (size,) * (3 if kind == "crystal3d" else 2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("size", [6, 9, 16, 21])
def test_object_fits_in_its_box(kind, size):
    if kind == "crystal3d" and size > 16:
        size = 15
    for seed in range(3):
        obj = make_object(kind, size, seed=seed)
        assert np.isfinite(obj).all()
        assert np.abs(obj).max() > 0
        assert _border(obj) == 0


@pytest.mark.parametrize("generator, size", [(crystal2d, 32), (crystal2d, 25), (crystal3d, 14)])
def test_crystal_magnitude_and_strain_phase(generator, size):
    for seed in range(4):
        obj = generator(size, seed=seed)
        magnitude = np.abs(obj)
        assert magnitude.max() == pytest.approx(1.0, abs=1e-6)
        inside = magnitude > 0.5
        assert inside.sum() > (0.1 if obj.ndim == 2 else 0.02) * obj.size
        assert 2.0 - 1e-4 <= _circular_ptp(np.angle(obj[inside])) <= 4.0 + 1e-4


def test_crystal_phase_has_no_linear_ramp():
    # A ramp would move the centre of mass of the diffraction pattern away from N // 2.
    # (a ramp of 0.1 rad/pixel would move it by 1 pixel here)
    for obj in [crystal2d(32, seed=s) for s in range(3)] + [crystal3d(16, seed=s) for s in range(2)]:
        intensity = np.abs(fft.cfft(np.pad(obj, obj.shape[0] // 2), obj.ndim)) ** 2
        grids = fft.frequency_grid(intensity.shape)
        centre = [float((g * intensity).sum() / intensity.sum()) for g in grids]
        assert np.abs(centre).max() < 0.2


def test_cell_real_part_nonnegative_with_small_structured_imaginary_part():
    obj = cell2d(31, seed=2)
    inside = obj.real > 0
    assert obj.real.min() >= 0
    ratio = obj.imag[inside] / obj.real[inside]
    assert 0.01 < ratio.mean() < 0.2
    assert ratio.std() > 0  # structured, not a constant multiple
    assert np.unique(np.round(obj.real[inside], 3)).size > 20  # internal structure


def _winding(phase_loop):
    d = np.diff(np.concatenate([phase_loop, phase_loop[:1]]))
    return float(np.sum(np.angle(np.exp(1j * d))))


def _square_loop(centre, r):
    cy, cx = centre
    top = [(cy - r, cx + i) for i in range(-r, r)]
    right = [(cy + i, cx + r) for i in range(-r, r)]
    bottom = [(cy + r, cx - i) for i in range(-r, r)]
    left = [(cy - i, cx - r) for i in range(-r, r)]
    return top + right + bottom + left


@pytest.mark.parametrize("seed", range(5))
def test_dislocation_has_unit_winding_number(seed):
    plain = crystal2d(32, seed=seed)
    obj = crystal2d(32, seed=seed, dislocation=True)
    interior = ndimage.binary_erosion(np.abs(plain) > 0.99, iterations=2)
    ratio = np.where(interior, np.abs(obj) / np.maximum(np.abs(plain), 1e-12), np.inf)
    core = np.unravel_index(np.argmin(ratio), ratio.shape)
    assert ratio[core] < 0.5  # the magnitude dips at the core
    loop = _square_loop(core, 2)
    winding = _winding(np.array([np.angle(obj[p]) for p in loop]))
    assert abs(winding) == pytest.approx(2 * np.pi, abs=1e-3)
    # away from the core the phase is smooth: no winding
    far = _square_loop(core, 2)
    offset = 6 if core[0] < 16 else -6
    far = [(p[0] + offset, p[1]) for p in far]
    if all(interior[p] for p in far):
        assert _winding(np.array([np.angle(obj[p]) for p in far])) == pytest.approx(0, abs=1e-3)


def test_make_object_rejects_unknown_kind_and_options():
    with pytest.raises(ValueError, match="known kinds"):
        make_object("quasicrystal", 16, seed=0)
    with pytest.raises(ValueError, match="dislocation"):
        make_object("cell2d", 16, seed=0, dislocation=True)
    with pytest.raises(ValueError):
        crystal2d(3, seed=0)


@pytest.mark.parametrize("shape", [(16, 16), (15, 17), (9, 9, 9)])
def test_noiseless_measurement_is_the_far_field_of_the_stored_object(shape):
    box = tuple((s + 1) // 2 for s in shape)
    obj = (crystal3d if len(shape) == 3 else crystal2d)(box[0], seed=1)
    obj = obj[tuple(slice(0, b) for b in box)]
    m = simulate_measurement(obj, pattern_shape=shape, seed=0)
    assert m.intensity.shape == shape and m.intensity.dtype == np.float32
    assert m.mask.dtype == np.uint8 and not m.mask.any()
    assert m.object.shape == shape and m.object.dtype == np.complex64
    expected = np.abs(fft.cfft(m.object.astype(np.complex128), len(shape))) ** 2
    np.testing.assert_allclose(m.intensity, expected, rtol=1e-4, atol=1e-6 * expected.max())
    # the box lands centred on the grid
    assert np.abs(m.object).sum() == pytest.approx(np.abs(obj).sum(), rel=1e-5)


def test_default_pattern_is_twice_the_box():
    m = simulate_measurement(crystal2d(12, seed=0), seed=0)
    assert m.intensity.shape == (24, 24)


def test_poisson_counts_total_photons_and_object_scaling():
    photons = 1e6
    m = simulate_measurement(crystal2d(16, seed=2), photons=photons, seed=7)
    assert np.allclose(m.intensity, np.round(m.intensity))
    assert abs(m.intensity.sum() - photons) < 5 * np.sqrt(photons)
    # Parseval: the stored object's far field holds exactly the expected counts
    assert np.vdot(m.object, m.object).real == pytest.approx(photons, rel=1e-5)
    again = simulate_measurement(crystal2d(16, seed=2), photons=photons, seed=7)
    np.testing.assert_array_equal(m.intensity, again.intensity)
    other = simulate_measurement(crystal2d(16, seed=2), photons=photons, seed=8)
    assert not np.array_equal(m.intensity, other.intensity)


def test_poisson_noise_mean(rng):
    counts = poisson_noise(np.full((20, 20), 3.0), 4e4, rng=rng)
    assert counts.dtype == np.float32
    assert abs(counts.sum() - 4e4) < 5 * 200
    with pytest.raises(ValueError):
        poisson_noise(np.ones((4, 4)), -1, rng=rng)


@pytest.mark.parametrize("shape, radius", [((16, 16), 2.5), ((15, 15), 1.0), ((9, 10, 11), 1.5)])
def test_beamstop_masks_the_centre_disk_and_zeros_it(shape, radius):
    mask = beamstop_mask(shape, radius)
    q2 = sum(g.astype(float) ** 2 for g in fft.frequency_grid(shape))
    np.testing.assert_array_equal(mask != 0, q2 <= radius**2)
    assert mask[tuple(s // 2 for s in shape)] == 1
    box = tuple((s + 1) // 2 for s in shape)
    obj = (crystal3d if len(shape) == 3 else crystal2d)(max(box), seed=0)[tuple(slice(0, b) for b in box)]
    m = simulate_measurement(obj, pattern_shape=shape, photons=1e5, beamstop=radius, seed=1)
    np.testing.assert_array_equal(m.mask, mask)
    assert np.all(m.intensity[mask != 0] == 0)
    assert not beamstop_mask(shape, 0).any()


def test_gaps_are_lines_away_from_the_centre(rng):
    shape = (32, 30)
    mask = gap_mask(shape, 2, rng=rng, width=2)
    rows = np.nonzero(mask.all(axis=1))[0]
    cols = np.nonzero(mask.all(axis=0))[0]
    assert len(rows) == 4 and len(cols) == 4  # two 2-pixel lines per axis
    assert mask[16, 15] == 0
    assert not gap_mask(shape, 0, rng=rng).any()
    m = simulate_measurement(crystal2d(15, seed=0), pattern_shape=shape, photons=1e5, gaps=1, seed=3)
    assert np.all(m.intensity[m.mask != 0] == 0)
    assert m.mask.mean() > 0


def test_simulate_records_settings_and_seeds():
    m = simulate("crystal2d", 12, seed=5, photons=1e5, beamstop=1.5, gaps=1, dislocation=True)
    for key in ("kind", "size", "seed", "object_seed", "noise_seed", "photons", "beamstop", "gaps", "dislocation"):
        assert key in m.meta
    assert m.meta["kind"] == "crystal2d" and m.meta["seed"] == 5 and m.meta["dislocation"] is True
    assert m.meta["noise_seed"] != m.meta["object_seed"]
    assert simulate("crystal3d", 6, seed=0).intensity.shape == (12, 12, 12)
    with pytest.raises(ValueError):
        simulate("crystal2d", 12, seed=0, pattern_size=8)
    with pytest.raises(ValueError):
        simulate("blob", 12, seed=0)
