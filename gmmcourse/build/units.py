"""Where a unit's hand-written sources live, and its declaration, validated when it is loaded.

A unit is ``solutions/<unit>/`` (README, notebook, ``src/``, ``DATA_FILES``) and
``autograder/<unit>/`` (``tests.py``, ``probes.py``, ``references.npz``). :func:`load` checks
everything a build relies on and turns the first problem into one :class:`UserError` that names the
unit and the field, before any step writes a file.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

from gmmcourse import paths
from gmmcourse.errors import UserError
from gmmcourse.grading import runner

DATA_FILES = "DATA_FILES"


@dataclass
class UnitSources:
    """The hand-written folders of one unit.

    Parameters
    ----------
    name : str
        The unit's folder name, e.g. ``unit3_gmm_em_lbfgs``.
    solution : Path
        ``solutions/<unit>``: README, notebooks, ``src/`` and ``DATA_FILES``.
    autograder : Path
        ``autograder/<unit>``: hidden tests, probes and references.
    """

    name: str
    solution: Path
    autograder: Path

    @property
    def src(self) -> Path:
        """The solution's Python sources (``solutions/<unit>/src``)."""
        return self.solution / "src"

    def notebooks(self) -> list[Path]:
        """Return the unit's source notebooks, sorted by name."""
        return sorted(self.solution.glob("*.ipynb"))

    def data_files(self) -> list[str]:
        """Return the paths under ``data/`` that the student zip carries (from ``DATA_FILES``)."""
        listing = self.solution / DATA_FILES
        return listing.read_text().split() if listing.is_file() else []

    @functools.cached_property
    def declaration(self) -> runner.Unit:
        """The unit's hidden tests as ``tests.py`` declares them (loaded once)."""
        return runner.load_unit(self.autograder, name=self.name)


def unit_sources(name: str) -> UnitSources:
    """Return the folders of unit ``name`` in this checkout (nothing is read yet).

    Parameters
    ----------
    name : str
        The unit's folder name.

    Returns
    -------
    UnitSources
        Its ``solutions/`` and ``autograder/`` folders.
    """
    return UnitSources(name, paths.SOLUTIONS_DIR / name, paths.AUTOGRADER_DIR / name)


def load(name: str, references: bool = True) -> UnitSources:
    """Return the sources of unit ``name`` once its declaration has been checked.

    Parameters
    ----------
    name : str
        The unit's folder name.
    references : bool, default True
        Whether ``references.npz`` must exist already (not before the first ``gmmcourse refs``).

    Returns
    -------
    UnitSources
        Its folders, with :attr:`UnitSources.declaration` loaded.

    Raises
    ------
    UserError
        A missing folder or file, a malformed ``tests.py`` (unknown kind, cell selection or limit),
        a listed file that does not exist, or a case naming a probe that ``probes.py`` lacks.
    """
    unit = unit_sources(name)
    _require_folders(unit, references)
    declared = unit.declaration
    if declared.name != name:
        raise UserError(f"unit {name}: UNIT is {declared.name!r}, not the folder name {name!r}")
    _check_listed_files(unit)
    _check_probes(unit)
    return unit


def _require_folders(unit: UnitSources, references: bool) -> None:
    """Raise a UserError when the solution folder or an autograder file is missing."""
    if not unit.solution.is_dir():
        raise UserError(f"unit {unit.name}: no solution folder {unit.solution}")
    for name in ("tests.py", "probes.py", *([runner.REFERENCES] if references else [])):
        if not (unit.autograder / name).is_file():
            hint = f" (run `gmmcourse refs {unit.name}`)" if name == runner.REFERENCES else ""
            raise UserError(f"unit {unit.name}: {unit.autograder / name} is missing{hint}")


def _check_listed_files(unit: UnitSources) -> None:
    """Raise a UserError for the first listed file that does not exist."""
    submission = unit.declaration.submission
    home = unit.solution if submission.kind == "notebook" else unit.src
    listed = [("Submission.files", home, name) for name in submission.files]
    listed += [("Submission.given", unit.src, name) for name in submission.given]
    listed += [(DATA_FILES, paths.DATA_DIR, rel) for rel in unit.data_files()]
    for field, folder, name in listed:
        if not (folder / name).is_file():
            path = folder / name
            shown = path.relative_to(paths.REPO_ROOT) if path.is_relative_to(paths.REPO_ROOT) else path
            raise UserError(f"unit {unit.name}: {field} lists {name!r}, but {shown} does not exist")


def _check_probes(unit: UnitSources) -> None:
    """Raise a UserError when a case names a function that ``probes.py`` does not define."""
    defined = _top_level_names((unit.autograder / "probes.py").read_text())
    for test in unit.declaration.tests:
        for case in test.cases:
            if case.probe not in defined:
                raise UserError(
                    f"unit {unit.name}: test {test.name!r}, case {case.name!r}: probe "
                    f"{case.probe!r} is not a function of probes.py"
                )


def _top_level_names(source: str) -> set[str]:
    """Names that a module's top-level definitions, assignments and imports bind."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def solution_submission(unit: UnitSources) -> Path:
    """Return what the instructor solution hands in: its notebook, or its ``src/`` folder.

    Parameters
    ----------
    unit : UnitSources
        The unit.

    Returns
    -------
    Path
        A notebook file (notebook units) or a folder of modules.
    """
    submission = unit.declaration.submission
    if submission.kind == "notebook":
        return unit.solution / submission.files[0]
    return unit.src


def starter_submission(unit: UnitSources) -> Path:
    """Return what a student who changed nothing hands in (from the committed release).

    Parameters
    ----------
    unit : UnitSources
        The unit.

    Returns
    -------
    Path
        The released notebook (notebook units) or the starter-code folder.
    """
    submission = unit.declaration.submission
    if submission.kind == "notebook":
        return paths.ASSIGNMENTS_DIR / unit.name / submission.files[0]
    return paths.STARTER_DIR / unit.name
