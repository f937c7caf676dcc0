"""The public checks of a release: what students run locally before they submit.

``public_checks/cases.json`` holds every public case with its reference values, ``probes.py`` is
the unit's own, and copies of the grader's wire format, declarations and (for notebook units)
notebook converter let ``run_public_checks.py`` read a submission exactly as the autograder does.
Notebook units also get one otter test file per test in ``tests/`` for ``grader.check(name)``.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from gmmcourse.build.strip import header
from gmmcourse.build.units import UnitSources
from gmmcourse.grading import runner, wire
from gmmcourse.grading.spec import reference_key

PUBLIC_CHECKS = "public_checks"
_GRADING = Path(runner.__file__).resolve().parent


def public_cases(unit: UnitSources) -> list[dict]:
    """Return the unit's public cases with their comparators and reference values.

    Parameters
    ----------
    unit : UnitSources
        The unit (its references must exist).

    Returns
    -------
    list of dict
        One entry per public case: test, case, probe, args and, per output, the comparator's
        name and parameters and the reference value.
    """
    refs = runner.load_references(unit.autograder)
    cases = []
    for test in unit.declaration.tests:
        for case in (c for c in test.cases if c.public):
            expect = {
                name: {
                    "compare": type(compare).__name__,
                    "params": dataclasses.asdict(compare),
                    "reference": refs[reference_key(test.name, case.name, name)],
                }
                for name, compare in case.expect.items()
            }
            cases.append(
                {
                    "test": test.name,
                    "case": case.name,
                    "probe": case.probe,
                    "args": case.args,
                    "expect": expect,
                }
            )
    return cases


def _copy_generated(source: Path, target: Path, shown: str) -> None:
    """Copy a kit file into the release, with the generated-file header naming ``shown``."""
    target.write_text(header(shown) + "\n" + source.read_text())


def public_checks(unit: UnitSources, out: Path) -> None:
    """Write the public checks into the release folder ``out``.

    Parameters
    ----------
    unit : UnitSources
        The unit.
    out : Path
        The release folder; ``public_checks/``, ``run_public_checks.py`` and, for notebook units,
        ``tests/`` are written there.
    """
    submission = unit.declaration.submission
    cases = public_cases(unit)
    folder = out / PUBLIC_CHECKS
    folder.mkdir(parents=True)
    declared = {"kind": submission.kind, "files": list(submission.files)}
    (folder / "cases.json").write_text(
        wire.encode({"unit": unit.name, "submission": declared, "cases": cases}) + "\n"
    )
    shutil.copyfile(unit.autograder / "probes.py", folder / "probes.py")
    notebook = submission.kind == "notebook"
    for name in ("wire.py", "spec.py") + (("notebook_source.py",) if notebook else ()):
        _copy_generated(_GRADING / name, folder / name, f"gmmcourse/grading/{name}")
    _copy_generated(_GRADING / "public.py", out / "run_public_checks.py", "gmmcourse/grading/public.py")
    if notebook:
        otter_tests(cases, out / "tests")


def otter_tests(cases: list[dict], folder: Path) -> None:
    """Write one otter test file (exception format) per test with public cases.

    Each public case is one otter test case that runs it through ``run_public_checks.py`` on the
    notebook's own functions; a failure shows one line saying what differs.

    Parameters
    ----------
    cases : list of dict
        The public cases, as :func:`public_cases` returns them.
    folder : Path
        The release's ``tests/`` folder (created here).
    """
    folder.mkdir()
    for name in sorted({c["test"] for c in cases}):
        body = [
            header(f"autograder/<unit>/tests.py (public cases of {name})"),
            "from otter.test_files import test_case",
            "",
            "OK_FORMAT = False",
            f"name = {name!r}",
            "points = None",
        ]
        mine = [c["case"] for c in cases if c["test"] == name]
        for number, case in enumerate(mine, start=1):
            body += [
                "",
                "",
                f"@test_case(name={case!r}, points=None, hidden=False)",
                f"def case_{number}(env):",
                "    from run_public_checks import otter_case",
                "",
                f"    otter_case(env, {name!r}, {case!r})  # compares with the solution's values",
            ]
        (folder / f"{name}.py").write_text("\n".join(body) + "\n")
