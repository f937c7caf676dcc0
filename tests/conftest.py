"""Shared fixtures: the repository root and a runner for the `gmmcourse` command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def run_cli(*args, cwd=ROOT, env=None, timeout=900):
    """Run `python -m gmmcourse.cli ARGS` in a subprocess; returns CompletedProcess (text)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "gmmcourse.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
