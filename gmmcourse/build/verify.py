"""Checks of a built unit: self-grading through its zip, drift of generated files, leaks.

- self-grade: the instructor solution must earn full marks and the untouched starter zero, both
  graded through the autograder zip (:func:`self_grade_problems` is the one place that says so);
- drift: the committed ``starter_code/`` and ``assignments/`` equal a fresh build, and the committed
  references equal what the solution computes today;
- leaks: no committed generated file holds a solution marker or a line found only in solutions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
import numpy as np

from gmmcourse import paths
from gmmcourse.build import drift, full_run, pipeline, progress, strip, units
from gmmcourse.build.package import grade_with_zip
from gmmcourse.build.units import UnitSources
from gmmcourse.grading import runner

GENERATED_FOLDERS = ("starter_code", "assignments")
_SHORTEST_SECRET = 12  # shorter solution-only lines (``return x``) are too common to count as leaks


def self_grade(unit: UnitSources, zip_path: Path | None = None) -> dict:
    """Grade the solution and the untouched starter through the unit's autograder zip.

    Parameters
    ----------
    unit : UnitSources
        The unit.
    zip_path : Path, optional
        The autograder zip (default: ``dist/<unit>-autograder.zip``).

    Returns
    -------
    dict
        ``unit``, ``solution`` and ``starter`` (scores), ``max`` and ``seconds`` (the solution's
        grading time).
    """
    zip_path = zip_path or paths.DIST_DIR / f"{unit.name}-autograder.zip"
    solution = grade_with_zip(zip_path, units.solution_submission(unit))
    starter = grade_with_zip(zip_path, units.starter_submission(unit))
    return {
        "unit": unit.name,
        "solution": solution["score"],
        "starter": starter["score"],
        "max": sum(t["max_score"] for t in solution["tests"]),
        "seconds": solution["execution_time"],
    }


def self_grade_problems(row: dict) -> list[str]:
    """Say what is wrong with a self-grade: the solution must earn full marks, the starter zero.

    Parameters
    ----------
    row : dict
        What :func:`self_grade` returned.

    Returns
    -------
    list of str
        One line per problem (empty: all good).
    """
    problems = []
    if row["max"] <= 0 or row["solution"] != row["max"]:
        problems.append(
            f"{row['unit']}: the solution earns {row['solution']:g} / {row['max']:g}, not full marks"
        )
    if row["starter"] != 0:
        problems.append(f"{row['unit']}: the untouched starter earns {row['starter']:g}, not 0")
    return problems


def format_summary(rows: list[dict]) -> str:
    """Return the self-grade table of a build, one row per unit.

    Parameters
    ----------
    rows : list of dict
        What :func:`self_grade` returned for each unit.

    Returns
    -------
    str
        An aligned table: unit, solution score, starter score, grading seconds.
    """
    head = ("unit", "solution", "starter", "grading s")
    body = [
        (
            r["unit"],
            f"{r['solution']:g} / {r['max']:g}",
            f"{r['starter']:g} / {r['max']:g}",
            f"{r['seconds']:.1f}",
        )
        for r in rows
    ]
    table = [head, *body]
    width = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(f"{cell:<{width[i]}}" for i, cell in enumerate(row)) for row in table)


def drift_problems(unit: UnitSources, fresh: Path) -> list[str]:
    """Compare the committed generated folders of ``unit`` with a fresh build under ``fresh``.

    Parameters
    ----------
    unit : UnitSources
        The unit.
    fresh : Path
        The root of a fresh build (:func:`gmmcourse.build.pipeline.build_unit_into`).

    Returns
    -------
    list of str
        One line per missing, stale or extra file.
    """
    problems = []
    for sub in GENERATED_FOLDERS:
        new = drift.tree_files(fresh / sub / unit.name)
        old = drift.tree_files(paths.REPO_ROOT / sub / unit.name)
        for rel in sorted(set(new) | set(old)):
            if not drift.same_generated(rel, new.get(rel), old.get(rel)):
                state = "missing" if rel not in old else ("stale" if rel in new else "not generated")
                problems.append(f"{sub}/{unit.name}/{rel}: {state}; run `gmmcourse build {unit.name}`")
    return problems


def reference_problems(unit: UnitSources, scratch: Path) -> list[str]:
    """Compare the committed references with the ones the solution computes today.

    Parameters
    ----------
    unit : UnitSources
        The unit.
    scratch : Path
        A folder for the freshly computed ``references.npz``.

    Returns
    -------
    list of str
        One line per differing key, or one when the keys differ.
    """
    fresh = scratch / runner.REFERENCES
    runner.record_references(unit.autograder, units.solution_submission(unit), out=fresh, given_dir=unit.src)
    committed = runner.load_references(unit.autograder)
    with np.load(fresh, allow_pickle=False) as data:
        new = {k: data[k] for k in data.files}
    where = f"autograder/{unit.name}/{runner.REFERENCES}"
    redo = f"`gmmcourse refs {unit.name}`"
    problems = [f"{where}: keys differ from a fresh {redo}"] if set(new) != set(committed) else []
    unused = runner.unused_reference_keys(unit.declaration.tests)
    problems += [
        f"{where}: {key} differs from a fresh {redo}"
        for key in sorted(set(new) & set(committed))
        if not runner.reference_unchanged(committed[key], new[key], key in unused)
    ]
    return problems


def solution_only_lines(unit: UnitSources) -> set[str]:
    """Return the lines that appear inside solution regions and nowhere else in the sources.

    Parameters
    ----------
    unit : UnitSources
        The unit (its ``src/*.py`` and its notebooks' cells are read).

    Returns
    -------
    set of str
        Stripped lines of at least a dozen characters that are not comments.
    """
    sources = [(f, f.read_text()) for f in sorted(unit.src.rglob("*.py"))] if unit.src.is_dir() else []
    for nb_path in unit.notebooks():
        nb = nbformat.read(nb_path, as_version=4)
        sources.extend((nb_path, cell.source) for cell in nb.cells)
    inside: set[str] = set()
    outside: set[str] = set()
    for file, text in sources:
        i, o = strip.solution_lines(text, str(file))
        inside |= i
        outside |= o
    return {line for line in inside - outside if len(line) >= _SHORTEST_SECRET and not line.startswith("#")}


def leak_problems(unit: UnitSources) -> list[str]:
    """Find solution markers and solution-only lines in the committed generated files.

    Parameters
    ----------
    unit : UnitSources
        The unit.

    Returns
    -------
    list of str
        One line per file that leaks.
    """
    secret = solution_only_lines(unit)
    problems = []
    for sub in GENERATED_FOLDERS:
        for rel, data in drift.tree_files(paths.REPO_ROOT / sub / unit.name).items():
            text = data.decode("utf-8", errors="replace")
            if strip.BEGIN in text or strip.END in text:
                problems.append(f"{sub}/{unit.name}/{rel}: contains a solution marker")
            leaked = {line.strip() for line in text.replace("\\n", "\n").splitlines()} & secret
            if leaked:
                problems.append(f"{sub}/{unit.name}/{rel}: contains {len(leaked)} solution-only line(s)")
    return problems


def check_unit(name: str) -> list[str]:
    """Check one unit's committed generated files, references and self-grade.

    Parameters
    ----------
    name : str
        The unit's folder name.

    Returns
    -------
    list of str
        One line per problem (empty: all good).
    """
    unit = units.load(name)
    with tempfile.TemporaryDirectory(prefix="gmmcourse-check-") as tmp:
        fresh = Path(tmp)
        pipeline.build_unit_into(unit, fresh)
        problems = drift_problems(unit, fresh)
        progress.step("references (the solution's outputs today)")
        problems += reference_problems(unit, fresh)
        progress.step("self-grade through the fresh autograder zip")
        problems += self_grade_problems(self_grade(unit, fresh / "dist" / f"{name}-autograder.zip"))
    progress.step("leaks (solution lines in generated files)")
    problems += leak_problems(unit)
    if full_run.full_run_path(name).exists():  # a committed full-budget run must be today's notebook
        problems += full_run.stale_problems(full_run.full_run_path(name))
    return problems
