"""The zips of a unit (``dist/``), and grading through an autograder zip exactly as Gradescope does.

- ``<unit>-autograder.zip``: the trusted grader, the hidden tests and references, the given
  modules and Gradescope's setup scripts;
- ``<unit>-student.zip``: the release folder with the data files its notebook reads.

Zip entries carry fixed timestamps and modes: the same input gives the same bytes.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

from gmmcourse import paths
from gmmcourse.build.strip import BEGIN
from gmmcourse.build.units import UnitSources
from gmmcourse.errors import UserError
from gmmcourse.grading import runner

# Files every autograder zip carries: the trusted grader and its wire format, nothing else.
GRADER_FILES = (
    "__init__.py",
    "errors.py",
    "grading/__init__.py",
    "grading/spec.py",
    "grading/wire.py",
    "grading/runner.py",
    "grading/sandbox.py",
    "grading/worker.py",
    "grading/confine.py",
    "grading/layers.py",
    "grading/notebook_source.py",
    "grading/gradescope.py",
)
SHIPPED_PACKAGES = ("numpy", "scipy", "autograd", "scikit-learn", "pandas")
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
_PACKAGE = Path(__file__).resolve().parent.parent
_TEMPLATES = _PACKAGE / "grading" / "gradescope_files"


def _zip_bytes(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    """Add one entry with a fixed timestamp and a plain (or executable) file mode."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    zf.writestr(info, data)


def _zip_dir(zf: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    """Add every file under ``folder`` (caches excluded) as ``prefix`` + its relative path."""
    for file in sorted(folder.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts:
            _zip_bytes(
                zf,
                f"{prefix}{file.relative_to(folder).as_posix()}",
                file.read_bytes(),
                executable=os.access(file, os.X_OK),
            )


def pinned_requirements() -> str:
    """Return the ``requirements.txt`` of the zip: the installed versions of what the grader imports."""
    return "".join(f"{name}=={version(name)}\n" for name in SHIPPED_PACKAGES)


def build_autograder_zip(unit: UnitSources, target: Path) -> None:
    """Write the Gradescope autograder zip of ``unit`` to ``target``.

    Parameters
    ----------
    unit : UnitSources
        The unit.
    target : Path
        The zip file to write.

    Raises
    ------
    UserError
        When a given module (supplied by the autograder) has solution regions.
    """
    with zipfile.ZipFile(target, "w") as zf:
        _zip_bytes(zf, "run_autograder", (_TEMPLATES / "run_autograder").read_bytes(), executable=True)
        _zip_bytes(zf, "setup.sh", (_TEMPLATES / "setup.sh").read_bytes(), executable=True)
        _zip_bytes(zf, "requirements.txt", pinned_requirements().encode())
        for rel in GRADER_FILES:
            _zip_bytes(zf, f"gmmcourse/{rel}", (_PACKAGE / rel).read_bytes())
        _zip_dir(zf, unit.autograder, "unit/")
        for name in unit.declaration.submission.given:
            source = unit.src / name
            text = source.read_text()
            if BEGIN in text:
                raise UserError(f"{source} is a given file but has solution regions")
            _zip_bytes(zf, f"unit/{runner.GIVEN}/{name}", text.encode())


def build_student_zip(unit: UnitSources, release: Path, target: Path) -> None:
    """Write the student zip: the release folder and the data files listed in ``DATA_FILES``.

    Parameters
    ----------
    unit : UnitSources
        The unit.
    release : Path
        The unit's built release folder.
    target : Path
        The zip file to write.
    """
    with zipfile.ZipFile(target, "w") as zf:
        _zip_dir(zf, release, f"{unit.name}/")
        for rel in unit.data_files():
            _zip_bytes(zf, f"{unit.name}/data/{rel}", (paths.DATA_DIR / rel).read_bytes())


def grade_with_zip(zip_path: Path, submission: Path) -> dict:
    """Grade one submission exactly as Gradescope would: from the unpacked autograder zip.

    Parameters
    ----------
    zip_path : Path
        An autograder zip made by :func:`build_autograder_zip`.
    submission : Path
        A file, a folder or a zip.

    Returns
    -------
    dict
        The Gradescope results.

    Raises
    ------
    UserError
        When ``zip_path`` is not a readable zip, or the submission cannot be graded at all.
    """
    with tempfile.TemporaryDirectory(prefix="gmmcourse-autograder-") as tmp:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as exc:
            raise UserError(f"{zip_path} is not a readable autograder zip ({exc})") from None
        results, _ = runner.grade(
            Path(tmp) / "unit", submission, secret_paths=runner.checkout_secrets(paths.REPO_ROOT)
        )
        return results
