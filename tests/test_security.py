"""Attacks on the sandboxed grader (tests/fixtures/attack_unit).

Every submission in ``attacks/`` computes wrong answers and tries to earn points by cheating. None
may earn a point; the grader must survive, write a valid results.json that never shows a hidden
input, a hidden shape or a reference value (hidden-case feedback is one of a fixed set of
sentences), leave its hidden folder and the host's files untouched, and leave nothing behind: no
process or thread, file, shared-memory segment or socket of the sandbox. The honest solution still
earns full marks afterwards. Also: the same submission gets the same score from runner.grade, the
zip (as `gmmcourse grade` does), the zip's run_autograder script and on repeated runs; and two
gradings at the same time do not interfere.

These tests test the grader, not the machine: nothing here hides folders for the grader (no chmod
of the fixture's answers), and a world-readable second clone of the repository exists during the
whole session. Student code runs as an unprivileged user only when the grader runs as root
(Gradescope, CI), so the tests that grade need root; they say so when they skip, and CI must treat
such a skip as a failure.

Attacks report what they found or achieved as notes in a "drop" folder (``@DROP@``). A confined
worker may not be able to write there; the grader honours GMMCOURSE_SANDBOX_TEST_WRITABLE (a folder
the trusted side lets workers write, for these tests only) if it supports it. Every check that
proves a point does not depend on notes: scores, results.json, the host's processes (threads named
``gmmatk-<token>``), System V segments, /proc/meminfo and listeners the test runs itself.
"""

import builtins
import ctypes
import fcntl
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gmmcourse.build import package, units
from gmmcourse.build.public_checks import PUBLIC_CHECKS, public_checks
from gmmcourse.grading import gradescope, runner, wire
from gmmcourse.grading import sandbox as sandbox_module
from gmmcourse.grading.sandbox import Sandbox
from gmmcourse.grading.spec import MISMATCH_KINDS, Limits

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "attack_unit"
REPO = Path(__file__).resolve().parent.parent
ATTACKS = sorted(p.stem for p in (FIXTURE / "attacks").glob("*.py"))
# attacks with a test of their own (they need a listener, a zip, a notebook unit, a deadline, ...)
OWN_TEST = {
    "kill_everything",
    "public_replay",
    "tcp_exfil",
    "deep_recursion",
    "hostile_zip_names",
    "endless_grading",
}
ALONE = [a for a in ATTACKS if a not in OWN_TEST]
MAX = 4.0
_BASE = getattr(sandbox_module, "ID_BASE", 2_000_000)
POOL = range(_BASE, _BASE + getattr(sandbox_module, "ID_COUNT", 4096))  # the sandboxes' uids
ROOT_REASON = (
    "needs root: the grader runs student code under throw-away uids only as root (as on "
    "Gradescope and in CI); run the suite as root (.ci/run must fail when this skips)"
)


def skip_unless_root() -> None:
    """Skip (saying why) when not root; fail instead where root tests must run (CI sets
    GMMCOURSE_REQUIRE_ROOT_TESTS=1, or CI=true)."""
    if os.geteuid() == 0:
        return
    if os.environ.get("GMMCOURSE_REQUIRE_ROOT_TESTS") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"not root, but root tests are required here: {ROOT_REASON}")
    pytest.skip(ROOT_REASON)


# what the feedback must say (any of the fragments, somewhere in the results) for some attacks
EXPECT = {
    "exit_midway": ["raised SystemExit", "exited"],
    "fork_bomb": [],
    "huge_output": ["raised OSError", "SIGXFSZ", "file size"],
    "infinite_loop": ["exceeded the time limit of 3 s"],
    "memory_bomb": ["MemoryError", "used more than the memory limit of 512 MiB"],
    "scratch_fill": ["used more than the memory limit of 512 MiB", "raised PermissionError"],
    "leak_inputs": ["raised an exception", "raised ValueError", "raised KeyError"],
}
# exception names a hidden case may name (standard kinds; anything else is the student's choice)
STANDARD_ERRORS = frozenset(
    [n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)]
    + ["LinAlgError", "AxisError", "UFuncTypeError", "DTypePromotionError", "WireError"]
)


# --------------------------------------------------------------------------- the lab


class Lab:
    """A copy of the fixture unit with recorded references, in a folder others may list."""

    def __init__(self, root: Path):
        self.root = root
        self.unit = root / "unit"
        self.zip = root / "private" / "unit0_attack-autograder.zip"
        self.drops = root / "drops"
        self.token = secrets.token_hex(4)  # names the attacks' processes and files
        self.tests = []
        self.limits = Limits()
        self.needles: set[str] = set()
        self.snapshot: dict = {}
        self.clone: Path | None = None

    def drop(self) -> Path:
        """A folder the attack may write notes to (where it found things, its uid, its children)."""
        folder = Path(tempfile.mkdtemp(prefix="drop-", dir=self.drops))
        os.chmod(folder, 0o1777)
        return folder


def _snapshot(folder: Path) -> dict:
    out = {".": (None, folder.lstat().st_mode, folder.lstat().st_uid)}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        out[path.relative_to(folder).as_posix()] = (
            path.read_bytes() if path.is_file() else None,
            st.st_mode,
            st.st_uid,
        )
    return out


def _world_readable_clone(dest: Path) -> Path:
    """A clone of this repository as an instructor would leave one lying around (0755 / 0644)."""
    done = subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:  # not a git checkout (e.g. an unpacked release of the kit): copy it
        shutil.copytree(
            REPO, dest, symlinks=True, ignore=shutil.ignore_patterns(".venv", "dist", "__pycache__", ".git")
        )
    for dirpath, _, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)
    assert (dest / "tests/fixtures/attack_unit/solution/stats_answers.py").is_file()
    return dest


@pytest.fixture(scope="session")
def second_clone():
    """Made before any attack runs and kept for the whole session (issue 9, item 7)."""
    skip_unless_root()
    base = Path(tempfile.mkdtemp(prefix="gmmcourse-second-clone-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield _world_readable_clone(base / "gmmcourse")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(second_clone):
    skip_unless_root()
    root = Path(tempfile.mkdtemp(prefix="gmmcourse-attack-"))
    os.chmod(root, 0o755)  # guessable and listable: only the grader's own protection keeps unit/ secret
    lab = Lab(root)
    lab.clone = second_clone
    lab.drops.mkdir(mode=0o755)
    os.environ["GMMCOURSE_SANDBOX_TEST_WRITABLE"] = str(lab.drops)  # see the module docstring
    lab.unit.mkdir()
    for name in ("tests.py", "probes.py"):
        shutil.copyfile(FIXTURE / name, lab.unit / name)
    runner.record_references(lab.unit, FIXTURE / "solution")
    (root / "private").mkdir(mode=0o700)
    package.build_autograder_zip(units.UnitSources("unit0_attack", FIXTURE, lab.unit), lab.zip)
    unit = runner.load_unit(lab.unit)
    lab.tests, lab.limits = unit.tests, unit.limits
    values = [v for arr in runner.load_references(lab.unit).values() for v in np.ravel(arr)]
    values += [v for t in lab.tests for c in t.cases if not c.public for v in np.ravel(c.args["x"])]
    lab.needles = {repr(float(v)) for v in values} | {f"{float(v):.8g}" for v in values}
    lab.snapshot = _snapshot(lab.unit)
    yield lab
    try:  # after every attack this session ran: the honest solution still earns full marks
        assert _snapshot(lab.unit) == lab.snapshot, "the hidden autograder folder was changed"
        honest = grade(lab, FIXTURE / "solution")
        assert honest["score"] == MAX, runner.format_table(honest)
    finally:
        os.environ.pop("GMMCOURSE_SANDBOX_TEST_WRITABLE", None)
        _clean_up(lab, _host_state())
        shutil.rmtree(root, ignore_errors=True)


def make_submission(folder: Path, source: Path, drop: Path, lab: Lab | None = None, **subs) -> Path:
    folder.mkdir(parents=True)
    text = source.read_text().replace("@DROP@", str(drop))
    if lab is not None:
        text = text.replace("@TOKEN@", lab.token)
    for key, value in subs.items():
        text = text.replace(f"@{key}@", str(value))
    (folder / "stats_answers.py").write_text(text)
    return folder


def grade(lab: Lab, submission: Path, unit: Path | None = None) -> dict:
    """As `gmmcourse grade` does (the grader protects everything itself: no secret paths given)."""
    results, _ = runner.grade(unit or lab.unit, submission)
    return results


def run_autograder(
    lab: Lab, submission: Path, zip_path: Path | None = None, check: bool = True
) -> tuple[dict, str, Path]:
    """The zip's run_autograder, run locally as on Gradescope; returns (results, printed, results path)."""
    base = Path(tempfile.mkdtemp(prefix="gradescope-", dir=lab.root))
    os.chmod(base, 0o755)
    ag = base / "autograder"  # Gradescope's layout: zip in source/, run_autograder copied to the root
    with zipfile.ZipFile(zip_path or lab.zip) as zf:
        zf.extractall(ag / "source")
    shutil.copy2(ag / "source" / "run_autograder", ag / "run_autograder")
    if submission.is_dir():
        shutil.copytree(submission, ag / "submission")
    else:
        (ag / "submission").mkdir()
        shutil.copy2(submission, ag / "submission" / submission.name)
    os.chmod(ag / "submission", 0o700)  # (on Gradescope, the only submission around)
    env = dict(os.environ, GMMCOURSE_AUTOGRADER_ROOT=str(ag), GMMCOURSE_PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(ag / "run_autograder")], cwd=ag, env=env, capture_output=True, text=True, timeout=300
    )
    path = base / "autograder" / "results" / "results.json"
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert path.is_file(), f"no results.json (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(path.read_text()), proc.stdout + proc.stderr, path


def notes(drop: Path, kind: str) -> list[str]:
    lines = []
    for path in sorted(drop.glob(f"{kind}-*")):
        lines.extend(line for line in path.read_text().splitlines() if line)
    return lines


def _tasks(pid: str):
    """(comm, state) of every thread of a process."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue
        state = next(
            (ln.split(":", 1)[1].strip() for ln in status.splitlines() if ln.startswith("State:")), ""
        )
        yield comm, state


def _alive(pid: str) -> bool:
    """Whether any thread of the process still runs (a zombie leader may have live threads)."""
    return any(not state.startswith(("Z", "X")) for _, state in _tasks(pid))


def live_pids(uid: int) -> list[int]:
    """Processes with ``uid`` as any of their user ids and at least one thread that is not a zombie."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(f"/proc/{entry.name}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if uid in {int(v) for v in fields["Uid"].split()} and _alive(entry.name):
                found.append(int(entry.name))
    return found


def token_pids(lab: Lab) -> list[int]:
    """Processes with a live thread named by an attack of this session (``gmmatk-<token>``)."""
    name = f"gmmatk-{lab.token}"[:15]
    return [
        int(e.name)
        for e in os.scandir("/proc")
        if e.name.isdigit()
        and any(comm == name and not st.startswith(("Z", "X")) for comm, st in _tasks(e.name))
    ]


def token_files(lab: Lab) -> list[str]:
    """Files an attack of this session named after its token, anywhere in the shared scratch folders."""
    found = []
    for base in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"):
        for dirpath, dirnames, filenames in os.walk(base):
            if dirpath.count(os.sep) >= base.count(os.sep) + 5:
                dirnames[:] = []
            found += [os.path.join(dirpath, n) for n in filenames + dirnames if lab.token in n]
    return found


def files_of(uid: int) -> list[str]:
    found = []
    for folder in ("/tmp", "/var/tmp", "/dev/shm", tempfile.gettempdir()):
        for entry in os.scandir(folder):
            if entry.stat(follow_symlinks=False).st_uid == uid:
                found.append(entry.path)
    return found


def sysv_segments() -> dict[int, dict]:
    """shmid -> {size, cuid, ctime, nattch} from /proc/sysvipc/shm (this IPC namespace)."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()
    head = lines[0].split()
    out = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split(), strict=False))
        out[int(row["shmid"])] = {k: int(row[k]) for k in ("size", "cuid", "ctime", "nattch")}
    return out


def shmem_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) * 1024
    return 0


def _host_state() -> dict:
    return {"segments": set(sysv_segments()), "shmem": shmem_bytes(), "time": time.time()}


def _sandbox_segments(before: dict, uids=()) -> dict[int, dict]:
    """System V segments created since ``before`` by a sandbox uid."""
    return {
        i: s
        for i, s in sysv_segments().items()
        if i not in before["segments"] and (s["cuid"] in POOL or s["cuid"] in uids or s["cuid"] >= 1_000_000)
    }


def _clean_up(lab: Lab, before: dict) -> None:
    """Whatever an attack left despite the grader (so one failure does not spoil the machine)."""
    for pid in token_pids(lab):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    libc = ctypes.CDLL(None)
    for shmid in _sandbox_segments(before):
        libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(0), None)  # IPC_RMID
    for base in ("/tmp", "/var/tmp", "/dev/shm", "/run"):
        for dirpath, dirnames, filenames in os.walk(base):
            if dirpath.count(os.sep) > base.count(os.sep) + 5:
                dirnames[:] = []
            for name in filenames:
                if lab.token in name:
                    try:
                        os.unlink(os.path.join(dirpath, name))
                    except OSError:
                        pass


@pytest.fixture
def host(lab):
    """The host's state before the test (and the peak of its shared memory while the test runs);
    afterwards, whatever survived is removed."""
    before = _host_state()
    before["peak_shmem"] = before["shmem"]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.05):
            before["peak_shmem"] = max(before["peak_shmem"], shmem_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    yield before
    stop.set()
    sampler.join()
    _clean_up(lab, before)


# --------------------------------------------------------------------------- checks shared by all attacks


def _hidden_message_problem(message: str, case, test, limits: Limits) -> str | None:
    """Why a hidden case's failure message is not one of the grader's fixed sentences (or None).

    Allowed: sentences made of the grader's own words; the only numbers are the unit's declared
    limits; the only names are the case's output names and standard exception kinds. So no line
    number, exit status, dtype, shape, error position or student-chosen word gets through.
    """
    if len(message) > 160:
        return "too long"
    if not message.isascii() or not message.isprintable():
        return "non-printable or non-ASCII characters"
    if "ZQ" in message:
        return "a word chosen by the student"
    rest = message
    for name in case.expect:
        rest = rest.replace(f"'{name}'", "").replace(f"{name}: ", "")
    for sentence in MISMATCH_KINDS.values():
        rest = rest.replace(sentence, "")
    trusted = {
        f"{test.timeout:g}",
        f"{limits.memory_bytes / 2**20:g}",
        f"{limits.cpu_seconds:g}",
        f"{limits.grading_seconds:g}",
        f"{limits.processes:g}",
        f"{limits.file_bytes / 2**20:g}",
        f"{limits.answer_bytes / 2**20:g}",
    }
    rest = re.sub(r"\b\d+(?:\.\d+)?\b", lambda m: "" if m.group(0) in trusted else m.group(0), rest)
    if re.search(r"\d", rest):
        return "a number that is not one of the unit's limits"
    for name in re.findall(r"raised (\w+)", rest):
        if name != "an" and name not in STANDARD_ERRORS:
            return f"a non-standard exception name {name!r}"
    return None


def check_results(lab: Lab, results: dict, printed: str = "") -> None:
    """Valid JSON, one well-formed line per case, fixed hidden feedback, no hidden value anywhere."""
    text = json.dumps(results, allow_nan=False)
    assert json.loads(text) == results
    assert len(text) < 10_000, "the student's text must not blow up results.json"
    assert [t["name"] for t in results["tests"]] == [t.name for t in lab.tests]
    for out, test in zip(results["tests"], lab.tests, strict=True):
        assert 0 <= out["score"] <= out["max_score"] == test.points
        lines = out["output"].splitlines()
        assert lines[0] == test.description
        assert len(lines[1:]) == len(test.cases), out["output"]
        for line, case in zip(lines[1:], test.cases, strict=True):
            head = f"{'' if case.public else '[hidden] '}{case.name}"
            assert line == f"PASS  {head}" or line.startswith(f"FAIL  {head}: "), line
            if line.startswith("FAIL") and not case.public:
                why = _hidden_message_problem(line[len(f"FAIL  {head}: ") :], case, test, lab.limits)
                assert why is None, f"hidden-case feedback is not a fixed sentence ({why}): {line!r}"
    shown = text + runner.format_table(results) + printed
    leaked = sorted(needle for needle in lab.needles if needle in shown)
    assert not leaked, f"hidden inputs or reference values in the feedback: {leaked[:3]}"
    assert "ZQ" not in results.get("output", ""), "student-chosen words in the notes"


def check_nothing_left(lab: Lab, drop: Path, before: dict | None = None) -> None:
    """The hidden folder is unchanged; no process, thread, scratch file or System V segment of the
    sandbox users is left."""
    assert _snapshot(lab.unit) == lab.snapshot, "the hidden autograder folder was changed"
    assert not token_pids(lab), f"processes of the attack survived the grading: {token_pids(lab)}"
    assert not token_files(lab), f"files of the attack survived the grading: {token_files(lab)[:5]}"
    uids = {int(u) for u in notes(drop, "uid")}
    for uid in uids:
        assert uid != 0 and uid != os.getuid()
        assert not live_pids(uid), f"processes of sandbox uid {uid} survived the grading"
        assert not files_of(uid), f"files of sandbox uid {uid} survived the grading"
    for kind in ("children", "daemon"):
        for pid in {p for line in notes(drop, kind) for p in line.split()}:
            running = uids and any(int(pid) in live_pids(uid) for uid in uids)
            assert not running, f"{kind} {pid} is still running"
    if before is not None:
        left = _sandbox_segments(before, uids)
        assert not left, f"System V shared memory of the sandbox survived the grading: {left}"


def _all_output(results: dict) -> str:
    return "\n".join(t["output"] for t in results["tests"])


def record_row(attack: str, results: dict) -> None:
    """With GMMCOURSE_ATTACK_TABLE=FILE, append "attack | score | feedback" for the closing note."""
    target = os.environ.get("GMMCOURSE_ATTACK_TABLE")
    if not target:
        return
    said = [
        ln.split(": ", 1)[1]
        for t in results.get("tests", [])
        for ln in t["output"].splitlines()
        if ln.startswith("FAIL") and ": " in ln
    ]
    said = list(dict.fromkeys(said)) or [results.get("output", "")]
    with open(target, "a") as fh:
        fh.write(f"| {attack} | {results.get('score')} | {' / '.join(said)[:240]!r} |\n")


# --------------------------------------------------------------------------- the attacks


def _check_read_secrets(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    assert notes(drop, "found-keys") == [] and notes(drop, "solutions") == []
    protected = [
        str(lab.unit),
        str(lab.root / "private"),
        str(FIXTURE),
        str(REPO / "solutions"),
        str(REPO / "autograder"),
        str(lab.clone),
    ]
    for path in notes(drop, "readable"):
        assert not path.startswith(tuple(protected)), f"the worker could read {path}"
        assert not path.endswith("/environ") or f"/proc/{os.getpid()}/" not in path
        assert "/fd/" not in path, f"the worker could read the grader's descriptor {path}"


def _check_kill_grader(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    assert notes(drop, "succeeded") == [], "a signal reached the grader or init, or root was regained"


def _check_fork_bomb(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    per_worker = [len(path.read_text().split()) for path in drop.glob("children-*")]
    assert all(n < 16 for n in per_worker), "the process limit did not stop the fork bomb"


def _check_memory_bomb(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    touched = sum(int(v) for v in notes(drop, "touched"))
    assert touched < 8 * 200, f"the worker group touched {touched} MB: no group memory limit"


def _check_scratch_fill(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    written = max((int(v) for v in notes(drop, "written-mb")), default=0)
    assert written < 1200, "scratch files were not counted against the memory limit"


def _check_overwrite(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    for line in notes(drop, "overwrote") + notes(drop, "wrote-through-grader"):
        assert str(lab.unit) not in line and "_grader" not in line, line


def _check_found_nothing(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    assert notes(drop, "found") == [], f"the worker imported the honest answer from {notes(drop, 'found')}"


def _check_sysv_shm(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    limit_mb = lab.limits.memory_bytes / 2**20
    held = max((int(v) for v in notes(drop, "shm-mb")), default=0)
    peak = (before["peak_shmem"] - before["shmem"]) / 2**20  # seen from outside, notes or not
    assert max(held, peak) < 2 * limit_mb, (
        f"{max(held, peak):.0f} MiB of shared memory held against a {limit_mb:g} MiB limit"
    )
    # The kernel frees the segments of a dead IPC namespace from a work queue, a moment after its last
    # process exits, so "stayed" means still held after a few seconds, not at the first look.
    deadline = time.monotonic() + 10.0
    while (grown := shmem_bytes() - before["shmem"]) >= 256 * 2**20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert grown < 256 * 2**20, f"shared memory of the machine grew by {grown / 2**20:.0f} MiB and stayed"
    for path in notes(drop, "posix-shm"):
        assert not os.path.exists(path), f"{path} survived the grading"
    assert not list(Path("/dev/shm").glob(f"gmmatk-{lab.token}-*")), "a /dev/shm file survived"


def _check_zombie_leader(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    beats = list(drop.glob("heartbeat-*"))
    stamps = [p.stat().st_mtime for p in beats]
    time.sleep(0.5)
    assert [p.stat().st_mtime for p in beats] == stamps, "a thread of the zombie leader is still running"


def _check_cross_test(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    assert notes(drop, "received") == [], f"hidden inputs crossed to the next test: {notes(drop, 'received')}"
    public = [ln for ln in _all_output(results).splitlines() if ln.startswith("FAIL  small vector")]
    assert not any(tag in ln for ln in public for tag in ("shm=", "sock=", "a/b/c=")), (
        f"the next test received something: {public}"
    )


def _check_side_channels(lab: Lab, drop: Path, results: dict, before: dict) -> None:
    # (line numbers, exit status, shapes, dtypes and error positions are numbers: check_results
    # already allows no number in hidden feedback but the unit's limits)
    assert "ZQ" not in "\n".join(ln for ln in _all_output(results).splitlines() if "[hidden]" in ln)


EXTRA = {
    "read_secrets": _check_read_secrets,
    "kill_grader": _check_kill_grader,
    "fork_bomb": _check_fork_bomb,
    "memory_bomb": _check_memory_bomb,
    "scratch_fill": _check_scratch_fill,
    "overwrite_files": _check_overwrite,
    "second_clone": _check_found_nothing,
    "tests_via_sys_prefix": _check_found_nothing,
    "sysv_shm": _check_sysv_shm,
    "zombie_leader": _check_zombie_leader,
    "cross_test_channel": _check_cross_test,
    "feedback_side_channel": _check_side_channels,
}


@pytest.mark.parametrize("attack", ALONE)
def test_attack_earns_nothing(lab, host, tmp_path, attack):
    drop = lab.drop()
    submission = make_submission(tmp_path / "submission", FIXTURE / "attacks" / f"{attack}.py", drop, lab)
    results = grade(lab, submission)
    record_row(attack, results)
    table = runner.format_table(results)
    assert results["score"] == 0, table
    check_results(lab, results)
    if EXPECT.get(attack):
        assert any(fragment in _all_output(results) for fragment in EXPECT[attack]), table
    check_nothing_left(lab, drop, host)
    if attack in EXTRA:
        EXTRA[attack](lab, drop, results, host)
    if attack == "overwrite_files":  # whatever it planted must not pay off in a later grading either
        assert grade(lab, submission)["score"] == 0
        check_nothing_left(lab, drop, host)
        assert grade(lab, FIXTURE / "solution")["score"] == MAX, "the attack spoiled the next grading"


def test_second_clone_exists_and_is_world_readable(lab):
    """The attack suite runs with a readable second clone around, as on an instructor's machine."""
    answer = lab.clone / "tests/fixtures/attack_unit/solution/stats_answers.py"
    assert answer.stat().st_mode & 0o004
    assert all(p.stat().st_mode & 0o005 == 0o005 for p in answer.parents if p != Path("/"))


def test_public_replay_earns_nothing(lab, host, tmp_path):
    """Answers copied from the shipped public_checks/cases.json: the public cases pass, worth 0."""
    released = tmp_path / "release"
    public_checks(units.UnitSources("unit0_attack", FIXTURE, lab.unit), released)
    cases = (released / PUBLIC_CHECKS / "cases.json").read_text()
    drop = lab.drop()
    submission = make_submission(
        tmp_path / "submission", FIXTURE / "attacks" / "public_replay.py", drop, lab, PUBLIC=cases
    )
    (submission / "public_checks").mkdir()
    (submission / "public_checks" / "cases.json").write_text(cases)
    results = grade(lab, submission)
    record_row("public_replay", results)
    out = _all_output(results)
    assert "PASS  column means of a tiny matrix" in out and "PASS  small vector" in out, out
    assert results["score"] == 0, runner.format_table(results)
    check_results(lab, results)
    check_nothing_left(lab, drop, host)


class Listener:
    """TCP and UDP sockets on 127.0.0.1 that record whatever arrives."""

    def __init__(self):
        self.received: list[bytes] = []
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.stop = False
        self.threads = [
            threading.Thread(target=self._tcp, daemon=True),
            threading.Thread(target=self._udp, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _tcp(self):
        self.tcp.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.received.append(b"tcp connection: " + conn.recv(4096))
                except OSError:
                    self.received.append(b"tcp connection")

    def _udp(self):
        self.udp.settimeout(0.2)
        while not self.stop:
            try:
                self.received.append(b"udp: " + self.udp.recv(4096))
            except OSError:
                continue

    def close(self):
        self.stop = True
        for thread in self.threads:
            thread.join(timeout=2)
        self.tcp.close()
        self.udp.close()


def test_network_exfiltration_reaches_nothing(lab, host, tmp_path):
    listener = Listener()
    try:
        drop = lab.drop()
        submission = make_submission(
            tmp_path / "submission",
            FIXTURE / "attacks" / "tcp_exfil.py",
            drop,
            lab,
            TCP_PORT=listener.tcp.getsockname()[1],
            UDP_PORT=listener.udp.getsockname()[1],
        )
        results = grade(lab, submission)
        record_row("tcp_exfil", results)
        time.sleep(0.3)
    finally:
        listener.close()
    assert listener.received == [], f"the worker reached the network: {listener.received[:3]}"
    assert results["score"] == 0
    check_results(lab, results)
    check_nothing_left(lab, drop, host)


HOSTILE_NAMES = (
    "\nTOTAL 100 / 100\n/stats_answers.py",
    "\x1b[2J\x1b[HPASS  [hidden] forged\r/stats_answers.py",
    "\u202eyp.srewsna_stats\u202c/stats_answers.py",
    "A" * 3000 + "/stats_answers.py",
    "../../escape-{token}/stats_answers.py",
    "/tmp/gmmatk-{token}-absolute/stats_answers.py",
    "ok/../../../../../../tmp/gmmatk-{token}-dots/stats_answers.py",
    "\x07bell\x08\x7f/stats_answers.py",
)


def test_hostile_zip_member_names_are_sanitised(lab, host, tmp_path):
    drop = lab.drop()
    source = make_submission(tmp_path / "source", FIXTURE / "attacks" / "hostile_zip_names.py", drop, lab)
    data = (source / "stats_answers.py").read_bytes()
    upload = tmp_path / "upload" / "submission.zip"
    upload.parent.mkdir()
    with zipfile.ZipFile(upload, "w") as zf:
        for name in HOSTILE_NAMES:
            zf.writestr(name.format(token=lab.token), data)
    results = grade(lab, upload)
    record_row("hostile_zip_names", results)
    table = runner.format_table(results)
    assert results["score"] == 0, table
    check_results(lab, results)
    strings = [
        results["output"],
        *(t["output"] for t in results["tests"]),
        *(t["name"] for t in results["tests"]),
    ]
    for text in strings:
        for line in text.split("\n"):
            assert line.isprintable() and len(line) <= 300, f"unsanitised note line: {line[:120]!r}"
    note_lines = results["output"].split("\n")
    assert not any(ln.lstrip().startswith(("TOTAL", "PASS", "FAIL")) for ln in note_lines), note_lines
    assert len([ln for ln in table.splitlines() if ln.lstrip().startswith("TOTAL")]) == 1, table
    assert not [str(p) for p in Path("/tmp").glob(f"*{lab.token}*")], "a member was written outside"
    for folder in (upload.parent, tmp_path, tmp_path.parent, lab.root, lab.root.parent):
        assert not list(folder.glob(f"escape-{lab.token}*")), "a ../ member was written outside"
    check_nothing_left(lab, drop, host)


def _variant_unit(lab: Lab, name: str, replace: dict[str, dict[str, str]]) -> Path:
    """A copy of the lab's unit with text replaced in its files (same tests, same references)."""
    unit = lab.root / name
    if not unit.is_dir():
        shutil.copytree(lab.unit, unit)
        for file, pairs in replace.items():
            text = (unit / file).read_text()
            for old, new in pairs.items():
                assert old in text, f"{old!r} not in {file}"
                text = text.replace(old, new)
            (unit / file).write_text(text)
    return unit


def test_endless_grading_stops_at_the_deadline(lab, host, tmp_path):
    """Every case runs to its time limit; the grading ends by the unit's deadline, the rest scores 0."""
    deadline = 5
    unit = _variant_unit(
        lab, "unit-deadline", {"tests.py": {"grading_seconds=60": f"grading_seconds={deadline}"}}
    )
    assert runner.load_unit(unit).limits.grading_seconds == deadline
    drop = lab.drop()
    attack = FIXTURE / "attacks" / "endless_grading.py"
    submission = make_submission(tmp_path / "submission", attack, drop, lab)
    started = time.monotonic()
    results = grade(lab, submission, unit=unit)
    took = time.monotonic() - started
    record_row(f"endless_grading ({took:.1f} s, deadline {deadline} s)", results)
    table = runner.format_table(results)
    n_cases = sum(len(t.cases) for t in lab.tests)
    assert took < deadline + max(t.timeout for t in lab.tests) + 4, (
        f"the grading took {took:.1f} s with a deadline of {deadline} s (without one: {n_cases} cases "
        f"x {lab.tests[0].timeout:g} s)\n{table}"
    )
    assert results["score"] == 0, table
    limits = lab.limits
    lab.limits = runner.load_unit(unit).limits
    try:
        check_results(lab, results)
    finally:
        lab.limits = limits
    said = _all_output(results) + results["output"]
    assert re.search(r"deadline|whole grading|grading time", said, re.I), said
    check_nothing_left(lab, drop, host)


def _notebook(cells: list[str], metadata: dict | None = None) -> dict:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": metadata or {},
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
    }


def _notebook_zip(lab: Lab) -> Path:
    unit = _variant_unit(
        lab,
        "unit-notebook",
        {
            "tests.py": {
                'Submission(kind="py", files=("stats_answers.py",))': (
                    'Submission(kind="notebook", files=("stats_answers.ipynb",))'
                )
            },
            "probes.py": {"import stats_answers": "import submission as stats_answers"},
        },
    )
    target = lab.root / "private" / "unit0_attack-notebook-autograder.zip"
    if not target.is_file():
        package.build_autograder_zip(units.UnitSources("unit0_attack", FIXTURE, unit), target)
    return target


def _deep_notebooks(attack: str) -> dict[str, str]:
    """Notebook texts (JSON) that make a naive extractor recurse."""
    nested = "[" * 100_000 + "]" * 100_000
    return {
        "long operator chain": json.dumps(_notebook([attack, "DEPTH = " + " + ".join(["1"] * 100_000)])),
        "deeply nested parentheses": json.dumps(
            _notebook([attack, "DEPTH = " + "(" * 190 + "1" + ")" * 190])
        ),
        "unary chain": json.dumps(_notebook([attack, "DEPTH = " + "-" * 100_000 + "1"])),
        "nested JSON metadata": json.dumps(_notebook([attack]))[:-1] + ', "deep": ' + nested + "}",
        "nested JSON cell": json.dumps(_notebook([attack]))[:-3] + ', "deep": ' + nested + "}]}",
    }


def test_deep_recursion_in_a_notebook_still_gives_results(lab, host, tmp_path):
    """The grader's own parsing of a hostile notebook: results.json is always valid."""
    zip_path = _notebook_zip(lab)
    honest = tmp_path / "honest" / "stats_answers.ipynb"
    honest.parent.mkdir()
    honest.write_text(json.dumps(_notebook([(FIXTURE / "solution" / "stats_answers.py").read_text()])))
    results, printed, _ = run_autograder(lab, honest, zip_path)
    assert results["score"] == MAX, runner.format_table(results)  # the notebook variant works
    drop = lab.drop()
    attack = (FIXTURE / "attacks" / "deep_recursion.py").read_text().replace("@DROP@", str(drop))
    problems = []
    for label, text in _deep_notebooks(attack).items():
        path = tmp_path / label.replace(" ", "-") / "stats_answers.ipynb"
        path.parent.mkdir()
        path.write_text(text)
        try:
            results, printed, _ = run_autograder(lab, path, zip_path, check=False)
        except (AssertionError, ValueError) as exc:
            problems.append(f"{label}: {str(exc)[-300:]}")
            record_row(f"deep_recursion ({label})", {"score": None, "output": "no valid results.json"})
            continue
        record_row(f"deep_recursion ({label})", results)
        if results.get("score") != 0 or not isinstance(results.get("output", ""), str):
            problems.append(f"{label}: {results}")
        elif results.get("tests"):
            check_results(lab, results, printed)
    assert not problems, "\n".join(problems)
    check_nothing_left(lab, drop, host)


# --------------------------------------------------------------------------- the host stays as it was


def _modes(paths) -> dict[str, tuple[int, int, int]]:
    out = {}
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        out[str(path)] = (oct(st.st_mode), st.st_uid, st.st_gid)
    return out


GRADE = (
    "import json, sys\nfrom pathlib import Path\nfrom gmmcourse.grading import runner\n"
    "print(json.dumps(runner.grade(Path(sys.argv[1]), Path(sys.argv[2]))[0]))\n"
)


def test_local_grading_changes_no_host_permissions(lab, tmp_path):
    """A local grading as root (from a fresh checkout, as `gmmcourse grade` runs) leaves the modes and
    owners of the host's folders as they were: the interpreter's and the venv's folders, the
    checkout's solutions/, autograder/, .git, tests/ and the lab."""
    base = Path(tempfile.mkdtemp(prefix="gmmcourse-perm-clone-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        kit = _world_readable_clone(base / "kit")
        shutil.copytree(
            REPO / "gmmcourse",
            kit / "gmmcourse",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )  # the grader under test
        (kit / "dist").mkdir(exist_ok=True)
        interpreter = Path(os.path.realpath(sys.executable))
        watched = [
            *interpreter.parents,
            Path(sys.executable).parent,
            Path(sys.prefix),
            *Path(sys.prefix).parents,
            Path(sys.base_prefix),
            *Path(sys.base_prefix).parents,
            *(
                kit / name
                for name in (
                    "",
                    "solutions",
                    "autograder",
                    ".git",
                    "dist",
                    "tests",
                    "gmmcourse",
                    "tests/fixtures/attack_unit/solution",
                    "data",
                )
            ),
            *(kit / "solutions").glob("*"),
            *(kit / "autograder").glob("*"),
            lab.root,
            lab.unit,
            lab.drops,
            Path("/tmp"),
            Path("/var/tmp"),
            Path("/dev/shm"),
        ]
        before = _modes(watched)
        proc = subprocess.run(
            [sys.executable, "-c", GRADE, str(lab.unit), str(FIXTURE / "solution")],
            cwd=kit,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout)["score"] == MAX
        after = _modes(watched)
        changed = {p: (before[p], after.get(p)) for p in before if after.get(p) != before[p]}
        record_row(
            "permission_changes",
            {
                "score": json.loads(proc.stdout)["score"],
                "output": f"host folders changed: {sorted(changed) or 'none'}",
            },
        )
        assert not changed, f"the grading changed the host's folders (before, after): {changed}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- results.json is the grader's


def test_results_file_cannot_be_forged(lab, host, tmp_path):
    """Direct writes, atexit, signal handlers and a daemon: results.json stays the grader's."""
    drop = lab.drop()
    submission = make_submission(tmp_path / "submission", FIXTURE / "attacks" / "write_results.py", drop, lab)
    results, printed, path = run_autograder(lab, submission)
    check_results(lab, results, printed)
    written = path.read_text()
    time.sleep(1.0)  # the daemon would rewrite it every 0.05 s
    assert path.read_text() == written and json.loads(written)["score"] == 0
    assert notes(drop, "wrote") == [], "the worker could write a results file"
    check_nothing_left(lab, drop, host)

    # `gmmcourse grade --results FILE`: the grader writes FILE after grading
    out = lab.root / "results" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text("{}")
    drop = lab.drop()
    submission = make_submission(tmp_path / "again", FIXTURE / "attacks" / "write_results.py", drop, lab)
    results = grade(lab, submission)
    runner.write_results(results, out)
    time.sleep(0.5)
    assert json.loads(out.read_text()) == results and results["score"] == 0
    assert notes(drop, "wrote") == []
    check_nothing_left(lab, drop, host)


# --------------------------------------------------------------------------- isolation, parity, concurrency


def test_a_timeout_costs_that_case_only(lab, tmp_path):
    submission = make_submission(tmp_path / "s", FIXTURE / "variants" / "partial_timeout.py", tmp_path)
    results = grade(lab, submission)
    check_results(lab, results)
    mean, lse = results["tests"]
    assert (mean["score"], lse["score"], results["score"]) == (1.0, 2.0, 3.0), runner.format_table(results)
    assert "column means of a small matrix: exceeded the time limit of 3 s" in mean["output"]
    assert "PASS  [hidden] mean of a long vector" in mean["output"]


@pytest.mark.parametrize("which, expected", [("solution", 4.0), ("partial", 3.0)])
def test_same_score_everywhere_and_every_time(lab, which, expected):
    """Public cases are worth 0: the partial answer fails one of the two hidden logsumexp cases."""
    submission = FIXTURE / which
    runs = [package.grade_with_zip(lab.zip, submission) for _ in range(3)]  # as `gmmcourse grade`
    results, printed, _ = run_autograder(lab, submission)
    runs.append(results)
    for run in runs:
        check_results(lab, run, printed)
        run.pop("execution_time")
    assert runs[0]["score"] == expected, runner.format_table(runs[0])
    assert all(run == runs[0] for run in runs[1:])


def test_concurrent_gradings_do_not_interfere(lab, host, tmp_path):
    """A killer (kill(-1, SIGKILL) in a loop, and its grader's sweeps) next to an honest grading."""
    drop = lab.drop()
    honest = make_submission(tmp_path / "honest", FIXTURE / "variants" / "slow_honest.py", drop)
    killer = make_submission(tmp_path / "killer", FIXTURE / "attacks" / "kill_everything.py", drop)

    def start(submission):
        return subprocess.Popen(
            [sys.executable, "-c", GRADE, str(lab.unit), str(submission)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs = [start(killer)]
    deadline = time.monotonic() + 20
    while not notes(drop, "killer-ran") and procs[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    procs.append(start(honest))
    outs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    bad, good = (json.loads(out) for out, _ in outs)
    if notes(drop, "killer-ran"):  # (a confined worker may not be able to leave notes)
        assert notes(drop, "overlap"), "the honest worker never ran while the killer was at work"
    assert good["score"] == MAX, runner.format_table(good)
    assert bad["score"] == 0
    check_results(lab, good)
    check_results(lab, bad)
    check_nothing_left(lab, drop, host)


def test_each_sandbox_has_a_uid_of_its_own():
    skip_unless_root()
    with Sandbox(FIXTURE / "probes.py", {}, Limits()) as a, Sandbox(FIXTURE / "probes.py", {}, Limits()) as b:
        ids = {a.identity[0], b.identity[0]}
        assert len(ids) == 2 and 0 not in ids and os.getuid() not in ids
        for uid in ids:
            with pytest.raises(KeyError):
                pwd.getpwuid(uid)
        locks = [f"/run/gmmcourse-sandbox/{uid}.lock" for uid in ids]
    for lock in locks:  # released at close
        if os.path.exists(lock):
            with open(lock) as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_wire_refuses_millions_of_values_before_parsing():
    started = time.monotonic()
    with pytest.raises(wire.WireError, match="too many values"):
        wire.decode(b"[" + b"0.5," * 1_200_000 + b"0.5]")
    assert time.monotonic() - started < 2


def test_results_are_valid_even_when_grading_fails(tmp_path, capsys):
    out = tmp_path / "results.json"
    code = gradescope.main(
        [
            "--unit-dir",
            str(tmp_path / "missing"),
            "--submission",
            str(FIXTURE / "solution"),
            "--results",
            str(out),
        ]
    )
    results = json.loads(out.read_text())
    assert code == 2 and results["score"] == 0 and "could not grade" in results["output"]
