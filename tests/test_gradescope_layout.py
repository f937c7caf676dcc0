"""The Gradescope autograder zip in Gradescope's real layout, for real (issue 9, item 1).

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` there, copies
``run_autograder`` to ``/autograder/run_autograder``, puts the submission in
``/autograder/submission`` and runs ``/autograder/run_autograder`` from the working directory
``/autograder``; it reads ``/autograder/results/results.json``. This test does exactly that, as
root: with the real ``/autograder`` when it is free (removed again afterwards), else in a temporary
root. ``GMMCOURSE_GRADESCOPE_ROOT`` names another root; ``GMMCOURSE_VENV`` (honoured by setup.sh)
another virtual environment than ``/opt/gmmcourse-venv``. setup.sh always runs; a venv left by an
earlier run is reused by it (pip finds the pinned packages installed), which saves minutes, while
the first run does the real install. ``GMMCOURSE_GRADESCOPE_UNIT`` grades a course unit's zip
(solution and untouched starter from the checkout) instead of the self-contained attack fixture.
The timings (setup, one grading) are printed.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from gmmcourse.build import package, units
from gmmcourse.grading import runner

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "attack_unit"
DEFAULT_ROOT = Path("/autograder")
DEFAULT_VENV = Path("/opt/gmmcourse-venv")
ROOT_REASON = (
    "needs root: Gradescope runs the autograder as root in /autograder, and the sandbox "
    "runs student code under throw-away uids only as root; run as root (.ci/run must fail "
    "when this skips)"
)
TIMINGS: dict[str, float] = {}


def skip_unless_root() -> None:
    """Skip (saying why) when not root; fail instead where root tests must run (CI sets
    GMMCOURSE_REQUIRE_ROOT_TESTS=1, or CI=true)."""
    if os.geteuid() == 0:
        return
    if os.environ.get("GMMCOURSE_REQUIRE_ROOT_TESTS") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"not root, but root tests are required here: {ROOT_REASON}")
    pytest.skip(ROOT_REASON)


def _extract(zip_path: Path, dest: Path) -> None:
    """Unzip keeping the members' Unix modes (setup.sh and run_autograder are executable)."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)


def _host_path() -> str:
    """The machine's PATH without this test's virtual environment (Gradescope has none)."""
    venv_bin = str(Path(sys.prefix) / "bin")
    return ":".join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(":") if p and p != venv_bin)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    skip_unless_root()
    work = tmp_path_factory.mktemp("gradescope-build")
    name = os.environ.get("GMMCOURSE_GRADESCOPE_UNIT")
    if name:
        unit = units.unit_sources(name)
        zip_path = work / f"{name}-autograder.zip"
        package.build_autograder_zip(unit, zip_path)
        solution, starter = units.solution_submission(unit), units.starter_submission(unit)
        max_score = runner.load_unit(unit.autograder).max_score
    else:
        unit_dir = work / "unit"
        unit_dir.mkdir()
        for file in ("tests.py", "probes.py"):
            shutil.copyfile(FIXTURE / file, unit_dir / file)
        runner.record_references(unit_dir, FIXTURE / "solution")
        zip_path = work / "unit0_attack-autograder.zip"
        package.build_autograder_zip(units.UnitSources("unit0_attack", FIXTURE, unit_dir), zip_path)
        solution, starter = FIXTURE / "solution", FIXTURE / "starter"
        max_score = runner.load_unit(unit_dir).max_score

    given = os.environ.get("GMMCOURSE_GRADESCOPE_ROOT")
    created = False
    if given:
        root = Path(given)
    elif not DEFAULT_ROOT.exists():
        root, created = DEFAULT_ROOT, True
    else:  # someone else's /autograder: never touch it
        root = Path(tempfile.mkdtemp(prefix="gradescope-root-"))
        created = True
    root.mkdir(parents=True, exist_ok=True)
    venv = Path(os.environ.get("GMMCOURSE_VENV", DEFAULT_VENV))
    shutil.rmtree(root / "source", ignore_errors=True)
    _extract(zip_path, root / "source")
    env = {"PATH": _host_path(), "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    if venv != DEFAULT_VENV:
        env["GMMCOURSE_VENV"] = str(venv)
    started = time.monotonic()
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")],
        cwd=root / "source",
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    TIMINGS["setup"] = time.monotonic() - started
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert "[gmmcourse setup]" in setup.stdout, "setup.sh must say what it does"
    assert (venv / "bin" / "python").exists()
    try:
        yield {
            "root": root,
            "venv": venv,
            "solution": solution,
            "starter": starter,
            "max": max_score,
            "setup_log": setup.stdout,
            "env": env,
        }
    finally:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for name in ("submission", "results", "run_autograder"):
                path = root / name
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        line = ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items())
        print(f"\n[gradescope layout] {line} (load average {os.getloadavg()[0]:.2f})", file=sys.__stdout__)


def run_gradescope(layout, submission: Path) -> tuple[dict, str, float]:
    """Submission into ROOT/submission, run_autograder copied to ROOT and run from ROOT."""
    root = layout["root"]
    for name in ("submission", "results"):
        shutil.rmtree(root / name, ignore_errors=True)
    if submission.is_dir():
        shutil.copytree(submission, root / "submission")
    else:
        (root / "submission").mkdir()
        shutil.copy2(submission, root / "submission" / submission.name)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    env = dict(layout["env"], GMMCOURSE_AUTOGRADER_ROOT=str(root))
    if layout["venv"] != DEFAULT_VENV:
        env["GMMCOURSE_PYTHON"] = str(layout["venv"] / "bin" / "python")
    started = time.monotonic()
    proc = subprocess.run(
        [str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True, timeout=1800
    )
    took = time.monotonic() - started
    path = root / "results" / "results.json"
    said = proc.stdout[-2000:] + proc.stderr[-2000:]
    assert path.is_file(), f"no results.json (exit {proc.returncode}): {said}"
    results = json.loads(path.read_text())
    return results, proc.stdout + proc.stderr, took


def test_solution_earns_full_marks(layout):
    results, printed, took = run_gradescope(layout, layout["solution"])
    TIMINGS["grading (solution)"] = took
    assert results["score"] == layout["max"], printed[-3000:]
    assert all(t["score"] == t["max_score"] for t in results["tests"]), runner.format_table(results)


def test_untouched_starter_earns_nothing(layout):
    results, printed, took = run_gradescope(layout, layout["starter"])
    TIMINGS["grading (starter)"] = took
    assert results["score"] == 0, printed[-3000:]
    assert len(results["tests"]) > 0


def test_an_attack_earns_nothing(layout, tmp_path):
    """read_secrets searches /autograder, /proc and the whole machine for the references."""
    drop = tmp_path / "drop"
    drop.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(drop, 0o1777)
    submission = tmp_path / "submission"
    submission.mkdir()
    source = (FIXTURE / "attacks" / "read_secrets.py").read_text().replace("@DROP@", str(drop))
    if os.environ.get("GMMCOURSE_GRADESCOPE_UNIT"):
        pytest.skip("the attack is written for the fixture unit's stats_answers.py")
    (submission / "stats_answers.py").write_text(source)
    results, printed, took = run_gradescope(layout, submission)
    TIMINGS["grading (attack)"] = took
    assert results["score"] == 0, runner.format_table(results)
    assert not any(
        path.startswith(str(layout["root"]))
        for line in drop.glob("readable-*")
        for path in line.read_text().splitlines()
    ), "the worker could read the autograder's files"
