"""Grade a whole class: ``gmmcourse grade-all UNIT SUBMISSIONS --out DIR [--jobs N]``.

SUBMISSIONS is either a folder with one entry per submission (a folder, a zip or a single file; the
entry's name is the submission's id) or a Gradescope "Export Submissions" zip. Such an export holds
one folder per submission (``submission_<id>/`` with the files the student uploaded) and
``submission_metadata.yml``, a mapping keyed by those folder names whose ``:submitters:`` lists
give each student's ``:name:``, ``:email:`` and ``:sid:`` (Ruby-symbol keys; a group submission
lists several); usually all of it sits under one top folder (``assignment_<id>_export/``). A
folder holding a ``submission_metadata.yml`` (an unpacked export) is read the same way.

Every submission is graded by :func:`gmmcourse.build.package.grade_with_zip`, the code path of
``gmmcourse grade`` and of the Gradescope zip, in a child process of its own (so its sandbox is
its own too), ``jobs`` at a time. Written to DIR, each file atomically:

- ``results/<id>.json``: the Gradescope results of that submission, and ``results/<id>.hash``,
  the content hash (submission and autograder zip) it was graded from; a re-run grades only the
  submissions whose hash is missing or differs;
- ``scores.csv``: one row per submission (id, name, email, sid, total, max, one column per test,
  the grader's output line) and ``histogram.png`` (the totals), once every submission is graded.

Ctrl-C (or SIGTERM) stops the running gradings (each child ends its sandbox on the way out) and
keeps what finished; nothing is left half-written.
"""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from gmmcourse import paths
from gmmcourse.errors import UserError

METADATA = "submission_metadata.yml"
RESULTS = "results"
SCORES = "scores.csv"
HISTOGRAM = "histogram.png"
HASH_VERSION = b"gmmcourse grade-all 1\n"  # change when what the hash covers changes
MAX_EXPORT_BYTES = 4 * 1024**3  # uncompressed size of an export we agree to unpack
STOP_SECONDS = 60.0  # how long an interrupted grading may take to end its sandbox before SIGKILL
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Entry:
    """One submission: its id (a file name), where its files are, and who handed it in."""

    id: str
    path: Path
    name: str = ""
    email: str = ""
    sid: str = ""


@dataclass
class Outcome:
    """What grading one submission gave: results to store, and whether to trust them next run."""

    results: dict
    cacheable: bool
    grader_failed: bool = False


# --------------------------------------------------------------------------- reading the class


def _strip_colons(value):
    """Gradescope writes Ruby-symbol keys (``:name:``); drop the leading colons, recursively."""
    if isinstance(value, dict):
        return {str(k).lstrip(":"): _strip_colons(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_colons(v) for v in value]
    return value


def read_metadata(path: Path) -> dict[str, dict]:
    """Read ``submission_metadata.yml`` as {folder name: {"name", "email", "sid"}}.

    The several submitters of a group submission are joined with "; ".
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path.name} of the export: {first}") from None
    data = _strip_colons(data)
    if not isinstance(data, dict):
        raise UserError(f"{path.name} of the export is not a mapping of submissions")
    people = {}
    for folder, record in data.items():
        submitters = record.get("submitters") if isinstance(record, dict) else None
        submitters = [s for s in submitters or [] if isinstance(s, dict)]
        people[folder] = {
            key: "; ".join(str(s.get(key) or "") for s in submitters) for key in ("name", "email", "sid")
        }
    return people


def _list_folder(folder: Path, skip: Path | None) -> list[Entry]:
    """List one entry per folder or file of ``folder``.

    A file's id is its name without the suffix (``alice.zip`` is ``alice``) unless another entry
    has that id already.
    """
    found = sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".")
        and p.name != METADATA
        and (skip is None or p.resolve() != skip)
        and (p.is_dir() or p.is_file())
    )
    stems = [p.name if p.is_dir() else p.stem for p in found]
    people = read_metadata(folder / METADATA) if (folder / METADATA).is_file() else {}
    entries = []
    for path, stem in zip(found, stems, strict=True):
        entry_id = stem if stems.count(stem) == 1 else path.name
        entries.append(Entry(entry_id, path, **people.get(path.name, people.get(entry_id, {}))))
    return entries


def _unpack_export(export: Path, work: Path) -> Path:
    """Unpack a Gradescope export zip into ``work``; returns the folder holding its metadata."""
    try:
        with zipfile.ZipFile(export) as zf:
            infos = zf.infolist()
            found = sorted(
                (i.filename for i in infos if i.filename.rsplit("/", 1)[-1] == METADATA),
                key=lambda name: name.count("/"),
            )
            if not found:
                raise UserError(f"{export} is not a Gradescope export: it holds no {METADATA}")
            if sum(i.file_size for i in infos) > MAX_EXPORT_BYTES:
                raise UserError(f"{export} unpacks to more than {MAX_EXPORT_BYTES // 2**30} GiB")
            top = found[0][: -len(METADATA)]
            zf.extractall(work, members=[i for i in infos if i.filename.startswith(top)])
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise UserError(f"cannot read the Gradescope export {export}: {exc}") from None
    return work / top if top else work


def read_class(submissions: Path, work: Path, skip: Path | None = None) -> list[Entry]:
    """Return the submissions of a folder or of a Gradescope export zip (unpacked into ``work``)."""
    if submissions.is_dir():
        entries = _list_folder(submissions, skip)
    elif submissions.is_file():
        if not zipfile.is_zipfile(submissions):
            raise UserError(f"{submissions} is neither a folder of submissions nor a Gradescope export zip")
        entries = _list_folder(_unpack_export(submissions, work), skip)
    else:
        raise UserError(f"submissions not found: {submissions}")
    if not entries:
        raise UserError(f"no submissions in {submissions}")
    return entries


def unit_file_names(unit: str) -> set[str]:
    """File names a submission of ``unit`` holds: its source files and notebooks."""
    folder = paths.SOLUTIONS_DIR / unit
    return {p.name for p in (folder / "src").glob("*.py")} | {p.name for p in folder.glob("*.ipynb")}


def _file_names(path: Path) -> set[str]:
    if path.is_dir():
        return {p.name for p in path.rglob("*") if p.is_file()}
    try:
        with zipfile.ZipFile(path) as zf:
            return {name.rsplit("/", 1)[-1] for name in zf.namelist()}
    except (zipfile.BadZipFile, OSError):
        return {path.name}


def check_unit_matches(entries: list[Entry], unit: str, where: Path) -> None:
    """Refuse a class none of whose submissions holds a file of ``unit`` (another assignment)."""
    seen: set[str] = set()
    for entry in entries:
        seen |= _file_names(entry.path)
    wanted = unit_file_names(unit)
    if seen & wanted:
        return
    others = [u for u in paths.available_units() if u != unit and seen & unit_file_names(u)]
    hint = f" (they match {', '.join(others)})" if others else ""
    raise UserError(
        f"no submission in {where} holds a file of {unit} such as {min(wanted)}{hint}; "
        f"is it another assignment?"
    )


# --------------------------------------------------------------------------- content hashes and files


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file's content, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_key(path: Path, autograder_digest: str) -> str:
    """Hash of everything a grading depends on: the autograder zip and the submission's files."""
    digest = hashlib.sha256(HASH_VERSION + autograder_digest.encode() + b"\n")
    if path.is_dir():
        files = sorted(
            (p.relative_to(path).as_posix(), p)
            for p in path.rglob("*")
            if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts
        )
    else:
        files = [(path.name, path)]
    for rel, file in files:
        data = file.read_bytes()
        digest.update(f"{len(rel)}:{rel}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (mode 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def readable_by_others(path: Path) -> bool:
    """Tell whether a user other than the owner can reach ``path`` and read it.

    That is: every folder above it searchable by others, the path itself readable by others.
    """
    path = path.resolve()
    try:
        if not all(stat.S_IMODE(p.stat().st_mode) & 0o001 for p in path.parents):
            return False
        return bool(stat.S_IMODE(path.stat().st_mode) & 0o004)
    except OSError:
        return False


class ResultStore:
    """``DIR/results``: ``<id>.json`` and, for results that hold on a re-run, ``<id>.hash``."""

    def __init__(self, out: Path):
        self.folder = out / RESULTS
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.chmod(self.folder, 0o700)
        except OSError as exc:
            raise UserError(f"cannot create {self.folder}: {exc.strerror}") from None
        for stale in self.folder.glob(".*.tmp"):  # from a run killed with SIGKILL
            stale.unlink(missing_ok=True)

    def is_current(self, entry_id: str, key: str) -> bool:
        """Tell whether ``entry_id`` has results graded from content hash ``key``."""
        hash_file = self.folder / f"{entry_id}.hash"
        try:
            if hash_file.read_text().strip() != key:
                return False
            json.loads((self.folder / f"{entry_id}.json").read_text())
        except (OSError, ValueError):
            return False
        return True

    def save(self, entry_id: str, results: dict, key: str | None) -> None:
        """Results first, the hash (``key``; None: grade again next time) last."""
        hash_file = self.folder / f"{entry_id}.hash"
        try:
            hash_file.unlink(missing_ok=True)
            write_atomic(self.folder / f"{entry_id}.json", json.dumps(results, indent=2).encode())
            if key is not None:
                write_atomic(hash_file, key.encode() + b"\n")
        except OSError as exc:
            raise UserError(
                f"cannot write the results of {entry_id} in {self.folder}: {exc.strerror}"
            ) from None

    def load(self, entry_id: str) -> dict:
        """Return the stored results of ``entry_id``."""
        return json.loads((self.folder / f"{entry_id}.json").read_text())


# --------------------------------------------------------------------------- grading, N at a time


def _failure(reason: str) -> dict:
    """Results of a submission that could not be graded (as the Gradescope entry point writes them)."""
    return {"score": 0.0, "output": f"could not grade: {reason}", "visibility": "visible", "tests": []}


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


class Batch:
    """Grades submissions in child processes (``python -m gmmcourse.grade_all ZIP SUBMISSION``).

    It is called from up to ``jobs`` threads at once; :meth:`stop` ends every running child.
    """

    def __init__(self, zip_path: Path, store: ResultStore):
        self.zip_path = zip_path
        self.store = store
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen] = set()
        self.stopping = False
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(_PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])])
        self._env = env

    def grade(self, entry: Entry, key: str) -> Outcome | None:
        """Grade one submission and store its results; None when stopped before it finished."""
        with self._lock:
            if self.stopping:
                return None
            child = subprocess.Popen(
                [sys.executable, "-m", "gmmcourse.grade_all", str(self.zip_path), str(entry.path)],
                cwd=_PACKAGE_PARENT,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )  # Ctrl-C reaches it through stop()
            self._children.add(child)
        try:
            out, err = child.communicate()
        finally:
            with self._lock:
                self._children.discard(child)
        outcome = self._outcome(child.returncode, out, err)
        if outcome is None:
            return None
        self.store.save(entry.id, outcome.results, key if outcome.cacheable else None)
        return outcome

    def _outcome(self, returncode: int, out: bytes, err: bytes) -> Outcome | None:
        if returncode == 0:
            try:
                report = json.loads(out.decode("utf-8").strip().splitlines()[-1])
            except (UnicodeDecodeError, ValueError, IndexError):
                report = None
            if isinstance(report, dict) and report.get("ok") is True:
                return Outcome(report["results"], cacheable=True)
            if isinstance(report, dict) and report.get("kind") == "submission":
                return Outcome(_failure(report["reason"]), cacheable=True)
            if isinstance(report, dict):
                return Outcome(
                    _failure(f"the grader failed: {report.get('reason')}"),
                    cacheable=False,
                    grader_failed=True,
                )
        if self.stopping:
            return None
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return Outcome(
            _failure(f"the grader process ended with status {returncode}: {_one_line(tail[0])}"),
            cacheable=False,
            grader_failed=True,
        )

    def stop(self, sig: int) -> int:
        """Stop starting gradings and send ``sig`` to the running ones; returns how many run."""
        with self._lock:
            self.stopping = True
            for child in self._children:
                try:
                    if sig == signal.SIGKILL:
                        os.killpg(child.pid, sig)
                    else:
                        child.send_signal(sig)
                except OSError:
                    pass
            return len(self._children)


def _wait_for(futures, timeout: float | None) -> bool:
    return not concurrent.futures.wait(futures, timeout=timeout).not_done


def _interrupted(batch: Batch, futures: list, announce: bool) -> None:
    """Cancel what has not started and let the running children end their sandboxes (SIGINT).

    They get SIGKILL after STOP_SECONDS or a second Ctrl-C.
    """
    for future in futures:
        future.cancel()
    running = batch.stop(signal.SIGINT)
    if announce:
        print(
            f"\ninterrupted: stopping {running} running grading(s) (Ctrl-C again to kill them)",
            file=sys.stderr,
            flush=True,
        )
    deadline = time.monotonic() + STOP_SECONDS
    killed = False
    while True:
        try:
            if _wait_for(futures, max(0.0, deadline - time.monotonic()) if not killed else None):
                return
        except KeyboardInterrupt:
            pass
        if not killed:
            batch.stop(signal.SIGKILL)
            killed = True


def grade_entries(batch: Batch, todo: list[tuple[Entry, str]], jobs: int, label: str) -> dict[str, Outcome]:
    """Grade ``todo`` ([(entry, key)]) ``jobs`` at a time with a progress bar; {id: outcome}."""
    from tqdm import tqdm

    outcomes: dict[str, Outcome] = {}
    futures: dict[concurrent.futures.Future, Entry] = {}
    bar = tqdm(
        total=len(todo), desc=label, unit="submission", disable=None, file=sys.stderr, dynamic_ncols=True
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade-all") as pool:
        try:
            for entry, key in todo:
                futures[pool.submit(batch.grade, entry, key)] = entry
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(
                    pending, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    outcome = future.result()
                    if outcome is not None:
                        outcomes[futures[future].id] = outcome
                    bar.set_postfix_str(futures[future].id, refresh=False)
                    bar.update(1)
        except BaseException as exc:  # Ctrl-C, or a result that could not be written
            bar.close()
            _interrupted(batch, list(futures), announce=isinstance(exc, KeyboardInterrupt))
            saved = sum(
                1
                for f in futures
                if f.done() and not f.cancelled() and f.exception() is None and f.result() is not None
            )
            print(
                f"stopped: {saved} of {len(todo)} submission(s) graded in this run are saved; "
                f"{SCORES} was not updated; run the same command again to grade the rest",
                file=sys.stderr,
                flush=True,
            )
            raise
        finally:
            bar.close()
    return outcomes


# --------------------------------------------------------------------------- outputs


def score_columns(all_results: list[dict]) -> list[tuple[str, float]]:
    """(test name, max score) in the order the grader reports them."""
    columns: dict[str, float] = {}
    for results in all_results:
        for test in results.get("tests", []):
            columns.setdefault(test["name"], float(test["max_score"]))
    return list(columns.items())


def _number(x: float) -> str:
    return format(float(x), ".10g")


def scores_csv(entries: list[Entry], all_results: list[dict], columns) -> bytes:
    """Return scores.csv: one row per submission, one column per test, the grader's output line."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    max_score = sum(m for _, m in columns)
    writer.writerow(["id", "name", "email", "sid", "total", "max", *(n for n, _ in columns), "output"])
    for entry, results in zip(entries, all_results, strict=True):
        by_test = {t["name"]: t["score"] for t in results.get("tests", [])}
        writer.writerow(
            [
                entry.id,
                entry.name,
                entry.email,
                entry.sid,
                _number(results["score"]),
                _number(max_score),
                *(_number(by_test.get(n, 0.0)) for n, _ in columns),
                _one_line(results.get("output", "")),
            ]
        )
    return buf.getvalue().encode()


def summary_table(all_results: list[dict], columns) -> str:
    """Per test: points, mean, min, max and how many earned full marks; then the totals."""
    n = len(all_results)
    rows = [("test", "points", "mean", "min", "max", "full marks")]

    def stats(name, points, values):
        full = sum(v >= points - 1e-9 for v in values) if points > 0 else 0
        rows.append(
            (
                name,
                f"{points:g}",
                f"{sum(values) / n:.2f}",
                f"{min(values):g}",
                f"{max(values):g}",
                f"{full} / {n}",
            )
        )

    for name, points in columns:
        stats(
            name,
            points,
            [next((t["score"] for t in r.get("tests", []) if t["name"] == name), 0.0) for r in all_results],
        )
    stats("TOTAL", sum(p for _, p in columns), [float(r["score"]) for r in all_results])
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width[i]) if i == 0 else cell.rjust(width[i]) for i, cell in enumerate(row))
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def histogram_png(totals: list[float], max_score: float, unit: str) -> bytes:
    """Draw a histogram of the total scores (20 bins from 0 to the maximum); return PNG bytes."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    top = max_score if max_score > 0 else max([*totals, 1.0])
    fig = Figure(figsize=(7.5, 4.5), dpi=110)
    ax = fig.add_subplot()
    ax.hist(totals, bins=np.linspace(0.0, top, 21), color="#4c72b0", edgecolor="white")
    mean = float(np.mean(totals))
    ax.axvline(mean, color="#c44e52", linestyle="--", linewidth=1.5, label=f"mean {mean:.1f}")
    ax.set_xlim(0.0, top)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"total score (points out of {top:g})")
    ax.set_ylabel("number of submissions")
    ax.set_title(f"{unit}: total scores of {len(totals)} submissions")
    ax.legend(loc="best")
    ax.grid(axis="y", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


# --------------------------------------------------------------------------- the command


def default_jobs() -> int:
    """Return the number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _autograder_zip(unit: str, autograder: Path | None) -> Path:
    """Return the autograder zip to grade with (UserError when it does not exist)."""
    zip_path = Path(autograder) if autograder else paths.DIST_DIR / f"{unit}-autograder.zip"
    if not zip_path.is_file():
        raise UserError(f"{zip_path} does not exist; run `gmmcourse build {unit}` first")
    return zip_path


def _warn_if_readable(zip_path: Path, submissions: Path) -> None:
    """As root, warn when other users could read the hidden tests or the classmates' work."""
    if os.geteuid() != 0:
        return
    for path, what in ((zip_path, "its hidden tests"), (submissions, "classmates' work")):
        if readable_by_others(path):
            print(
                f"warning: other users can read {path}; unless the sandbox confines file access, "
                f"student code could read {what} (chmod go-rwx it)",
                file=sys.stderr,
            )


def _grade_once_per_content(
    batch: Batch, todo: list[tuple[Entry, str]], jobs: int, label: str
) -> dict[str, Outcome]:
    """Grade ``todo``; identical submissions (same content hash) are graded once and share the result."""
    started = time.monotonic()
    first: dict[str, Entry] = {}
    for entry, key in todo:
        first.setdefault(key, entry)
    unique = [(entry, key) for key, entry in first.items()]
    outcomes = grade_entries(batch, unique, jobs, label)
    for entry, key in todo:
        source = first[key]
        if source is not entry and batch.store.is_current(source.id, key):
            batch.store.save(entry.id, batch.store.load(source.id), key)
    if todo:
        seconds = time.monotonic() - started
        print(
            f"graded {len(todo)} submission(s) in {seconds:.1f} s "
            f"({60 * len(todo) / max(seconds, 1e-9):.1f} per minute)"
        )
    return outcomes


def _grade_class(
    unit: str, submissions: Path, out: Path, jobs: int, zip_path: Path
) -> tuple[list[Entry], list[dict], dict[str, Outcome]]:
    """Grade what changed since the last run; return the entries, all their results, the outcomes."""
    work = Path(tempfile.mkdtemp(prefix="gmmcourse-grade-all-"))
    try:
        entries = read_class(submissions, work, skip=out.resolve())
        check_unit_matches(entries, unit, submissions)
        autograder_digest = file_digest(zip_path)
        out.mkdir(parents=True, exist_ok=True)
        store = ResultStore(out)
        keyed = [(entry, content_key(entry.path, autograder_digest)) for entry in entries]
        todo = [(entry, key) for entry, key in keyed if not store.is_current(entry.id, key)]
        if todo:
            _warn_if_readable(zip_path, submissions)
        print(
            f"{unit}: {len(entries)} submission(s), {len(entries) - len(todo)} up to date, "
            f"{len(todo)} to grade with {min(jobs, max(len(todo), 1))} job(s)",
            flush=True,
        )
        outcomes = _grade_once_per_content(Batch(zip_path, store), todo, jobs, f"grading {unit}")
        return entries, [store.load(entry.id) for entry in entries], outcomes
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_outputs(unit: str, out: Path, entries: list[Entry], all_results: list[dict]) -> None:
    """Write scores.csv and the histogram, and print the summary table."""
    columns = score_columns(all_results)
    write_atomic(out / SCORES, scores_csv(entries, all_results, columns))
    totals = [float(r["score"]) for r in all_results]
    write_atomic(out / HISTOGRAM, histogram_png(totals, sum(m for _, m in columns), unit))
    print()
    print(summary_table(all_results, columns))
    print(f"\nwrote {out / SCORES}, {out / HISTOGRAM} and {len(entries)} result(s) in {out / RESULTS}")


def grade_all(
    unit: str, submissions: Path, out: Path, jobs: int | None = None, autograder: Path | None = None
) -> int:
    """Run ``gmmcourse grade-all``.

    Parameters
    ----------
    unit : str
        The unit's name or prefix.
    submissions : Path
        A folder with one entry per submission, or a Gradescope export (zip or unpacked).
    out : Path
        Where ``scores.csv``, ``histogram.png`` and ``results/`` go.
    jobs : int, optional
        Gradings at a time (default: the cores this process may use).
    autograder : Path, optional
        The autograder zip (default: ``dist/<unit>-autograder.zip``).

    Returns
    -------
    int
        The exit status: 1 when the grader failed on some submission, else 0.
    """
    (unit,) = paths.resolve_units([unit])
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    zip_path = _autograder_zip(unit, autograder)
    submissions, out = Path(submissions), Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        entries, all_results, outcomes = _grade_class(unit, submissions, out, jobs, zip_path)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _write_outputs(unit, out, entries, all_results)
    failed = sorted(i for i, o in outcomes.items() if o.grader_failed)
    if failed:
        print(
            f"error: the grader failed on {len(failed)} submission(s) ({', '.join(failed[:10])}); "
            f"their rows score 0 and they are graded again on the next run",
            file=sys.stderr,
        )
        return 1
    return 0


# --------------------------------------------------------------------------- one grading (child process)


def _grade_one(argv: list[str]) -> int:
    """``python -m gmmcourse.grade_all ZIP SUBMISSION``: grade one submission, print one JSON line.

    Only that line goes to stdout (anything else printed on the way goes to stderr); Ctrl-C
    (SIGINT from the batch) unwinds the grading, which ends its sandbox, and prints nothing.
    """
    # a batch started in the background inherits SIGINT ignored: the batch's stop() must reach us
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    from gmmcourse.build.package import grade_with_zip

    if len(argv) != 2:
        print("usage: python -m gmmcourse.grade_all ZIP SUBMISSION", file=sys.stderr)
        return 2
    report_to = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        results = grade_with_zip(Path(argv[0]), Path(argv[1]))
        report = {"ok": True, "results": results}
    except KeyboardInterrupt:
        return 130
    except UserError as exc:
        report = {"ok": False, "kind": "submission", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a grader bug: one row, not the whole batch
        report = {"ok": False, "kind": "grader", "reason": f"{type(exc).__name__}: {_one_line(exc)}"}
    report_to.write(json.dumps(report) + "\n")
    report_to.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_grade_one(sys.argv[1:]))
