"""When a freshly generated file counts as the committed one.

Generated files are compared byte for byte, except the public cases (``cases.json``), which are
compared as data with the reference tolerances: a last-ulp difference between machines, or between
BLAS thread counts, is not a change. A build keeps the committed bytes of such files, so building on
another machine changes no file; ``gmmcourse check`` reports the files that really differ.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from gmmcourse.build.public_checks import PUBLIC_CHECKS
from gmmcourse.grading import runner, wire

CASES = f"{PUBLIC_CHECKS}/cases.json"
_SKIPPED = ("__pycache__", ".ipynb_checkpoints")


def same_plain_data(a: object, b: object) -> bool:
    """Tell whether two decoded wire values agree.

    Parameters
    ----------
    a, b : object
        Values decoded by :func:`gmmcourse.grading.wire.decode`.

    Returns
    -------
    bool
        Same structure, and numbers equal within the reference tolerances
        (:func:`gmmcourse.grading.runner.same_reference`).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_plain_data(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_plain_data(x, y) for x, y in zip(a, b, strict=True))
    if _numeric(a) and _numeric(b):
        return runner.same_reference(np.asarray(a), np.asarray(b))
    return type(a) is type(b) and a == b


def _numeric(x: object) -> bool:
    return isinstance(x, (int, float, np.ndarray)) and not isinstance(x, bool)


def same_generated(rel: str, new: bytes | None, old: bytes | None) -> bool:
    """Tell whether a generated file is unchanged.

    Parameters
    ----------
    rel : str
        The file's path inside its unit folder (``/``-separated).
    new, old : bytes or None
        The fresh and the committed content (None: no such file).

    Returns
    -------
    bool
        Equal bytes, or, for the public cases, equal data within the reference tolerances.
    """
    if new is None or old is None or not rel.endswith(CASES):
        return new == old
    try:
        return same_plain_data(wire.decode(new), wire.decode(old))
    except wire.WireError:
        return False


def keep_equivalent(staging: Path, committed: Path) -> None:
    """Put the committed bytes back into ``staging`` wherever they count as the same.

    Parameters
    ----------
    staging : Path
        A freshly built unit folder.
    committed : Path
        The same unit's committed folder (it may not exist yet).
    """
    if not committed.is_dir():
        return
    for path in staging.rglob("cases.json"):
        rel = path.relative_to(staging)
        old = committed / rel
        if old.is_file() and same_generated(rel.as_posix(), path.read_bytes(), old.read_bytes()):
            shutil.copyfile(old, path)


def tree_files(folder: Path) -> dict[str, bytes]:
    """Return the content of every file under ``folder``, by relative path (caches skipped).

    Parameters
    ----------
    folder : Path
        A generated folder (it may not exist: then there are no files).

    Returns
    -------
    dict of str to bytes
        ``/``-separated relative path to content.
    """
    if not folder.is_dir():
        return {}
    return {
        f.relative_to(folder).as_posix(): f.read_bytes()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and not any(part in _SKIPPED for part in f.parts)
    }
