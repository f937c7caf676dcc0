"""The trusted side of grading: one code path for `gmmcourse grade`, the build's self-check, the
reference generator and the Gradescope zip's ``run_autograder``.

``grade(unit_dir, submission)`` loads the unit's hidden tests (``tests.py``) and references
(``references.npz``) from ``unit_dir``, copies the submission into a sandbox, runs every case in a
sandboxed worker, compares the plain values that come back, and returns Gradescope-format results.
``write_results`` writes them atomically, after every worker process has ended.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import json
import math
import os
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmmcourse.errors import UserError
from gmmcourse.grading import notebook_source, wire
from gmmcourse.grading.sandbox import Sandbox, WorkerDied, WorkerTimeout, make_private
from gmmcourse.grading.spec import MISMATCH_KINDS, Limits, Mismatch, Submission, Test, reference_key

MAX_SUBMISSION_BYTES = 50 * 1024**2
REFERENCES = "references.npz"


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
        return float(sum(t.points for t in self.tests))


def load_unit(folder: Path) -> Unit:
    """Import ``folder/tests.py`` (trusted instructor code) and build its test table."""
    path = folder / "tests.py"
    if not path.is_file():
        raise UserError(f"no autograder tests at {path}")
    spec = importlib.util.spec_from_file_location(f"gmmcourse_unit_tests_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Unit(name=module.UNIT, folder=folder, submission=module.SUBMISSION,
                tests=list(module.build_tests()), limits=getattr(module, "LIMITS", Limits()))


# --------------------------------------------------------------------------- submissions


def _members(path: Path) -> dict[str, bytes]:
    """All regular files of a submission (a file, a folder or a zip), keyed by relative path."""
    if not path.exists():
        raise UserError(f"submission not found: {path}")
    out: dict[str, bytes] = {}
    total = 0

    def add(name, data):
        nonlocal total
        total += len(data)
        if total > MAX_SUBMISSION_BYTES:
            raise UserError(f"submission {path} is larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
        out[name] = data

    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and not file.is_symlink() and "__pycache__" not in file.parts:
                add(file.relative_to(path).as_posix(), file.read_bytes())
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir() or info.file_size > MAX_SUBMISSION_BYTES:
                        continue
                    add(info.filename, zf.read(info))
        except (zipfile.BadZipFile, OSError) as exc:
            raise UserError(f"submission {path} is not a readable zip: {exc}") from None
    else:
        add(path.name, path.read_bytes())
    return out


GIVEN = "given"


def collect_submission(path: Path, spec: Submission, given_dir: Path | None = None
                       ) -> tuple[dict[str, bytes], list[str]]:
    """Pick the files the unit needs out of a submission; returns (files, notes for the student).

    Given modules (``spec.given``) always come from ``given_dir``, whatever the student handed in.
    """
    members = _members(path)
    files: dict[str, bytes] = {}
    notes: list[str] = []
    by_name: dict[str, list[str]] = {}
    for rel in members:
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    for wanted in spec.files:
        found = sorted(by_name.get(wanted, []), key=lambda r: (r.count("/"), r))
        if not found and spec.kind == "notebook":
            found = sorted((r for r in members if r.endswith(".ipynb") and "checkpoint" not in r),
                           key=lambda r: (r.count("/"), r))[:1]
        if not found:
            notes.append(f"{wanted} was not found in the submission")
            continue
        if len(found) > 1:
            notes.append(f"several files named {wanted}; graded {found[0]}")
        data = members[found[0]]
        if spec.kind == "notebook":
            try:
                extracted = notebook_source.to_module(data, wanted, spec.notebook_cells)
            except notebook_source.NotebookError as exc:
                notes.append(str(exc))
                continue
            notes.extend(extracted.notes)
            files["submission.py"] = extracted.source.encode("utf-8")
        else:
            files[wanted] = data
    for name in spec.given:
        if given_dir is not None and (given_dir / name).is_file():
            files[name] = (given_dir / name).read_bytes()
    return files, notes


# --------------------------------------------------------------------------- running cases


@dataclass
class CaseResult:
    name: str
    weight: float
    passed: bool
    message: str
    public: bool
    outputs: dict = field(default_factory=dict)


# exception names shown for hidden cases; any other name is the student's choice and could carry
# the hidden inputs out, so it is not shown
_KNOWN_ERRORS = frozenset(
    [name for name, value in vars(builtins).items()
     if isinstance(value, type) and issubclass(value, BaseException)]
    + ["LinAlgError", "AxisError", "UFuncTypeError", "_UFuncNoLoopError", "_UFuncInputCastingError",
       "_UFuncOutputCastingError", "_ArrayMemoryError", "DTypePromotionError", "WireError"])


def _plain(text, limit: int) -> str:
    """One line of at most ``limit`` printable characters (the student cannot fake result lines)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())[:limit]


def _error_text(error, public: bool, files=()) -> str:
    """Feedback for an exception reported by the worker (whose whole report is untrusted)."""
    if not isinstance(error, dict):
        return "failed"
    kind = error.get("type")
    kind = kind[:80] if isinstance(kind, str) and kind.isidentifier() else ""
    if not public and kind not in _KNOWN_ERRORS:
        kind = ""
    text = f"raised {kind}" if kind else "raised an exception"
    where = error.get("where")
    if isinstance(where, str):
        name, _, line = where.rpartition(", line ")
        if name in files and line.isdigit() and len(line) <= 7:
            text += f" ({name}, line {int(line)})"
    message = error.get("message")
    if public and isinstance(message, str) and _plain(message, 200):
        text += f": {_plain(message, 200)}"
    return text


def _run_test(sandbox: Sandbox, test: Test, refs, record: bool) -> list[CaseResult]:
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
            if worker is None:
                worker = sandbox.start()
            outputs = {}
            try:
                request = wire.encode({"probe": case.probe, "args": case.args})
                raw = worker.call(request, timeout=test.timeout)
                answer = wire.decode(raw)
                if not isinstance(answer, dict) or answer.get("ok") not in (True, False):
                    raise wire.WireError("malformed answer")
                if answer["ok"] is True:
                    outputs = answer.get("outputs")
                    if not isinstance(outputs, dict):
                        raise wire.WireError("malformed outputs")
                    message = _compare(test, case, outputs, refs, record)
                else:
                    message = _error_text(answer.get("error"), case.public, tuple(sandbox.files))
            except WorkerTimeout:
                message = f"exceeded the time limit of {test.timeout:g} s"
                worker.stop()
                worker = None
            except WorkerDied as exc:
                message = str(exc)
                worker.stop()
                worker = None
            except wire.WireError as exc:
                message = f"returned something that is not plain numbers/arrays ({_plain(exc, 100)})"
                worker.stop()
                worker = None
            results[index] = CaseResult(case.name, case.points_weight, message is None, message or "",
                                        case.public, outputs if record else {})
    finally:
        if worker is not None:
            worker.stop()
        sandbox.reset()
    return [results[i] for i in range(len(test.cases))]


def _compare(test: Test, case, outputs: dict, refs, record: bool) -> str | None:
    problems = []
    for name, compare in case.expect.items():
        if name not in outputs:
            problems.append(f"no value for {name!r}")
            continue
        if record:
            continue
        ref = refs.get(reference_key(test.name, case.name, name))
        if ref is None:
            raise UserError(f"no reference for {test.name}/{case.name}/{name}; run `gmmcourse refs`")
        verdict = compare(outputs[name], ref)
        if isinstance(verdict, Mismatch):
            problems.append(f"{name}: {verdict.detail}" if case.public
                            else f"{name}: {MISMATCH_KINDS[verdict.kind]}")
    return "; ".join(problems) or None


# --------------------------------------------------------------------------- results


def _load_refs(folder: Path) -> dict[str, np.ndarray]:
    path = folder / REFERENCES
    if not path.is_file():
        raise UserError(f"no reference values at {path}; run `gmmcourse refs`")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _checkout_secrets() -> tuple[Path, ...]:
    """When this grader runs from a course-kit checkout, the folders a student must never read
    (in a Gradescope zip none of them exist)."""
    root = Path(__file__).resolve().parents[2]
    return tuple(p for p in (root / name for name in ("autograder", "solutions", "dist", ".git"))
                 if p.is_dir())


def grade(folder: Path, submission: Path, *, record: bool = False, secret_paths: tuple[Path, ...] = ()):
    """Grade one submission; returns (results dict in Gradescope format, raw case results).

    record=True runs without references (to generate them from the solution) and keeps outputs.
    """
    started = time.monotonic()
    make_private(folder, *secret_paths, *_checkout_secrets())
    unit = load_unit(folder)
    refs = {} if record else _load_refs(folder)
    files, notes = collect_submission(Path(submission), unit.submission, folder / GIVEN)
    tests_out, raw = [], {}
    with Sandbox(folder / "probes.py", files, unit.limits) as sandbox:
        for test in unit.tests:
            cases = _run_test(sandbox, test, refs, record)
            raw[test.name] = cases
            total = sum(c.weight for c in cases)
            earned = sum(c.weight for c in cases if c.passed)  # weights of public cases are 0
            score = round(test.points * earned / total, 4) if total else 0.0
            lines = [f"{'PASS' if c.passed else 'FAIL'}  {'' if c.public else '[hidden] '}{c.name}"
                     + ("" if c.passed else f": {c.message}") for c in cases]
            head = f"{test.description}\n" if test.description else ""
            tests_out.append({"name": test.name, "score": score, "max_score": float(test.points),
                              "output": head + "\n".join(lines), "visibility": "visible"})
        sandbox.sweep()
    score = round(sum(t["score"] for t in tests_out), 4)
    results = {
        "score": score,
        "execution_time": round(time.monotonic() - started, 2),
        "output": "\n".join(notes) if notes else f"{unit.name}: {score:g} / {unit.max_score:g}",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests_out,
    }
    return results, raw


def write_results(results: dict, path: Path) -> None:
    """Write results.json atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=2)
    os.replace(tmp, path)


def record_references(folder: Path, solution: Path, out: Path | None = None) -> Path:
    """Run every case against the solution and store its outputs as the reference values."""
    unit = load_unit(folder)
    _, raw = grade(folder, solution, record=True)
    arrays: dict[str, np.ndarray] = {}
    failures = []
    for test in unit.tests:
        for case, res in zip(test.cases, raw[test.name], strict=True):
            if not res.passed:
                failures.append(f"{test.name}/{case.name}: {res.message}")
                continue
            for name in case.expect:
                value = res.outputs[name]
                arr = np.asarray(value)
                if arr.dtype.kind not in "biuf":
                    failures.append(f"{test.name}/{case.name}/{name}: reference is not numeric")
                    continue
                arrays[reference_key(test.name, case.name, name)] = arr
    if failures:
        raise UserError("the solution failed while recording references: " + " | ".join(failures[:5]))
    out = Path(out or folder / REFERENCES)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=".refs-", dir=out.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, out)
    return out


def format_table(results: dict) -> str:
    """A per-test table for the terminal."""
    rows = [("test", "score", "first problem")]
    for t in results["tests"]:
        first = next((ln for ln in t["output"].splitlines() if ln.startswith("FAIL")), "")
        rows.append((t["name"], f"{t['score']:g} / {t['max_score']:g}", first[:90]))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]}" for r in rows]
    total = sum(t["max_score"] for t in results["tests"])
    lines.append(f"{'TOTAL':<{width[0]}}  {results['score']:g} / {total:g}".rstrip())
    if results.get("output") and not math.isnan(results["score"]):
        lines.append(results["output"])
    return "\n".join(lines)
