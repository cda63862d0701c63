"""Deep image priors: generators (2D/3D), complex parameterizations, the reusable fitting loop,
and the ``ddip`` phase-retrieval method (:mod:`doubledip.dip.solver`, registered on import)."""

from doubledip.dip.fitting import FitOptions, FitResult, fit, learning_rate, select_best
from doubledip.dip.generators import Generator
from doubledip.dip.parameterizations import ComplexDIP, child_seed

__all__ = ["Generator", "ComplexDIP", "FitOptions", "FitResult", "fit", "learning_rate", "select_best", "child_seed"]
