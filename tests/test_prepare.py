"""Preprocessing: centre finding, masks, crop/pad, binning, the prepare pipeline and its command."""

import json
from pathlib import Path

import numpy as np
import pytest

from doubledip.errors import ConfigError, DataError
from doubledip.io import Measurement, read_pattern, write_measurement
from doubledip.preprocess import (
    PrepareOptions,
    apply_threshold,
    auto_bin,
    bin_pattern,
    centre_of_mass,
    crop_or_pad,
    dilate_mask,
    estimate_oversampling,
    extract,
    friedel_centre,
    gap_mask,
    negative_mask,
    prepare,
    prepare_options,
    saturated_mask,
    shift_to_centre,
    zero_mask,
)
from doubledip.simulate import crystal2d, crystal3d, simulate, simulate_measurement

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "planar_cdi_1024.tif"

CENTRE_FINDERS = {"com": centre_of_mass, "friedel": friedel_centre}


def _real_object_pattern(ndim=2, seed=0, **kw):
    box = np.abs(crystal2d(16, seed=seed)) if ndim == 2 else np.abs(crystal3d(8, seed=seed))
    return simulate_measurement(box, seed=seed, **kw)


@pytest.mark.parametrize("method", ["com", "friedel"])
@pytest.mark.parametrize("shift", [(0, 0), (3, -2), (-4, 1)])
def test_centre_recovers_a_known_shift_2d(method, shift):
    m = _real_object_pattern(2)
    rolled = np.roll(m.intensity, shift, axis=(0, 1))
    centre = CENTRE_FINDERS[method](rolled)
    expected = np.array([16, 16]) + shift
    assert np.all(np.abs(np.array(centre) - expected) < 0.5)


@pytest.mark.parametrize("method", ["com", "friedel"])
def test_centre_recovers_a_known_shift_3d(method):
    m = _real_object_pattern(3)
    shift = (1, -2, 2)
    rolled = np.roll(m.intensity, shift, axis=(0, 1, 2))
    centre = CENTRE_FINDERS[method](rolled)
    assert np.all(np.abs(np.array(centre) - (np.array([8, 8, 8]) + shift)) < 0.5)


@pytest.mark.parametrize("method", ["com", "friedel"])
def test_centre_of_a_weak_phase_cell_with_noise_beamstop_and_gaps(method):
    m = simulate("cell2d", 16, seed=2, photons=1e6, beamstop=1.5, gaps=1)
    shift = (2, -3)
    intensity, mask = np.roll(m.intensity, shift, (0, 1)), np.roll(m.mask, shift, (0, 1))
    centre = CENTRE_FINDERS[method](intensity, mask)
    assert np.all(np.abs(np.array(centre) - (np.array([16, 16]) + shift)) < 0.5)


def test_friedel_centre_is_half_integer_when_the_symmetry_centre_is():
    rng = np.random.default_rng(0)
    half = rng.random((7, 9))
    pattern = np.zeros((20, 20))
    pattern[2:9, 3:12] = half
    pattern[9:16, 3:12] = half[::-1, ::-1]  # point symmetric about (8.5, 7)
    centre, score = friedel_centre(pattern, return_score=True, amplitude=False)
    assert centre == pytest.approx((8.5, 7.0), abs=1e-6)
    assert score == pytest.approx(1.0)


def test_centre_finders_ignore_masked_pixels():
    m = _real_object_pattern(2)
    intensity = m.intensity.copy()
    mask = np.zeros(intensity.shape, np.uint8)
    intensity[2, 5] = mask[2, 5] = 1
    intensity[2, 5] = 1e9  # a hot masked pixel must not pull the centre
    for finder in CENTRE_FINDERS.values():
        assert np.allclose(finder(intensity, mask), finder(m.intensity), atol=1e-6)


def test_shift_to_centre_puts_the_centre_at_n_half_and_masks_what_comes_in():
    m = _real_object_pattern(2)
    rolled_in = np.zeros_like(m.intensity)
    rolled_in[3:, :30] = m.intensity[:-3, 2:]  # moved by (+3, -2), zero-filled
    out, mask, shift = shift_to_centre(rolled_in, None, (19.0, 14.0))
    assert shift == (-3, 2)
    assert np.array_equal(out[:-3, 2:], rolled_in[3:, :-2])
    assert mask[-3:].all() and mask[:, :2].all() and not mask[:-3, 2:].any()
    assert np.all(np.abs(np.array(friedel_centre(out, mask)) - 16) < 0.5)


@pytest.mark.parametrize("n, size", [(16, 10), (16, 11), (15, 20), (15, 8), (16, 16)])
def test_crop_or_pad_keeps_the_centre_at_n_half(n, size):
    intensity = np.zeros((n, n), np.float32)
    intensity[n // 2, n // 2] = 5
    out, mask = crop_or_pad(intensity, None, size)
    assert out.shape == (size, size)
    assert out[size // 2, size // 2] == 5 and out.sum() == 5
    assert int(mask.sum()) == max(size * size - n * n, 0)  # padding masked, nothing else


def test_extract_masks_pixels_from_outside_and_keeps_the_input_mask():
    intensity = np.arange(16, dtype=np.float32).reshape(4, 4)
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1] = 1
    out, out_mask = extract(intensity, mask, (-1, 2), (3, 3))
    assert out_mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 1]]
    assert out[1:, :2].tolist() == [[2, 3], [6, 7]]
    assert out[out_mask != 0].sum() == 0


def test_binning_preserves_the_total_counts_on_measured_pixels():
    rng = np.random.default_rng(1)
    intensity = rng.poisson(5.0, (12, 12)).astype(np.float32)
    out, mask = bin_pattern(intensity, None, 3)
    assert out.shape == (4, 4) and not mask.any()
    assert out.sum() == pytest.approx(intensity.sum())
    masked = np.zeros((12, 12), np.uint8)
    masked[4, 7] = masked[0, 0] = 1
    out, mask = bin_pattern(intensity, masked, 3)
    assert mask.sum() == 2 and mask[1, 2] and mask[0, 0]
    full_blocks = np.kron(1 - mask, np.ones((3, 3))).astype(bool)
    assert out[mask == 0].sum() == pytest.approx(intensity[full_blocks].sum())


def test_binning_majority_rule_scales_partly_measured_blocks():
    intensity = np.ones((4, 4), np.float32)
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = 1  # 1 of 4 masked: kept, scaled to the full block
    mask[2:4, 2] = 1  # 2 of 4 masked: not more than half measured -> masked
    out, out_mask = bin_pattern(intensity, mask, 2, rule="majority")
    assert out_mask.tolist() == [[0, 0], [0, 1]]
    assert out[0, 0] == pytest.approx(4.0) and out[1, 1] == 0


def test_binning_3d_and_odd_sizes_drop_the_trailing_rows():
    intensity = np.ones((5, 7, 6), np.float32)
    out, mask = bin_pattern(intensity, None, 2)
    assert out.shape == (2, 3, 3) and np.all(out == 8)


def test_masks_on_tiny_arrays():
    a = np.array([[0, 1, -2], [70000, 3, 0], [0, 0, 0]], np.float32)
    assert zero_mask(a).tolist() == [[True, False, False], [False, False, True], [True, True, True]]
    assert negative_mask(a).tolist() == [[False, False, True], [False, False, False], [False, False, False]]
    assert saturated_mask(a, 65535).sum() == 1 and saturated_mask(a, 65535)[1, 0]
    assert gap_mask(a).tolist() == [[False] * 3, [False] * 3, [True] * 3]  # the empty last row
    one = np.zeros((7, 7), bool)
    one[3, 3] = True
    assert dilate_mask(one, 0).sum() == 1
    assert dilate_mask(one, 1).sum() == 5  # a plus: distance <= 1
    assert dilate_mask(one, 2).sum() == 13
    assert dilate_mask(np.zeros((4, 4, 4), bool), 2).sum() == 0


def test_threshold_sets_background_to_measured_zero():
    a = np.array([[0.5, 2.0], [1.0, -1.0]], np.float32)
    out, count = apply_threshold(a, 1.0)
    assert out.tolist() == [[0.0, 2.0], [1.0, 0.0]] and count == 2


def test_prepare_with_default_options_changes_nothing():
    m = simulate("cell2d", 8, seed=0, photons=1e5, beamstop=1)
    out, report = prepare(m)
    assert np.array_equal(out.intensity, m.intensity) and np.array_equal(out.mask, m.mask)
    assert np.array_equal(out.object, m.object) and report["object"] == "kept"
    assert out.meta["prepare"] is report
    json.dumps(out.meta)


def test_prepare_centres_a_shifted_pattern_and_records_it():
    m = _real_object_pattern(2)
    shifted = Measurement(np.roll(m.intensity, (3, -2), (0, 1)), source="shifted")
    out, report = prepare(shifted, PrepareOptions(center="friedel"))
    assert report["centre"] == pytest.approx([19, 14], abs=0.5)
    assert report["shift"] == [-3, 2]
    assert np.all(np.abs(np.array(friedel_centre(out.intensity, out.mask)) - 16) < 0.5)
    assert out.object is None and out.meta["prepare"]["centre_method"] == "friedel"


def test_prepare_bin_and_size_keep_friedel_symmetry_about_n_half():
    m = _real_object_pattern(2, pattern_shape=(64, 64))
    out, report = prepare(m, PrepareOptions(center="auto", bin=2, size=24))
    assert out.shape == (24, 24) and report["bin"] == 2
    assert report["centre_method"] == "auto (friedel)"
    assert np.all(np.abs(np.array(friedel_centre(out.intensity, out.mask)) - 12) < 0.5)
    assert report["total_counts_out"] + report["dropped_counts"] == pytest.approx(report["total_counts_in"], rel=1e-6)


def test_prepare_masks_are_counted_and_applied():
    intensity = np.full((8, 8), 3.0, np.float32)
    intensity[0, 0] = 0
    intensity[4, 4] = 100
    out, report = prepare(Measurement(intensity), PrepareOptions(mask_zeros=True, mask_saturated=50, mask_dilate=1,
                                                                 threshold=2))
    masked = report["masked"]
    assert masked["zeros"] == 1 and masked["saturated"] == 1
    assert masked["dilation"] == 2 + 4  # corner pixel grows by 2, centre pixel by 4
    assert masked["total"] == out.mask.sum() == 8
    assert out.intensity[out.mask != 0].sum() == 0 and report["thresholded"] == 0


def test_prepare_refuses_negative_measured_pixels_unless_masked_or_thresholded():
    m = Measurement(np.array([[1, 2, 3, 4]] * 4, np.float32))
    m.intensity[1, 1] = -1
    with pytest.raises(DataError, match="negative"):
        prepare(m, PrepareOptions(center=None))
    assert prepare(m, PrepareOptions(mask_negative=True))[0].mask[1, 1] == 1
    out = prepare(m, PrepareOptions(threshold=0))[0]
    assert out.intensity[1, 1] == 0 and out.mask[1, 1] == 0


def test_prepare_options_are_validated():
    with pytest.raises(ConfigError, match="known options"):
        prepare_options({"centre_method": "com"})
    for bad in ({"center": "middle"}, {"bin": 0}, {"bin": "two"}, {"size": 2}, {"mask_dilate": -1},
                {"bin_mask": "all"}):
        with pytest.raises(ConfigError):
            prepare_options(bad)
    assert prepare_options({"center": [10, 12], "size": [8, 8]}).center == (10.0, 12.0)
    with pytest.raises(ConfigError, match="2 axes"):
        prepare(Measurement(np.ones((8, 8))), PrepareOptions(center=(1.0, 2.0, 3.0)))


def test_oversampling_estimate_and_auto_bin():
    m = _real_object_pattern(2, pattern_shape=(64, 64))
    box = np.abs(m.object) > 0
    extent = max(np.ptp(np.nonzero(box.any(axis=a))[0]) + 1 for a in (0, 1))
    truth = 64 / extent
    estimate = estimate_oversampling(m.intensity, m.mask)["oversampling"]
    assert all(0.75 * truth < s < 1.35 * truth for s in estimate)
    assert auto_bin([6.0, 5.9], target=2.5) == 2
    assert auto_bin([2.2, 3.0]) == 1
    out, report = prepare(m, PrepareOptions(bin="auto"))
    assert report["bin"] == auto_bin(report["oversampling_in"]) and out.shape == (64 // report["bin"],) * 2


@pytest.fixture(scope="module")
def real_crop():
    if not DATA.exists():
        pytest.skip(f"{DATA} is not available")
    m = read_pattern(DATA)
    return Measurement(m.intensity[383:639, 383:639], source="planar_cdi crop")  # full-res index 511 -> 128


def test_friedel_centre_of_the_real_pattern(real_crop):
    binned, mask = bin_pattern(real_crop.intensity, real_crop.mask, 4)
    centre = friedel_centre(binned, mask)
    full = np.array(centre) * 4 + 1.5 + 383  # binned index -> full-resolution index
    assert np.all(np.abs(full - 511) < 1.5)


def test_prepare_the_real_pattern_cropped_and_binned(real_crop):
    out, report = prepare(real_crop, PrepareOptions(center="auto", bin=4))
    assert report["centre_method"] == "auto (friedel)" and report["friedel_score"] > 0.9
    assert np.all(np.abs(np.array(report["centre"]) + 383 - 511) < 1.0)
    assert out.shape == (64, 64)
    assert np.all(np.abs(np.array(friedel_centre(out.intensity, out.mask)) - 32) < 0.5)


# --------------------------------------------------------------------------- command line


def test_prepare_command(tmp_path, run_cli):
    m = _real_object_pattern(2)
    source = tmp_path / "raw.npz"
    write_measurement(source, Measurement(np.roll(m.intensity, (2, 3), (0, 1)), source="raw"))
    target, figure = tmp_path / "prepared.npz", tmp_path / "prepared.png"
    code, out, err = run_cli("prepare", source, "-o", target, "--center", "auto", "--mask-dilate", "0",
                             "--figure", figure)
    assert code == 0, err
    assert "centre: (18." in out and "wrote" in out
    prepared = read_pattern(target)
    assert prepared.meta["prepare"]["shift"] == [-2, -3] and figure.stat().st_size > 0
    code, out, err = run_cli("prepare", source, "-o", tmp_path / "p.npz", "--center", "17,19", "--json")
    assert code == 0 and json.loads(out)["centre"] == [17.0, 19.0]


@pytest.mark.parametrize("argv, message", [
    (["--center", "middle"], "--center"),
    (["--bin", "two"], "--bin"),
    (["--size", "2"], "size"),
    (["--mask-saturated", "x"], "--mask-saturated"),
    (["--mask", "missing.npz"], "missing.npz"),
])
def test_prepare_command_errors_are_one_line(tmp_path, run_cli, argv, message):
    source = tmp_path / "raw.npz"
    write_measurement(source, _real_object_pattern(2))
    code, out, err = run_cli("prepare", source, "-o", tmp_path / "out.npz", *argv)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.npz").exists()


def test_prepare_command_refuses_unknown_output_format(tmp_path, run_cli):
    source = tmp_path / "raw.npz"
    write_measurement(source, _real_object_pattern(2))
    code, _, err = run_cli("prepare", source, "-o", tmp_path / "out.tif")
    assert code == 2 and "out.tif" in err and len(err.strip().splitlines()) == 1
