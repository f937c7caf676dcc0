"""Packaging and the two-command quickstart stay consistent."""

import re
import subprocess
import sys
import tomllib

from tests.conftest import ROOT


def _pyproject_deps():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(meta["dependencies"]) | set(meta["optional-dependencies"]["dev"])


def test_environment_yml_lists_the_same_pins_as_pyproject():
    text = (ROOT / "environment.yml").read_text()
    pins = set(re.findall(r"^\s*-\s+([A-Za-z0-9_.-]+==[^\s]+)\s*$", text, flags=re.M))
    assert pins == _pyproject_deps()
    assert "python=3.11" in text


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for pin in _pyproject_deps():
        name, want = pin.split("==")
        assert version(name) == want, pin


def test_readme_quickstart_is_the_two_kit_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./kit build", "./kit test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec \./kit test$", ci, flags=re.M)


def test_ruff_is_clean():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "gmmcourse",
            "tests",
            "benchmarks",
            "solutions",
            "autograder",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_leaves_the_hand_written_code_unchanged():
    # solutions/ and autograder/ too, less what [tool.ruff.format] still excludes
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "gmmcourse",
            "tests",
            "benchmarks",
            "solutions",
            "autograder",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
