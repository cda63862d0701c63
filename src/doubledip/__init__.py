"""doubledip: phase retrieval for coherent diffraction imaging with untrained deep
image priors, the classical projection algorithms, and blind deblurring.

The library never prints and never seeds globally; the ``doubledip`` command
line owns messages and progress bars.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from doubledip.errors import ConfigError, DataError, UserError  # noqa: E402
from doubledip.result import Result  # noqa: E402

__all__ = ["__version__", "Result", "DataError", "ConfigError", "UserError"]
