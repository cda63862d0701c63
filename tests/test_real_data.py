"""The measured pattern ``../shared/data/planar_cdi_1024.tif``, cropped and binned: a short classical run fits it."""

from pathlib import Path

import numpy as np
import pytest

from doubledip import fft, io, metrics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "planar_cdi_1024.tif"

pytestmark = pytest.mark.skipif(not DATA.is_file(), reason=f"real data not found at {DATA}")


@pytest.fixture(scope="module")
def pattern():
    from doubledip.preprocess import PrepareOptions, prepare

    # the central 128 x 128 detector pixels binned by 2: 64 x 64, oversampling about 3 per axis;
    # zeros are weak signal on this detector, not unmeasured pixels (no mask_zeros)
    prepared, report = prepare(io.read_pattern(DATA), PrepareOptions(center="auto", bin=2, size=64))
    return prepared, report


def _r_factor(obj, m) -> float:
    return metrics.r_factor(m.intensity, np.abs(fft.cfft(np.asarray(obj, np.complex128), 2)), m.mask)


def test_prepared_pattern_is_centred_and_fully_measured(pattern):
    m, report = pattern
    assert m.intensity.shape == (64, 64) and not m.mask.any()
    assert report["friedel_score"] > 0.95
    assert np.all(np.abs(report["residual_offset"]) <= 0.5)
    assert min(report["oversampling"]) > 2


def test_short_classical_run_fits_the_data(pattern):
    from doubledip.classical.presets import options_class, solve

    m, _ = pattern
    options = options_class("hio-er-sw")(recipe="30*HIO + 6*(20*HIO + SW) + 50*ER", starts=2)
    result = solve(m, options, seed=0)
    fitted = _r_factor(result.object, m)
    # references: random objects filling the loose box (half the grid per axis) and the same box
    # with the right Fourier magnitudes but random phases (the kind of start HIO begins from)
    rng = np.random.default_rng(1)
    box = (slice(16, 48), slice(16, 48))
    random_object = np.zeros((64, 64), np.complex128)
    random_object[box] = rng.normal(size=(32, 32)) + 1j * rng.normal(size=(32, 32))
    start = fft.icfft(np.sqrt(m.intensity) * np.exp(2j * np.pi * rng.uniform(size=(64, 64))), 2)
    start_in_box = np.zeros_like(start)
    start_in_box[box] = start[box]
    references = [_r_factor(random_object, m), _r_factor(start_in_box, m)]
    assert np.isfinite(fitted)
    assert fitted < 0.5 * min(references), (fitted, references)
