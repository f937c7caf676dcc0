"""The trusted side of grading.

One code path serves `gmmcourse grade`, the build's self-check, the reference generator and the
Gradescope zip's ``run_autograder``.

``grade(unit_dir, submission)`` loads the unit's hidden tests (``tests.py``) and references
(``references.npz``) from ``unit_dir``, copies the submission into a sandbox, runs every case in a
sandboxed worker, compares the plain values that come back, and returns Gradescope-format results.
``write_results`` writes them atomically, after every worker process has ended.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib.util
import io
import json
import math
import os
import re
import tempfile
import time
import traceback
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmmcourse.errors import UserError
from gmmcourse.grading import notebook_source, wire
from gmmcourse.grading.sandbox import MemoryExceeded, Sandbox, WorkerDied, WorkerTimeout, hidden_from_workers
from gmmcourse.grading.spec import (
    COMPARATORS,
    MISMATCH_KINDS,
    Case,
    Limits,
    Mismatch,
    SpecError,
    Submission,
    Test,
    reference_key,
)

MAX_SUBMISSION_BYTES = 50 * 1024**2
REFERENCES = "references.npz"
# Folders of a course-kit checkout that hold what a student must never read.
SECRET_FOLDERS = ("autograder", "solutions", "dist", ".git", "tests", "benchmarks")


@dataclass
class Unit:
    """A unit's autograder as loaded from its folder."""

    name: str
    folder: Path
    submission: Submission
    tests: list[Test]
    limits: Limits

    @property
    def max_score(self) -> float:
        """The points of all tests together."""
        return float(sum(t.points for t in self.tests))


def load_unit(folder: Path, name: str | None = None) -> Unit:
    """Import ``folder/tests.py`` (trusted instructor code) and build its test table.

    Parameters
    ----------
    folder : Path
        The unit's autograder folder (``autograder/<unit>``, or ``unit/`` in a zip).
    name : str, optional
        The unit's name for messages (default: the folder's name).

    Returns
    -------
    Unit
        The declared submission, limits and tests.

    Raises
    ------
    UserError
        When ``tests.py`` is missing or malformed; the message names the unit, the line of
        ``tests.py`` and the field (an unknown kind, cell selection or limit, say).
    """
    path = folder / "tests.py"
    if not path.is_file():
        raise UserError(f"no autograder tests at {path}")
    try:
        module = _import_file(path)
        return _declared_unit(module, folder)
    except (SpecError, TypeError) as exc:
        raise UserError(f"unit {name or folder.name}: {_declaration_problem(exc, path)}") from None


def _import_file(path: Path):
    """Import one Python file as a fresh module (never cached in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(f"gmmcourse_unit_tests_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _declared(module, attribute: str, kind: type, example: str, default=None):
    """Return the module's ``attribute``, which must be a ``kind`` (SpecError naming it otherwise)."""
    value = getattr(module, attribute, default)
    if not isinstance(value, kind):
        raise SpecError(f"{attribute} must be {example}, got {type(value).__name__}")
    return value


def _declared_unit(module, folder: Path) -> Unit:
    """Return the :class:`Unit` a loaded ``tests.py`` declares, its top-level names checked."""
    unit_name = _declared(module, "UNIT", str, "the unit's folder name")
    submission = _declared(module, "SUBMISSION", Submission, "a Submission(kind=..., files=...)")
    limits = _declared(module, "LIMITS", Limits, "a Limits(...) (or left out)", Limits())
    if not callable(getattr(module, "build_tests", None)):
        raise SpecError("build_tests() is not defined")
    tests = list(module.build_tests())
    if not tests or not all(isinstance(t, Test) for t in tests):
        raise SpecError("build_tests() must return a non-empty list of Test")
    names = [t.name for t in tests]
    if len(set(names)) != len(names):
        raise SpecError(f"build_tests() returns duplicate test names: {sorted(names)}")
    return Unit(name=unit_name, folder=folder, submission=submission, tests=tests, limits=limits)


_DECLARATIONS = {cls.__name__: cls for cls in (Limits, Submission, Test, Case, *COMPARATORS.values())}


def _declaration_problem(exc: Exception, path: Path) -> str:
    """Describe a malformed declaration in one line: where in tests.py, and which field."""
    message = str(exc)
    match = re.fullmatch(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", message)
    if match and match.group(1) in _DECLARATIONS:
        known = ", ".join(f.name for f in dataclasses.fields(_DECLARATIONS[match.group(1)]))
        message = f"{match.group(1)} has no field {match.group(2)!r} (fields: {known})"
    frames = traceback.extract_tb(exc.__traceback__)
    lines = [frame.lineno for frame in frames if Path(frame.filename) == path]
    return f"{path.name}, line {lines[-1]}: {message}" if lines else f"{path.name}: {message}"


# --------------------------------------------------------------------------- submissions


_SKIP_PARTS = ("__pycache__", "__MACOSX", ".ipynb_checkpoints")
MAX_EXTRA_FILES = 50


class _Members:
    """The regular files of a submission by relative path, within the size limit."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.total = 0

    def add(self, name: str, data: bytes) -> None:
        """Keep one file under a sanitised relative path (system and cache folders are skipped)."""
        self.total += len(data)
        if self.total > MAX_SUBMISSION_BYTES:
            raise UserError(f"the submission is larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        if parts and not any(p in _SKIP_PARTS or p.startswith("._") for p in parts):
            self.files["/".join(parts)] = data


def _read_zip(path: Path, members: _Members) -> None:
    """Add every regular member of zip ``path`` (UserError when it cannot be read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir() and info.file_size <= MAX_SUBMISSION_BYTES:
                    members.add(info.filename, zf.read(info))
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise UserError(f"the submission is not a readable zip ({_plain(exc, 100)})") from None


def _members(path: Path) -> dict[str, bytes]:
    """All regular files of a submission (a file, a folder or a zip), keyed by relative path."""
    if not path.exists():
        raise UserError(f"submission not found: {_plain(path, 200)}")
    members = _Members()
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and not file.is_symlink():
                members.add(file.relative_to(path).as_posix(), file.read_bytes())
    elif zipfile.is_zipfile(path):
        _read_zip(path, members)
    elif path.suffix.lower() == ".zip":
        raise UserError("the submission ends in .zip but is not a zip file")
    else:
        members.add(path.name, path.read_bytes())
    if not members.files:
        raise UserError("the submission is empty")
    return members.files


GIVEN = "given"


def _shallowest(paths: list[str]) -> list[str]:
    return sorted(paths, key=lambda r: (r.count("/"), r))


@dataclass
class Collected:
    """What a grading takes from a submission.

    Attributes
    ----------
    files : dict of str to bytes
        The modules copied into the sandbox, by file name.
    notes : list of str
        Sanitised notes for the student (missing files, skipped cells ...).
    line_maps : dict of str to notebook_source.Extracted
        For a module built from a notebook, where each of its lines comes from.
    """

    files: dict[str, bytes]
    notes: list[str]
    line_maps: dict[str, notebook_source.Extracted] = field(default_factory=dict)


def collect_submission(path: Path, spec: Submission, given_dir: Path | None = None) -> Collected:
    """Pick the files the unit needs out of a submission.

    The listed files are found anywhere in the submission (the shallowest copy wins); other ``.py``
    files are copied beside them as the student's own helper modules. Given modules
    (``spec.given``) always come from ``given_dir``, whatever the student handed in. Every path a
    note mentions is sanitised (one printable line, shortened). A notebook is converted once, and
    its line map kept for feedback.

    Parameters
    ----------
    path : Path
        A file, a folder or a zip.
    spec : Submission
        What the unit wants handed in.
    given_dir : Path, optional
        Where the unit's given modules are.

    Returns
    -------
    Collected
        The files, the notes and the notebook line maps.

    Raises
    ------
    UserError
        When the submission is missing, empty, too large, an unreadable zip, or holds none of the
        listed files in a readable form (the message says which, and what it holds).
    """
    members = _members(path)
    out = Collected({}, [])
    by_name: dict[str, list[str]] = {}
    for rel in members:
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    for wanted in spec.files:
        _collect_one(out, wanted, members, by_name, spec)
    if not out.files:
        raise UserError(_nothing_to_grade(out.notes, spec, members))
    out.notes.extend(_add_helpers(out.files, by_name, members, spec))
    for name in spec.given:
        if given_dir is not None and (given_dir / name).is_file():
            out.files[name] = (given_dir / name).read_bytes()
    return out


_NOT_FOUND = "not found in the submission"


def _nothing_to_grade(notes: list[str], spec: Submission, members: dict[str, bytes]) -> str:
    """One line for a submission with none of the listed files: what is missing, what it holds."""
    missing = [name for name in spec.files if f"{name} was {_NOT_FOUND}" in notes]
    others = [note for note in notes if not note.endswith(_NOT_FOUND)]
    if missing:
        others.insert(0, f"{', '.join(missing)} {'was' if len(missing) == 1 else 'were'} {_NOT_FOUND}")
    held = sorted(members)
    shown = ", ".join(_plain(n, 60) for n in held[:5]) + (" ..." if len(held) > 5 else "")
    return f"nothing to grade: {'; '.join(others)} (the submission holds {shown})"


def _collect_one(
    out: Collected, wanted: str, members: dict[str, bytes], by_name: dict[str, list[str]], spec: Submission
) -> None:
    """Add listed file ``wanted`` to ``out`` (a notebook as the module ``submission.py``)."""
    found = _shallowest(by_name.get(wanted, []))
    if not found and spec.kind == "notebook":
        found = _shallowest([r for r in members if r.endswith(".ipynb")])[:1]
    if not found:
        out.notes.append(f"{wanted} was {_NOT_FOUND}")
        return
    if len(found) > 1:
        out.notes.append(f"several files named {wanted}; graded {_plain(found[0], 120)}")
    data = members[found[0]]
    if spec.kind != "notebook":
        out.files[wanted] = data
        return
    try:
        extracted = notebook_source.to_module(data, wanted, spec.notebook_cells)
    except notebook_source.NotebookError as exc:
        out.notes.append(str(exc))
        return
    out.notes.extend(extracted.notes)
    out.files["submission.py"] = extracted.source.encode("utf-8")
    out.line_maps["submission.py"] = extracted


def _add_helpers(
    files: dict[str, bytes], by_name: dict[str, list[str]], members: dict[str, bytes], spec: Submission
) -> list[str]:
    """Copy the student's other .py files beside the graded ones; returns notes on what was not."""
    notes = []
    extra = sorted(
        n
        for n in by_name
        if n.endswith(".py")
        and n not in files
        and n not in spec.given
        and n.isascii()
        and n[:-3].isidentifier()
    )
    skipped = sorted(
        n for n in by_name if n.endswith(".py") and n not in files and n not in spec.given and n not in extra
    )
    for name in extra[:MAX_EXTRA_FILES]:
        files[name] = members[_shallowest(by_name[name])[0]]
    skipped += extra[MAX_EXTRA_FILES:]
    if skipped:
        shown = ", ".join(_plain(n, 40) for n in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        notes.append(f"not copied (not an importable module name, or too many files): {shown}")
    return notes


# --------------------------------------------------------------------------- running cases


@dataclass
class CaseResult:
    """The outcome of one case: passed or the feedback message, and its outputs when recording."""

    name: str
    weight: float
    passed: bool
    message: str
    public: bool
    outputs: dict = field(default_factory=dict)


# Exception names that public-case feedback may show. Hidden-case feedback never names one: the
# student chooses which exception to raise, so a name could carry hidden inputs out.
_KNOWN_ERRORS = frozenset(
    [
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    + [
        "LinAlgError",
        "AxisError",
        "UFuncTypeError",
        "_UFuncNoLoopError",
        "_UFuncInputCastingError",
        "_UFuncOutputCastingError",
        "_ArrayMemoryError",
        "DTypePromotionError",
        "WireError",
    ]
)

# The fixed sentences of hidden-case feedback, one per failure kind.
HIDDEN = {
    "exception": "raised an exception",
    "not_written": "not written yet (raised NotImplementedError)",
    "timeout": "exceeded the time limit of {seconds:g} s",
    "memory": "exceeded the memory limit",
    "crashed": "the worker crashed or exited before answering",
    "not_plain": "returned something that is not plain numbers/arrays",
    "not_run": "not run: the whole grading reached its deadline of {seconds:g} s",
}


def _plain(text, limit: int) -> str:
    """One line of at most ``limit`` printable characters (the student cannot fake result lines)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())[:limit]


def _where(where, files: tuple[str, ...], line_maps: dict) -> str:
    """' (file, line N)' or ' (notebook cell C, line L)' for a worker-reported location we know."""
    if not isinstance(where, str):
        return ""
    name, _, line = where.rpartition(", line ")
    if name not in files or not line.isdigit() or len(line) > 7:
        return ""
    mapped = line_maps[name].where(int(line)) if name in line_maps else None
    if name in line_maps and mapped is None:
        return ""
    return f" ({mapped or f'{name}, line {int(line)}'})"


def _error_text(error, public: bool, files: tuple[str, ...] = (), line_maps: dict | None = None) -> str:
    """Feedback for an exception reported by the worker (whose whole report is untrusted)."""
    kind = error.get("type") if isinstance(error, dict) else None
    kind = kind[:80] if isinstance(kind, str) and kind.isidentifier() else ""
    if not public:
        return HIDDEN["not_written"] if kind == "NotImplementedError" else HIDDEN["exception"]
    text = f"raised {kind}" if kind in _KNOWN_ERRORS else "raised an exception"
    text += _where(error.get("where"), files, line_maps or {})
    message = error.get("message")
    if isinstance(message, str) and _plain(message, 200):
        text += f": {_plain(message, 200)}"
    return text


@dataclass
class _Context:
    """What every test of one grading shares."""

    sandbox: Sandbox
    refs: dict
    record: bool
    deadline: float
    grading_seconds: float
    line_maps: dict


def _call_case(ctx: _Context, worker, test: Test, case, timeout: float) -> tuple[str | None, dict, bool]:
    """Run one case; returns (message or None, outputs, whether the worker must be replaced)."""
    public = case.public
    try:
        raw = worker.call(wire.encode({"probe": case.probe, "args": case.args}), timeout=timeout)
        answer = wire.decode(raw)
        if not isinstance(answer, dict) or answer.get("ok") not in (True, False):
            raise wire.WireError("malformed answer")
        if answer["ok"] is not True:
            error = answer.get("error")
            return _error_text(error, public, tuple(ctx.sandbox.files), ctx.line_maps), {}, False
        outputs = answer.get("outputs")
        if not isinstance(outputs, dict):
            raise wire.WireError("malformed outputs")
        return _compare(test, case, outputs, ctx.refs, ctx.record), outputs, False
    except WorkerTimeout:
        if time.monotonic() >= ctx.deadline:
            return HIDDEN["not_run"].format(seconds=ctx.grading_seconds), {}, True
        return HIDDEN["timeout"].format(seconds=timeout), {}, True
    except MemoryExceeded as exc:
        return (str(exc) if public else HIDDEN["memory"]), {}, True
    except WorkerDied as exc:
        return (str(exc) if public else HIDDEN["crashed"]), {}, True
    except wire.WireError as exc:
        text = HIDDEN["not_plain"]
        return (f"{text} ({_plain(exc, 100)})" if public else text), {}, True


def _run_test(ctx: _Context, test: Test) -> list[CaseResult]:
    """Run one test's cases in a worker (a fresh one after any failure); results in case order.

    Public cases run first, so no message shown for a public case can come from a worker that has
    already seen a hidden input; afterwards the sandbox is reset (processes, files) for the next test.
    """
    results: dict[int, CaseResult] = {}
    order = sorted(range(len(test.cases)), key=lambda i: not test.cases[i].public)
    worker = None
    try:
        for index in order:
            case = test.cases[index]
            remaining = ctx.deadline - time.monotonic()
            outputs: dict = {}
            if remaining <= 0:
                message = HIDDEN["not_run"].format(seconds=ctx.grading_seconds)
            else:
                if worker is None:
                    worker = ctx.sandbox.start()
                message, outputs, replace = _call_case(ctx, worker, test, case, min(test.timeout, remaining))
                if replace:
                    worker.stop()
                    worker = None
            results[index] = CaseResult(
                case.name,
                case.points_weight,
                message is None,
                message or "",
                case.public,
                outputs if ctx.record else {},
            )
    finally:
        if worker is not None:
            worker.stop()
        ctx.sandbox.reset()
    return [results[i] for i in range(len(test.cases))]


def _compare(test: Test, case, outputs: dict, refs, record: bool) -> str | None:
    problems = []
    for name, compare in case.expect.items():
        if name not in outputs:
            problems.append(f"{name}: {MISMATCH_KINDS['missing']}")
            continue
        if record:
            continue
        ref = refs.get(reference_key(test.name, case.name, name))
        if ref is None:
            raise UserError(f"no reference for {test.name}/{case.name}/{name}; run `gmmcourse refs`")
        verdict = compare(outputs[name], ref)
        if isinstance(verdict, Mismatch):
            problems.append(
                f"{name}: {verdict.detail}" if case.public else f"{name}: {MISMATCH_KINDS[verdict.kind]}"
            )
    return "; ".join(problems) or None


# --------------------------------------------------------------------------- results


def load_references(folder: Path) -> dict[str, np.ndarray]:
    """Return the reference values of a unit (``references.npz`` beside its tests.py).

    Parameters
    ----------
    folder : Path
        The unit's autograder folder.

    Returns
    -------
    dict of str to ndarray
        The values by :func:`~gmmcourse.grading.spec.reference_key`.
    """
    path = folder / REFERENCES
    if not path.is_file():
        raise UserError(f"no reference values at {path}; run `gmmcourse refs`")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} is not a readable references file ({_plain(exc, 100)})") from None


def _test_entry(test: Test, cases: list[CaseResult]) -> dict:
    total = sum(c.weight for c in cases)
    earned = sum(c.weight for c in cases if c.passed)  # weights of public cases are 0
    score = round(test.points * earned / total, 4) if total else 0.0
    lines = [
        f"{'PASS' if c.passed else 'FAIL'}  {'' if c.public else '[hidden] '}{c.name}"
        + ("" if c.passed else f": {c.message}")
        for c in cases
    ]
    head = f"{test.description}\n" if test.description else ""
    return {
        "name": test.name,
        "score": score,
        "max_score": float(test.points),
        "output": head + "\n".join(lines),
        "visibility": "visible",
    }


def grade(
    folder: Path,
    submission: Path,
    *,
    record: bool = False,
    secret_paths: tuple[Path, ...] = (),
    given_dir: Path | None = None,
):
    """Grade one submission.

    Parameters
    ----------
    folder : Path
        The unit's autograder folder (``tests.py``, ``probes.py``, ``references.npz``).
    submission : Path
        A file, a folder or a zip.
    record : bool, default False
        Run without references (to generate them from the solution) and keep the outputs.
    secret_paths : tuple of Path
        Folders a worker must not read. Landlock already confines it to the Python installation
        and its sandbox, so they matter only on a machine without Landlock, where they are made
        root-only for the grading's duration (and restored afterwards).
    given_dir : Path, optional
        Where the unit's given modules are (default: ``folder/given``, as in the zip).

    Returns
    -------
    results : dict
        The results in Gradescope's format.
    raw : dict of str to list of CaseResult
        Every case's result, by test name.
    """
    started = time.monotonic()
    unit = load_unit(folder)
    refs = {} if record else load_references(folder)
    collected = collect_submission(Path(submission), unit.submission, given_dir or folder / GIVEN)
    tests_out, raw = [], {}
    with (
        hidden_from_workers((folder, *secret_paths, *checkout_secrets())),
        Sandbox(folder / "probes.py", collected.files, unit.limits) as sandbox,
    ):
        ctx = _Context(
            sandbox,
            refs,
            record,
            started + unit.limits.grading_seconds,
            unit.limits.grading_seconds,
            collected.line_maps,
        )
        for test in unit.tests:
            cases = _run_test(ctx, test)
            raw[test.name] = cases
            tests_out.append(_test_entry(test, cases))
        sandbox.sweep()
    score = round(sum(t["score"] for t in tests_out), 4)
    notes = collected.notes
    results = {
        "score": score,
        "execution_time": round(time.monotonic() - started, 2),
        "output": "\n".join(notes) if notes else f"{unit.name}: {score:g} / {unit.max_score:g}",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests_out,
    }
    return results, raw


def checkout_secrets(root: Path | None = None) -> tuple[Path, ...]:
    """Return the folders of a course-kit checkout that a student must never read.

    Parameters
    ----------
    root : Path, optional
        The checkout (default: the one this grader runs from; in a Gradescope zip none of the
        folders exist).

    Returns
    -------
    tuple of Path
        The existing folders among :data:`SECRET_FOLDERS`.
    """
    root = root or Path(__file__).resolve().parents[2]
    return tuple(p for p in (root / name for name in SECRET_FOLDERS) if p.is_dir())


def write_results(results: dict, path: Path) -> None:
    """Write results.json atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=2)
    os.replace(tmp, path)


# References equal to these tolerances count as unchanged: regenerating them on another machine,
# with another number of BLAS threads or after a comment-only edit must not rewrite the file.
REFERENCE_RTOL = 1e-9
REFERENCE_ATOL = 1e-12


def same_reference(a: np.ndarray, b: np.ndarray) -> bool:
    """Tell whether two reference values agree.

    They agree with the same shape and kind, equal within the tolerances above (integers and
    booleans exactly, NaN and inf in the same places).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or (a.dtype.kind in "biu") != (b.dtype.kind in "biu"):
        return False
    if a.dtype.kind in "biu":
        return bool(np.array_equal(a, b))
    inf_a, inf_b = np.isinf(a), np.isinf(b)
    return bool(
        np.allclose(a, b, rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL, equal_nan=True)
        and np.array_equal(inf_a, inf_b)
        and np.array_equal(a[inf_a], b[inf_b])
    )


def unused_reference_keys(tests: list[Test]) -> set[str]:
    """Return the reference keys that grading never reads.

    An output whose comparison does not use its reference (``Compare.uses_reference`` is False:
    :class:`~gmmcourse.grading.spec.Within`, graded by its range alone) keeps a stored value that only
    documents what the solution gave. Such a value may move with the BLAS
    thread count or the CPU (e.g. after 20 L-BFGS steps) without the references being stale.

    Parameters
    ----------
    tests : list of Test
        The unit's tests.

    Returns
    -------
    set of str
        Their :func:`~gmmcourse.grading.spec.reference_key` values.
    """
    return {
        reference_key(test.name, case.name, name)
        for test in tests
        for case in test.cases
        for name, compare in case.expect.items()
        if not compare.uses_reference
    }


def reference_unchanged(old: np.ndarray, new: np.ndarray, unused: bool) -> bool:
    """Tell whether a freshly computed reference leaves the stored one valid.

    Parameters
    ----------
    old, new : ndarray
        The stored and the fresh value.
    unused : bool
        Grading never reads this value (its key is in :func:`unused_reference_keys`): then only its
        shape must stay.

    Returns
    -------
    bool
        ``same_reference(old, new)``, or the same shape for an unused value.
    """
    return same_reference(old, new) or (unused and np.shape(old) == np.shape(new))


def record_references(
    folder: Path, solution: Path, out: Path | None = None, given_dir: Path | None = None
) -> Path:
    """Run every case against the solution and store its outputs as the reference values.

    A value that agrees with the one already stored (``same_reference``), or that grading never reads
    (``unused_reference_keys``) and keeps its shape, keeps the stored one; the file is rewritten only
    when some value or key really changed.
    """
    unit = load_unit(folder)
    _, raw = grade(folder, solution, record=True, given_dir=given_dir)
    arrays: dict[str, np.ndarray] = {}
    failures = []
    for test in unit.tests:
        for case, res in zip(test.cases, raw[test.name], strict=True):
            if not res.passed:
                failures.append(f"{test.name}/{case.name}: {res.message}")
                continue
            for name in case.expect:
                arr = np.asarray(res.outputs[name])
                if arr.dtype.kind not in "biuf":
                    failures.append(f"{test.name}/{case.name}/{name}: reference is not numeric")
                    continue
                arrays[reference_key(test.name, case.name, name)] = arr
    if failures:
        raise UserError("the solution failed while recording references: " + " | ".join(failures[:5]))
    out = Path(out or folder / REFERENCES)
    old = load_references(out.parent) if out.name == REFERENCES and out.is_file() else {}
    unused = unused_reference_keys(unit.tests)
    kept = {
        key: old[key] if key in old and reference_unchanged(old[key], value, key in unused) else value
        for key, value in arrays.items()
    }
    if set(old) == set(kept) and all(kept[key] is old[key] for key in kept):
        return out  # nothing changed beyond the tolerances: the committed file stays as it is
    buf = io.BytesIO()
    np.savez_compressed(buf, **kept)
    fd, tmp = tempfile.mkstemp(prefix=".refs-", dir=out.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, out)
    return out


def format_table(results: dict, width: int = 100) -> str:
    """Return a per-test table of ``results`` for the terminal.

    The first problem of each test wraps, never cut; the total is printed once, then the grading's
    notes.
    """
    import textwrap

    rows = [("test", "score", "first problem")]
    for t in results["tests"]:
        first = next((ln for ln in t["output"].splitlines() if ln.startswith("FAIL")), "")
        rows.append((t["name"], f"{t['score']:g} / {t['max_score']:g}", first))
    w0, w1 = (max(len(r[i]) for r in rows) for i in range(2))
    room = max(30, width - w0 - w1 - 4)
    lines = []
    for name, score, problem in rows:
        wrapped = textwrap.wrap(problem, room) or [""]
        lines.append(f"{name:<{w0}}  {score:>{w1}}  {wrapped[0]}".rstrip())
        lines.extend(f"{'':<{w0}}  {'':>{w1}}  {more}" for more in wrapped[1:])
    total = sum(t["max_score"] for t in results["tests"])
    lines.append(f"{'TOTAL':<{w0}}  {results['score']:g} / {total:g}")
    notes = results.get("output", "")
    summary = f": {results['score']:g} / {total:g}"
    if notes and not notes.endswith(summary) and not math.isnan(results["score"]):
        lines.append(notes)
    return "\n".join(lines)
