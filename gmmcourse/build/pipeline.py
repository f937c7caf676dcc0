"""A whole build of one unit: every step into a staging folder, then into the repository at once.

The steps, in order: starter code (:mod:`~gmmcourse.build.strip`), release folder
(:mod:`~gmmcourse.build.notebook`), public checks (:mod:`~gmmcourse.build.public_checks`), zips
(:mod:`~gmmcourse.build.package`). Nothing in the repository changes unless the whole unit built.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from gmmcourse import paths
from gmmcourse.build import drift, notebook, package, progress, strip, units
from gmmcourse.build.public_checks import public_checks
from gmmcourse.build.units import UnitSources


def build_unit_into(unit: UnitSources, root: Path) -> None:
    """Build ``starter_code/``, ``assignments/`` and ``dist/`` of one unit under ``root``.

    Parameters
    ----------
    unit : UnitSources
        The unit (validated by :func:`gmmcourse.build.units.load`).
    root : Path
        An empty folder that takes the place of the repository root.
    """
    starter = root / "starter_code" / unit.name
    progress.step("starter code (solution regions become stubs)")
    strip.build_starter(unit.src, starter)
    progress.step("release folder" + (" (nbgrader)" if unit.notebooks() else ""))
    release = notebook.release_folder(unit, root / "assignments", starter)
    progress.step("public checks")
    public_checks(unit, release)
    progress.step("autograder and student zips")
    dist = root / "dist"
    dist.mkdir(exist_ok=True)
    package.build_autograder_zip(unit, dist / f"{unit.name}-autograder.zip")
    package.build_student_zip(unit, release, dist / f"{unit.name}-student.zip")


def _replace_tree(new: Path, old: Path) -> None:
    """Swap folder ``new`` in for ``old`` (old kept until the new one is in place)."""
    old.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if old.exists():
        trash = old.with_name(f".{old.name}.old-{os.getpid()}")
        os.replace(old, trash)
    os.replace(new, old)
    if trash is not None:
        shutil.rmtree(trash)


def build_unit(name: str) -> None:
    """Build one unit's generated files in staging, then move them into the repository.

    Parameters
    ----------
    name : str
        The unit's folder name.

    Raises
    ------
    UserError
        When the unit's declaration or sources are malformed (nothing is written then).
    """
    unit = units.load(name)
    with tempfile.TemporaryDirectory(prefix="gmmcourse-build-", dir=paths.REPO_ROOT) as tmp:
        staging = Path(tmp)
        build_unit_into(unit, staging)
        _replace_tree(staging / "starter_code" / name, paths.STARTER_DIR / name)
        drift.keep_equivalent(staging / "assignments" / name, paths.ASSIGNMENTS_DIR / name)
        _replace_tree(staging / "assignments" / name, paths.ASSIGNMENTS_DIR / name)
        paths.DIST_DIR.mkdir(exist_ok=True)
        for file in (staging / "dist").iterdir():
            os.replace(file, paths.DIST_DIR / file.name)
