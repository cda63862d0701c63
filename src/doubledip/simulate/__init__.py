"""Simulated CDI data: test objects (crystals 2D/3D, cells), Poisson noise, beamstop, detector gaps.

>>> from doubledip.simulate import crystal2d, simulate_measurement
>>> m = simulate_measurement(crystal2d(32, seed=0), photons=1e6, beamstop=2, seed=1)
>>> m.intensity.shape
(64, 64)
"""

from doubledip.simulate.measure import (
    beamstop_mask,
    gap_mask,
    noise_seed,
    poisson_noise,
    simulate,
    simulate_measurement,
)
from doubledip.simulate.objects import KINDS, NDIM, cell2d, crystal2d, crystal3d, make_object

__all__ = [
    "crystal2d",
    "crystal3d",
    "cell2d",
    "KINDS",
    "NDIM",
    "make_object",
    "poisson_noise",
    "beamstop_mask",
    "gap_mask",
    "noise_seed",
    "simulate_measurement",
    "simulate",
]
