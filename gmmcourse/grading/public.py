"""Run this unit's public checks on your own code: ``python run_public_checks.py``.

The checks call your functions on the public cases (the hidden tests on Gradescope use other inputs
too) and compare the results with the instructor solution's values. For a notebook unit they read
the notebook saved in this folder and turn it into a module exactly as the autograder does (imports,
function definitions and the constants those need; nothing else runs), so save it first.
Options: -k TEXT runs only tests whose name contains TEXT; -v shows passing cases too.
In the notebook, ``grader.check("name")`` (otter) runs the same cases on the notebook's functions
and prints the same words.
"""

import argparse
import os
import sys
import time
import traceback
import types

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = os.path.join(HERE, "public_checks")
SUBMISSION = "submission"
_NOTEBOOK_FILE = "<notebook>"  # file name given to the code built from the notebook
_MESSAGE_CHARS = 160


class PublicCheckFailed(AssertionError):
    """A public case failed (raised in otter's ``grader.check``; the message says why)."""


def _modules():
    """Import the probes, comparators and wire format shipped in ``public_checks/``."""
    for folder in (os.path.join(HERE, "src"), CHECKS):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    import probes
    import spec
    import wire

    return probes, spec, wire


def _table():
    """Read the public cases (``public_checks/cases.json``)."""
    _, _, wire = _modules()
    with open(os.path.join(CHECKS, "cases.json"), encoding="utf-8") as fh:
        return wire.decode(fh.read())


def _one_line(text, limit=_MESSAGE_CHARS):
    """Collapse ``text`` to one line of at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- the student's module


class _Where:
    """Turns a traceback frame of the student's code into 'notebook cell C, line L' or 'file, line L'."""

    def __init__(self, extracted=None):
        self.extracted = extracted

    def __call__(self, frame):
        if frame.filename == _NOTEBOOK_FILE and self.extracted is not None:
            return self.extracted.where(frame.lineno)
        if os.path.abspath(frame.filename).startswith(os.path.join(HERE, "src") + os.sep):
            return f"{os.path.basename(frame.filename)}, line {frame.lineno}"
        return None


_WHERE = _Where()


def load_notebook(path):
    """Build the module ``submission`` from the notebook at ``path``, as the autograder does.

    Parameters
    ----------
    path : str
        The notebook file.

    Returns
    -------
    module : module
        The module, also registered in ``sys.modules`` as ``submission``.
    notes : list of str
        The converter's remarks (a cell it could not read) and any error raised while the module
        loaded.
    """
    _modules()
    import notebook_source

    with open(path, "rb") as fh:
        extracted = notebook_source.to_module(fh.read(), os.path.basename(path), "definitions")
    _WHERE.extracted = extracted
    module = types.ModuleType(SUBMISSION)
    module.__file__ = _NOTEBOOK_FILE
    sys.modules[SUBMISSION] = module
    notes = list(extracted.notes)
    try:
        exec(compile(extracted.source, _NOTEBOOK_FILE, "exec"), module.__dict__)
    except Exception as exc:  # noqa: BLE001 - reported like a failing case
        notes.append("the notebook's definitions could not be loaded: " + _describe(exc))
    return module, notes


def _use_namespace(namespace):
    """Offer a notebook's globals() to the probes as the module ``submission``."""
    module = types.ModuleType(SUBMISSION)
    module.__dict__.update(namespace)
    sys.modules[SUBMISSION] = module


# --------------------------------------------------------------------------- one case


def _student_frame(exc):
    """Find the deepest traceback frame in the student's code (not the checks', not a library's)."""
    found = None
    skip = (CHECKS + os.sep, os.path.abspath(__file__), os.path.dirname(os.__file__) + os.sep)
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if name == _NOTEBOOK_FILE or _WHERE(frame):
            found = frame
        elif (
            not os.path.abspath(name).startswith(skip)
            and "site-packages" not in name
            and "dist-packages" not in name
        ):
            found = frame  # a notebook cell run by the kernel (the otter route)
    return found


def _describe(exc):
    """Describe an exception in one line: its type, the student's function and place, its message."""
    frame = _student_frame(exc)
    function = frame.name if frame is not None and frame.name != "<module>" else None
    where = _WHERE(frame) if frame is not None else None
    if isinstance(exc, NotImplementedError):
        return f"{function or 'a function this check calls'} is not written yet" + (
            f" ({where})" if where else ""
        )
    place = " in " + function if function else ""
    place += f" ({where})" if where else ""
    message = _one_line(exc)
    return f"raised {type(exc).__name__}{place}" + (f": {message}" if message else "")


def problems(case):
    """Run one public case and say what is wrong.

    Parameters
    ----------
    case : dict
        One entry of the cases table: ``test``, ``case``, ``probe``, ``args`` and ``expect``.

    Returns
    -------
    list of str
        One text per problem (an exception, a missing or mismatching output); empty when the case
        passes.
    """
    probes, spec, _ = _modules()
    try:
        outputs = getattr(probes, case["probe"])(**case["args"])
    except Exception as exc:  # noqa: BLE001 - the student's exception is the finding
        return [_describe(exc)]
    found = []
    for name, want in case["expect"].items():
        if name not in outputs:
            found.append(f"{name}: no value returned")
            continue
        verdict = getattr(spec, want["compare"])(**want["params"])(outputs[name], want["reference"])
        if verdict is not None:
            found.append(f"{name}: {verdict.detail}")
    return found


def report(case, found):
    """Format the failure of one case.

    Parameters
    ----------
    case : dict
        The case, as in :func:`problems`.
    found : list of str
        What :func:`problems` found.

    Returns
    -------
    str
        At most three lines: the test and case, then what differs.
    """
    lines = [f"FAIL  {case['test']} / {case['case']}"]
    lines += ["      " + _one_line(p) for p in found[:2]]
    if len(found) > 2:
        lines[-1] += f" (and {len(found) - 2} more)"
    return "\n".join(lines)


# --------------------------------------------------------------------------- the two entry points


def otter_case(env, test, case_name):
    """Run one public case on a notebook's globals (called by otter's ``grader.check``).

    Parameters
    ----------
    env : dict
        The notebook's globals.
    test, case_name : str
        The test and the case to run.

    Raises
    ------
    PublicCheckFailed
        The case fails; the message says why.
    """
    _use_namespace(env)
    case = next(c for c in _table()["cases"] if c["test"] == test and c["case"] == case_name)
    found = problems(case)
    if found:
        raise PublicCheckFailed("; ".join(_one_line(p) for p in found[:2]))


def check(test, namespace=None):
    """Run all public cases of one test (the notebook may call this directly).

    Parameters
    ----------
    test : str
        The test's name.
    namespace : dict, optional
        The notebook's globals; by default the module ``submission`` already loaded.

    Returns
    -------
    str
        ``"ok"``, or the report of every failing case.
    """
    if namespace is not None:
        _use_namespace(namespace)
    lines = [report(c, p) for c in _table()["cases"] if c["test"] == test for p in [problems(c)] if p]
    return "\n".join(lines) or "ok"


def _load_submission(table):
    """Load the notebook in this folder as ``submission`` for a notebook unit; return the notes."""
    kind = table.get("submission", {}).get("kind")
    if kind != "notebook":
        return []
    name = table["submission"]["files"][0]
    path = os.path.join(HERE, name)
    if not os.path.isfile(path):
        return [f"{name} not found beside run_public_checks.py"]
    return load_notebook(path)[1]


def main(argv=None):
    """Run the public checks from the command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (``-k TEXT``, ``-v``); ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 when every case selected passes, else 1.
    """
    parser = argparse.ArgumentParser(description="Run the public checks of this unit.")
    parser.add_argument("-k", default="", help="only tests whose name contains this text")
    parser.add_argument("-v", action="store_true", help="show passing cases too")
    args = parser.parse_args(argv)
    table = _table()
    for note in _load_submission(table):
        print(f"note: {note}")
    passed = failed = 0
    for case in table["cases"]:
        if args.k not in case["test"]:
            continue
        started = time.perf_counter()
        found = problems(case)
        seconds = time.perf_counter() - started
        if found:
            failed += 1
            print(report(case, found))
        else:
            passed += 1
            if args.v:
                print(f"ok    {case['test']} / {case['case']}  ({seconds:.2f} s)")
    print(f"public checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
