"""holdout_error / select_kernel / select_weight: the true kernel beats wrong ones; weights; seeded; paired."""

import numpy as np
import pytest

from doubledip.deblur import degrade, gaussian_kernel, motion_kernel
from doubledip.deblur.kernels import embed_kernel
from doubledip.deblur.kernel_selection import holdout_error, select_kernel, select_weight
from doubledip.deblur.nonblind import tv_weight


@pytest.fixture
def case():
    image = np.zeros((40, 44))
    image[8:30, 6:20] = 0.9
    image[14:36, 24:38] = 0.4
    image[20:26, 10:40] += 0.3
    k = motion_kernel(9, seed=3)
    return degrade(image, k, noise=0.01, seed=5), k


def test_the_true_kernel_predicts_held_out_pixels_best(case):
    y, k = case
    delta = embed_kernel(np.ones((1, 1)), 9)
    wide = gaussian_kernel(9, sigma=2.5)
    flipped = k[::-1, ::-1].copy()
    best, errors = select_kernel(y, [delta, wide, flipped, k], tv_weight(0.01), seed=1)
    assert best == 3 and errors[3] < min(errors[:3])
    assert errors[3] < 2 * 0.01**2  # about the noise variance


def test_the_error_is_seeded_and_the_first_of_equal_candidates_wins(case):
    y, k = case
    w = tv_weight(0.01)
    assert holdout_error(y, k, w, seed=2, iterations=20) == holdout_error(y, k, w, seed=2, iterations=20)
    assert holdout_error(y, k, w, seed=2, iterations=20) != holdout_error(y, k, w, seed=3, iterations=20)
    assert select_kernel(y, [k, k.copy()], w, iterations=20)[0] == 0
    with pytest.raises(ValueError, match="at least one"):
        select_kernel(y, [], w)


def test_held_out_pixels_reject_both_extreme_weights(case):
    y, k = case
    w = tv_weight(0.01)
    best, errors = select_weight(y, k, [w / 100, w, 100 * w], seed=1)
    assert best == 1 and errors[1] < min(errors[0], errors[2])
    assert errors == [holdout_error(y, k, v, seed=1) for v in (w / 100, w, 100 * w)]
