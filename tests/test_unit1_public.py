"""Unit 1, the student's three routes to the public checks agree: ``python run_public_checks.py``
on the saved notebook, otter's ``grader.check`` in the notebook, and the autograder's public cases.

Each runs in a copy of the committed release; the notebook is the solution with one realistic bug
(``split_train_valid`` returns its two parts swapped), or the untouched starter.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gmmcourse import paths
from gmmcourse.build import package, units
from gmmcourse.course_data import load_mnist
from gmmcourse.grading import runner
from tests.mutation_support import mutate_notebook
from tests.test_unit1_math import load_notebook_definitions

UNIT = "unit1_gaussian_classifier"
NOTEBOOK = "unit1_gaussian_classifier.ipynb"
SWAPPED = [
    (
        "return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])",
        "return np.sort(perm[:n_valid]), np.sort(perm[n_valid:])",
    )
]
# what the comparator says about the swapped split's public case (spec.Exact's shape detail)
SWAP_DETAIL = "fit_idx: expected shape (15,), got shape (5,)"


@pytest.fixture
def release_copy(tmp_path):
    folder = tmp_path / UNIT
    shutil.copytree(paths.ASSIGNMENTS_DIR / UNIT, folder)
    return folder


def run_checks(folder: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run_public_checks.py", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def failure_blocks(stdout: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    for line in stdout.splitlines():
        if line.startswith("FAIL"):
            blocks.append([line])
        elif line.startswith("      ") and blocks:
            blocks[-1].append(line)
    return blocks


def test_starter_notebook_reports_every_function_as_not_written(release_copy):
    proc = run_checks(release_copy)
    assert proc.returncode == 1, proc.stderr
    assert "public checks: 0 passed, 7 failed" in proc.stdout
    blocks = failure_blocks(proc.stdout)
    assert len(blocks) == 7 and all(len(b) <= 3 for b in blocks), proc.stdout
    assert all("is not written yet (notebook cell " in b[1] for b in blocks), proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr and "Trying:" not in proc.stdout


def test_solution_notebook_passes_from_the_release_folder(release_copy):
    shutil.copyfile(paths.SOLUTIONS_DIR / UNIT / NOTEBOOK, release_copy / NOTEBOOK)
    proc = run_checks(release_copy)
    assert proc.returncode == 0 and "public checks: 7 passed, 0 failed" in proc.stdout, proc.stdout


def test_three_routes_agree_on_a_swapped_split(release_copy, tmp_path, monkeypatch):
    mutant = mutate_notebook(UNIT, NOTEBOOK, tmp_path, SWAPPED)
    shutil.copyfile(mutant, release_copy / NOTEBOOK)

    # 1. the command line, on the saved notebook
    proc = run_checks(release_copy)
    assert "public checks: 5 passed, 2 failed" in proc.stdout, proc.stdout  # select_c splits too
    split_block, select_block = failure_blocks(proc.stdout)
    assert split_block[0] == "FAIL  split_train_valid / n=20, n_valid=5, seed=0"
    assert SWAP_DETAIL in split_block[1] and len(split_block) == 3
    assert select_block[0] == "FAIL  select_c / 4 classes, D=30, 11 candidates" and len(select_block) <= 3

    # 2. otter's grader.check, on the notebook's own functions (the otter test files of the release)
    import otter

    monkeypatch.chdir(release_copy)
    monkeypatch.syspath_prepend(str(release_copy))
    namespace = load_notebook_definitions(mutant)
    grader = otter.Notebook(tests_dir=str(release_copy / "tests"))
    failed = grader.check("split_train_valid", global_env=namespace)
    shown = repr(failed)
    assert not failed.passed_all and SWAP_DETAIL in shown and "Trying:" not in shown, shown
    assert shown.count(SWAP_DETAIL) == 1
    assert not grader.check("select_c", global_env=namespace).passed_all
    assert grader.check("class_log_joint", global_env=namespace).passed_all

    # 3. the autograder's public case (only that test is run: the others see the solution's code)
    load_unit = runner.load_unit

    def split_only(folder, name=None):
        unit = load_unit(folder, name)
        unit.tests = [t for t in unit.tests if t.name == "split_train_valid"]
        return unit

    monkeypatch.setattr(runner, "load_unit", split_only)
    zip_path = tmp_path / "autograder.zip"
    package.build_autograder_zip(units.unit_sources(UNIT), zip_path)
    [test] = package.grade_with_zip(zip_path, mutant)["tests"]
    public_line = next(line for line in test["output"].splitlines() if "n=20, n_valid=5" in line)
    assert public_line.startswith("FAIL") and SWAP_DETAIL in public_line, public_line


def test_mnist_subset_is_what_its_indices_say(repo_root):
    """The autograder's real images are MNIST training images at the recorded indices."""
    with np.load(repo_root / "autograder" / UNIT / "mnist_subset.npz") as data:
        index, images, labels = data["train_index"], data["images"], data["labels"]
    all_images, all_labels = load_mnist("train", folder=repo_root / "data" / "mnist")
    np.testing.assert_array_equal(images, all_images[index])
    np.testing.assert_array_equal(labels, all_labels[index])
    assert sorted(set(labels.tolist())) == [3, 5, 8] and np.bincount(labels)[[3, 5, 8]].tolist() == [36] * 3
