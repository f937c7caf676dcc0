"""Generated files do not depend on the machine: the last ulp of its floating point, its number of
BLAS threads, or comment-only edits of a solution.

A copy of the checkout gets a comment inside a solution region; then references are regenerated
with two BLAS threads and the unit is rebuilt with one: no generated file may change. (`gmmcourse
check`, run for every unit by test_units.py, sets two BLAS threads; the build here uses one.)
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from gmmcourse import paths
from gmmcourse.build import drift
from gmmcourse.grading import runner, wire

UNIT = "unit3_gmm_em_lbfgs"
GENERATED = ("assignments", "starter_code", "autograder")


def test_references_equal_to_the_tolerance_count_as_the_same():
    a = np.array([1.0, -np.inf, np.nan, 1e-300])
    assert runner.same_reference(a, a * (1 + 1e-13))
    assert not runner.same_reference(a, a * (1 + 1e-6))
    assert not runner.same_reference(a, np.array([1.0, np.inf, np.nan, 1e-300]))
    assert not runner.same_reference(np.arange(3), np.arange(3) + 1)
    assert not runner.same_reference(np.zeros(3), np.zeros((3, 1)))


def test_a_value_graded_by_its_range_alone_may_move():
    # unit 4 measured this: 20 L-BFGS steps on one BLAS thread instead of two moved a value graded by
    # Within by 1.7e-9 relative, which `gmmcourse check` must not call stale references
    from gmmcourse.grading.spec import Case, Close, Test, Within, reference_key

    case = Case("c", "probe", {}, {"exact": Close(), "range": Within(0.0, 1.0)})
    unused = runner.unused_reference_keys([Test("t", 1.0, [case])])
    assert unused == {reference_key("t", "c", "range")}
    old = np.array(0.479006096154)
    assert runner.reference_unchanged(old, old * (1 + 2e-9), unused=True)
    assert not runner.reference_unchanged(old, old * (1 + 2e-9), unused=False)
    assert not runner.reference_unchanged(old, np.array([0.479]), unused=True)


def test_public_cases_equal_to_the_tolerance_count_as_the_same():
    one = wire.encode({"cases": [{"args": {"c": np.geomspace(1, 1e5, 11)}, "name": "x"}]})
    other = wire.encode({"cases": [{"args": {"c": np.geomspace(1, 1e5, 11) * (1 + 2e-16)}, "name": "x"}]})
    assert one != other
    assert drift.same_generated("public_checks/cases.json", one.encode(), other.encode())
    changed = wire.encode({"cases": [{"args": {"c": np.geomspace(1, 1e5, 11)}, "name": "y"}]})
    assert not drift.same_generated("public_checks/cases.json", one.encode(), changed.encode())


def _snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for top in GENERATED:
        for file in sorted((root / top).rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                out[file.relative_to(root).as_posix()] = file.read_bytes()
    return out


def _cli(root: Path, *args: str, threads: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    return subprocess.run(
        [sys.executable, "-m", "gmmcourse.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_comment_edit_and_thread_count_change_no_generated_file(tmp_path):
    root = tmp_path / "kit"
    shutil.copytree(
        paths.REPO_ROOT,
        root,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "dist", ".cache", "__pycache__", "data", "*.pyc", ".ruff_cache", "gmmcourse-*"
        ),
    )
    (root / "data").symlink_to(paths.DATA_DIR)
    before = _snapshot(root)
    source = root / "solutions" / UNIT / "src" / "calc_neg_log_lik__np.py"
    text = source.read_text()
    marker = "    ### BEGIN SOLUTION\n"
    assert marker in text
    source.write_text(text.replace(marker, marker + "    # a comment that changes nothing\n", 1))
    for args, threads in ((("refs", UNIT), 2), (("build", UNIT), 1)):
        proc = _cli(root, *args, threads=threads)
        assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    after = _snapshot(root)
    changed = sorted(rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel))
    assert changed == [], f"generated files changed: {changed[:10]}"
