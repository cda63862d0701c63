"""Shared test settings: a bounded hypothesis profile and small helpers."""

import os

os.environ.setdefault("GOMP_SPINCOUNT", "1000")  # as the CLI does, before torch loads

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "bounded", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bounded"))

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def run_cli(capsys):
    """Run the real ``doubledip`` entry point in-process; returns (exit code, stdout, stderr)."""
    from doubledip.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
