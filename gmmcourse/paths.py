"""Where things live in a checkout of the course kit."""

from __future__ import annotations

import os
from pathlib import Path

from gmmcourse.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
SOLUTIONS_DIR = REPO_ROOT / "solutions"
STARTER_DIR = REPO_ROOT / "starter_code"
ASSIGNMENTS_DIR = REPO_ROOT / "assignments"
AUTOGRADER_DIR = REPO_ROOT / "autograder"
DIST_DIR = REPO_ROOT / "dist"
CACHE_DIR = Path(os.environ.get("GMMCOURSE_CACHE", REPO_ROOT / ".cache"))

UNITS = (
    "unit1_gaussian_classifier",
    "unit2_gmm_mnist",
    "unit3_gmm_em_lbfgs",
    "unit4_conditional_gmm",
    "unit5_density_models",
)


def available_units() -> list[str]:
    """Units that have a solution folder, in course order."""
    return [u for u in UNITS if (SOLUTIONS_DIR / u).is_dir()]


def resolve_units(names: list[str] | None) -> list[str]:
    """Map user-given unit names (full name or a prefix such as ``unit3``) to unit folders."""
    have = available_units()
    if not names:
        return have
    out = []
    for name in names:
        matches = [u for u in have if u == name or u.startswith(name.rstrip("_") + "_")]
        if len(matches) != 1:
            known = ", ".join(have) or "none yet"
            raise UserError(f"unknown unit {name!r}; units with solutions: {known}")
        out.append(matches[0])
    return out
