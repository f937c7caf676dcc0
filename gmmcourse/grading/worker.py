"""The untrusted side of grading: runs probes against the student's code in a sandbox.

Started by :mod:`gmmcourse.grading.runner` as ``python -I worker.py --fd N`` from a sandbox folder
laid out as ``_grader/`` (this file, ``wire.py``, the unit's ``probes.py``) and ``submission/``
(the student's files, also the working directory). Requests arrive one JSON line at a time on
stdin (``{"probe": name, "args": {...}}``); each answer is one JSON line on file descriptor N:
``{"ok": true, "outputs": {...}}`` or ``{"ok": false, "error": {...}}``. Everything this process
says is treated as untrusted by the grader: it only ever carries the student's own results.

Only the standard library, numpy and the files beside it are imported here, so the file can be
copied into a sandbox on its own.
"""

import os
import sys
import traceback


def _describe(exc, submission_dir):
    """Exception type, a short message, and the deepest traceback line inside the submission."""
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and os.path.abspath(frame.filename).startswith(submission_dir + os.sep):
            where = f"{os.path.basename(frame.filename)}, line {frame.lineno}"
    try:
        message = str(exc)
    except BaseException:  # a hostile __str__ is the student's problem, not ours
        message = "<message could not be shown>"
    return {"type": type(exc).__name__[:80], "message": message[:300], "where": where}


# The course kit's own tools: absent from the Gradescope image, so not importable here either (a
# notebook's ``import otter`` then fails fast, as it does on Gradescope, instead of taking seconds).
TOOL_PACKAGES = (
    "otter",
    "nbgrader",
    "gmmcourse",
    "IPython",
    "ipykernel",
    "jupyter_client",
    "jupyter_core",
    "nbformat",
    "nbclient",
    "nbconvert",
    "pytest",
    "notebook",
    "jupyterlab",
)


def _block_tools():
    for name in TOOL_PACKAGES:
        sys.modules[name] = None  # "import name" now raises ImportError at once


def main(argv):
    """Answer probe calls read from stdin, one JSON line each, on file descriptor ``--fd``."""
    fd = int(argv[argv.index("--fd") + 1])
    here = os.path.dirname(os.path.abspath(__file__))
    submission_dir = os.path.abspath(os.path.join(here, os.pardir, "submission"))
    sys.path[:0] = [here, submission_dir]
    os.chdir(submission_dir)
    channel = os.fdopen(fd, "w", encoding="utf-8")
    import probes
    import wire  # noqa: E402  (after sys.path is set)

    _block_tools()

    for line in sys.stdin:
        try:
            request = wire.decode(line)
            probe = getattr(probes, request["probe"])
            outputs = probe(**request["args"])
            if not isinstance(outputs, dict):
                raise TypeError("probe returned no dict")
            text = wire.encode({"ok": True, "outputs": outputs})
        except BaseException as exc:  # noqa: BLE001 - SystemExit from student code is a wrong answer
            text = wire.encode({"ok": False, "error": _describe(exc, submission_dir)})
        channel.write(text + "\n")
        channel.flush()


if __name__ == "__main__":
    main(sys.argv)
