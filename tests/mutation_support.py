"""Shared machinery of the per-unit mutation suites: a built autograder zip, mutated copies of a
solution (exact-snippet edits, so a changed solution fails loudly), and grading through the zip."""

import re
import shutil
from pathlib import Path

import nbformat

from gmmcourse import paths
from gmmcourse.build import package, units


def build_zip(unit: str, folder: Path) -> Path:
    out = folder / f"{unit}-autograder.zip"
    package.build_autograder_zip(units.unit_sources(unit), out)
    return out


def scores(zip_path: Path, submission: Path) -> dict[str, tuple[float, float]]:
    results = package.grade_with_zip(zip_path, submission)
    return {t["name"]: (t["score"], t["max_score"]) for t in results["tests"]}


def lost_points(score_table) -> dict:
    return {test: s for test, s in score_table.items() if s[0] < s[1]}


def replace_once(text: str, old: str, new: str, where: str) -> str:
    assert text.count(old) == 1, f"snippet not found exactly once in {where}: {old!r}"
    return text.replace(old, new)


def replace_region(text: str, function: str, body: str) -> str:
    """Swap the solution region of ``function`` for ``body`` (already indented).

    The region must come before the next ``def``: a function that lost its region fails here
    instead of silently mutating the region of the function after it."""
    header = rf"(def {function}\((?:(?!\n\s*def ).)*?\n)"
    pattern = re.compile(header + r"(\s*)### BEGIN SOLUTION\n.*?### END SOLUTION\n", re.S)
    matches = list(pattern.finditer(text))
    assert len(matches) == 1, f"{len(matches)} solution regions found for {function} (expected one)"
    match = matches[0]
    indent = match.group(2).strip("\n")
    new = f"{match.group(1)}{indent}### BEGIN SOLUTION\n{body}{indent}### END SOLUTION\n"
    return text[: match.start()] + new + text[match.end() :]


def copy_src(unit: str, tmp_path: Path) -> Path:
    sub = tmp_path / "submission"
    shutil.copytree(paths.SOLUTIONS_DIR / unit / "src", sub, ignore=shutil.ignore_patterns("__pycache__"))
    return sub


def mutate_notebook(unit: str, notebook: str, tmp_path: Path, edits) -> Path:
    """Copy of the solution notebook with each (old, new) snippet replaced in the one cell holding it."""
    nb = nbformat.read(paths.SOLUTIONS_DIR / unit / notebook, as_version=4)
    for old, new in edits:
        cells = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert len(cells) == 1 and cells[0].source.count(old) == 1, f"snippet not unique: {old!r}"
        cells[0].source = cells[0].source.replace(old, new)
    out = tmp_path / notebook
    nbformat.write(nb, out)
    return out


def scores_on(zip_path: Path, submission: Path, tests, monkeypatch) -> dict[str, tuple[float, float]]:
    """Grade through the zip, running only ``tests`` (the ones that exercise the edited code): every
    other test sees exactly the solution's code, which `gmmcourse check` grades in full."""
    from gmmcourse.grading import runner

    load_unit = runner.load_unit

    def only_these(folder, name=None):
        unit = load_unit(folder, name)
        unit.tests = [t for t in unit.tests if t.name in tests]
        assert len(unit.tests) == len(set(tests)), f"unknown test in {tests}"
        return unit

    monkeypatch.setattr(runner, "load_unit", only_these)
    return scores(zip_path, submission)
