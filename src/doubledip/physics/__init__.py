"""Forward models of the phase-retrieval settings: far field, Fresnel, Gaussian."""

from doubledip.physics.base import ForwardModel, dottest
from doubledip.physics.data_terms import amplitude_loss, poisson_nll, huber_amplitude_loss, DATA_TERMS
from doubledip.physics.farfield import FarField, box_slices
from doubledip.physics.fresnel import Fresnel
from doubledip.physics.gaussian import Gaussian

__all__ = [
    "ForwardModel",
    "dottest",
    "FarField",
    "Fresnel",
    "Gaussian",
    "box_slices",
    "amplitude_loss",
    "poisson_nll",
    "huber_amplitude_loss",
    "DATA_TERMS",
]
