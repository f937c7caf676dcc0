"""Every failure a user can cause ends in one line on stderr and a non-zero exit."""

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    "args, needle",
    [
        (["build", "unit42"], "unknown unit 'unit42'"),
        (["check", "nosuchunit"], "unknown unit"),
        (["grade", "unit42", "x.zip"], "unknown unit"),
        (["frobnicate"], "invalid choice"),
        (["grade"], "required"),
        (["data", "build-tops", "--fashion-mnist", "/nonexistent/fmnist"], "/nonexistent/fmnist"),
    ],
)
def test_user_errors_are_one_line(args, needle):
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_help_works():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("build", "check", "refs", "grade", "data"):
        assert command in proc.stdout
