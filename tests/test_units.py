"""Every unit's committed release is what a fresh build makes, its references are what the solution
computes today, its solution earns full marks and its untouched starter zero (`gmmcourse check`)."""

import pytest

from gmmcourse import paths
from tests.conftest import run_cli

UNITS = paths.available_units()


def test_at_least_one_unit_exists():
    assert UNITS, "no unit under solutions/"


@pytest.mark.parametrize("unit", UNITS)
def test_gmmcourse_check_passes(unit):
    # two BLAS threads here, one in test_reproducible.py's build: generated files must not care
    proc = run_cli("check", unit, env={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
