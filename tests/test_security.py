"""Attacks on the sandboxed grader (tests/fixtures/attack_unit).

Every submission in ``attacks/`` computes wrong answers and tries to earn points by cheating. None
may earn a point; the grader must survive, write a valid results.json that never shows a hidden
input or a reference value, leave its hidden folder untouched and leave no process or file of the
sandbox user behind; and the honest solution still earns full marks afterwards. Also: the same
submission gets the same score from runner.grade, the zip (as `gmmcourse grade` does), the zip's
run_autograder script and on repeated runs; and two gradings at the same time do not interfere.

Student code runs as an unprivileged user only when the grader runs as root (Gradescope, CI), so
these tests run only as root.
"""

import fcntl
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gmmcourse import release
from gmmcourse.grading import gradescope, runner, wire
from gmmcourse.grading.sandbox import Sandbox, make_private
from gmmcourse.grading.spec import Limits

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "attack_unit"
REPO = Path(__file__).resolve().parent.parent
ATTACKS = sorted(p.stem for p in (FIXTURE / "attacks").glob("*.py"))
ALONE = [a for a in ATTACKS if a != "kill_everything"]  # that one is graded next to an honest grading
# private like `gmmcourse grade` keeps solutions/: right answers that an attack could import
SECRET = (FIXTURE / "solution", FIXTURE / "partial", FIXTURE / "variants")
MAX = 4.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox user exists only as root")

# what the feedback must say (any of the fragments, somewhere in the results) for some attacks
EXPECT = {
    "exit_midway": ["raised SystemExit", "exited with status 0 before answering"],
    "fork_bomb": [],
    "huge_output": ["raised OSError", "SIGXFSZ"],
    "infinite_loop": ["exceeded the time limit of 3 s"],
    "memory_bomb": ["MemoryError", "used more than the memory limit of 512 MiB"],
    "scratch_fill": ["used more than the memory limit of 512 MiB"],
    "leak_inputs": ["raised an exception"],
}


# --------------------------------------------------------------------------- the lab


class Lab:
    """A copy of the fixture unit with recorded references, in a folder others may list."""

    def __init__(self, root: Path):
        self.root = root
        self.unit = root / "unit"
        self.zip = root / "private" / "unit0_attack-autograder.zip"
        self.tests = []
        self.needles: set[str] = set()
        self.snapshot: dict = {}

    def drop(self) -> Path:
        """A folder the attack may write notes to (where it found things, its uid, its children)."""
        folder = Path(tempfile.mkdtemp(prefix="drop-", dir=self.root))
        os.chmod(folder, 0o1777)
        return folder


def _snapshot(folder: Path) -> dict:
    out = {".": (None, folder.lstat().st_mode, folder.lstat().st_uid)}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        out[path.relative_to(folder).as_posix()] = (path.read_bytes() if path.is_file() else None,
                                                    st.st_mode, st.st_uid)
    return out


@pytest.fixture(scope="session")
def lab():
    make_private(*SECRET)
    root = Path(tempfile.mkdtemp(prefix="gmmcourse-attack-"))
    os.chmod(root, 0o755)  # guessable and listable: only the grader's own protection keeps unit/ secret
    lab = Lab(root)
    lab.unit.mkdir()
    for name in ("tests.py", "probes.py"):
        shutil.copyfile(FIXTURE / name, lab.unit / name)
    runner.record_references(lab.unit, FIXTURE / "solution")
    (root / "private").mkdir(mode=0o700)
    release.build_autograder_zip(release.UnitSources("unit0_attack", FIXTURE, lab.unit), lab.zip)
    lab.tests = runner.load_unit(lab.unit).tests
    values = [v for arr in runner._load_refs(lab.unit).values() for v in np.ravel(arr)]
    values += [v for t in lab.tests for c in t.cases if not c.public for v in np.ravel(c.args["x"])]
    lab.needles = {repr(float(v)) for v in values} | {f"{float(v):.8g}" for v in values}
    lab.snapshot = _snapshot(lab.unit)
    yield lab
    try:  # after every attack this session ran: the honest solution still earns full marks
        assert _snapshot(lab.unit) == lab.snapshot, "the hidden autograder folder was changed"
        honest = grade(lab, FIXTURE / "solution")
        assert honest["score"] == MAX, runner.format_table(honest)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_submission(folder: Path, source: Path, drop: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "stats_answers.py").write_text(source.read_text().replace("@DROP@", str(drop)))
    return folder


def grade(lab: Lab, submission: Path) -> dict:
    """As `gmmcourse grade` does, but from the lab's unit folder."""
    results, _ = runner.grade(lab.unit, submission, secret_paths=SECRET + release._secret_paths())
    return results


def run_autograder(lab: Lab, submission: Path) -> tuple[dict, str, Path]:
    """The zip's run_autograder, run locally as on Gradescope; returns (results, printed, results path)."""
    base = Path(tempfile.mkdtemp(prefix="gradescope-", dir=lab.root))
    os.chmod(base, 0o755)
    ag = base / "autograder"  # Gradescope's layout: zip in source/, run_autograder copied to the root
    with zipfile.ZipFile(lab.zip) as zf:
        zf.extractall(ag / "source")
    shutil.copy2(ag / "source" / "run_autograder", ag / "run_autograder")
    shutil.copytree(submission, ag / "submission")
    os.chmod(ag / "submission", 0o700)  # (on Gradescope, the only submission around)
    env = dict(os.environ, GMMCOURSE_AUTOGRADER_ROOT=str(ag), GMMCOURSE_PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ag / "run_autograder")], cwd=ag, env=env, capture_output=True,
                          text=True, timeout=300)
    path = base / "autograder" / "results" / "results.json"
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(path.read_text()), proc.stdout + proc.stderr, path


def notes(drop: Path, kind: str) -> list[str]:
    lines = []
    for path in sorted(drop.glob(f"{kind}-*")):
        lines.extend(line for line in path.read_text().splitlines() if line)
    return lines


def live_pids(uid: int) -> list[int]:
    """Processes (not zombies) with ``uid`` as any of their user ids."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(f"/proc/{entry.name}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if uid in {int(v) for v in fields["Uid"].split()} and not fields["State"].strip().startswith("Z"):
                found.append(int(entry.name))
    return found


def files_of(uid: int) -> list[str]:
    found = []
    for folder in ("/tmp", "/var/tmp", "/dev/shm", tempfile.gettempdir()):
        for entry in os.scandir(folder):
            if entry.stat(follow_symlinks=False).st_uid == uid:
                found.append(entry.path)
    return found


# --------------------------------------------------------------------------- checks shared by all attacks


def check_results(lab: Lab, results: dict, printed: str = "") -> None:
    """Valid JSON, one well-formed line per case, no hidden input or reference value anywhere."""
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
            assert line.startswith((f"PASS  {'' if case.public else '[hidden] '}{case.name}",
                                    f"FAIL  {'' if case.public else '[hidden] '}{case.name}")), line
    shown = text + runner.format_table(results) + printed
    leaked = sorted(needle for needle in lab.needles if needle in shown)
    assert not leaked, f"hidden inputs or reference values in the feedback: {leaked[:3]}"


def check_nothing_left(lab: Lab, drop: Path) -> None:
    """The hidden folder is unchanged; no process or scratch file of the sandbox users is left."""
    assert _snapshot(lab.unit) == lab.snapshot, "the hidden autograder folder was changed"
    uids = {int(u) for u in notes(drop, "uid")}
    for uid in uids:
        assert uid != 0 and uid != os.getuid()
        assert not live_pids(uid), f"processes of sandbox uid {uid} survived the grading"
        assert not files_of(uid), f"files of sandbox uid {uid} survived the grading"
    for kind in ("children", "daemon"):
        for pid in {int(p) for line in notes(drop, kind) for p in line.split()}:
            assert not any(pid in live_pids(uid) for uid in uids), f"{kind} {pid} is still running"


def _all_output(results: dict) -> str:
    return "\n".join(t["output"] for t in results["tests"])


# --------------------------------------------------------------------------- the attacks


def _check_read_secrets(lab: Lab, drop: Path, results: dict) -> None:
    assert notes(drop, "found-keys") == [] and notes(drop, "solutions") == []
    protected = [str(lab.unit), str(lab.root / "private"), *map(str, SECRET)]
    for path in notes(drop, "readable"):
        assert not path.startswith(tuple(protected)), f"the worker could read {path}"
        assert not path.endswith("/environ") or f"/proc/{os.getpid()}/" not in path
        assert "/fd/" not in path, f"the worker could read the grader's descriptor {path}"


def _check_kill_grader(lab: Lab, drop: Path, results: dict) -> None:
    assert notes(drop, "uid"), "the attack did not run"
    assert notes(drop, "succeeded") == [], "a signal reached the grader or init, or root was regained"


def _check_fork_bomb(lab: Lab, drop: Path, results: dict) -> None:
    per_worker = [len(path.read_text().split()) for path in drop.glob("children-*")]
    assert per_worker and all(n < 16 for n in per_worker), "the process limit did not stop the fork bomb"
    assert sum(per_worker) > 0


def _check_memory_bomb(lab: Lab, drop: Path, results: dict) -> None:
    touched = sum(int(v) for v in notes(drop, "touched"))
    assert 0 < touched < 8 * 200, f"the worker group touched {touched} MB: no group memory limit"


def _check_scratch_fill(lab: Lab, drop: Path, results: dict) -> None:
    written = max((int(v) for v in notes(drop, "written-mb")), default=0)
    assert written < 1200, "scratch files were not counted against the memory limit"


def _check_overwrite(lab: Lab, drop: Path, results: dict) -> None:
    for line in notes(drop, "overwrote") + notes(drop, "wrote-through-grader"):
        assert str(lab.unit) not in line and "_grader" not in line, line


EXTRA = {"read_secrets": _check_read_secrets, "kill_grader": _check_kill_grader,
         "fork_bomb": _check_fork_bomb, "memory_bomb": _check_memory_bomb,
         "scratch_fill": _check_scratch_fill, "overwrite_files": _check_overwrite}


@pytest.mark.parametrize("attack", ALONE)
def test_attack_earns_nothing(lab, tmp_path, attack):
    drop = lab.drop()
    submission = make_submission(tmp_path / "submission", FIXTURE / "attacks" / f"{attack}.py", drop)
    results = grade(lab, submission)
    table = runner.format_table(results)
    check_results(lab, results)
    assert results["score"] == 0, table
    if EXPECT.get(attack):
        assert any(fragment in _all_output(results) for fragment in EXPECT[attack]), table
    check_nothing_left(lab, drop)
    if attack in EXTRA:
        EXTRA[attack](lab, drop, results)
    if attack == "overwrite_files":  # whatever it planted must not pay off in a later grading either
        assert grade(lab, submission)["score"] == 0
        check_nothing_left(lab, drop)
        assert grade(lab, FIXTURE / "solution")["score"] == MAX, "the attack spoiled the next grading"


def test_results_file_cannot_be_forged(lab, tmp_path):
    """Direct writes, atexit, signal handlers and a daemon: results.json stays the grader's."""
    drop = lab.drop()
    submission = make_submission(tmp_path / "submission", FIXTURE / "attacks" / "write_results.py", drop)
    results, printed, path = run_autograder(lab, submission)
    check_results(lab, results, printed)
    written = path.read_text()
    time.sleep(1.0)  # the daemon would rewrite it every 0.05 s
    assert path.read_text() == written and json.loads(written)["score"] == 0
    assert notes(drop, "daemon"), "the daemon did not start"
    assert notes(drop, "wrote") == [], "the worker could write a results file"
    assert str(path) in notes(drop, "targets"), "the attack did not even find the results path"
    check_nothing_left(lab, drop)

    # `gmmcourse grade --results FILE`: the grader writes FILE after grading
    out = lab.root / "results" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text("{}")
    drop = lab.drop()
    submission = make_submission(tmp_path / "again", FIXTURE / "attacks" / "write_results.py", drop)
    results = grade(lab, submission)
    runner.write_results(results, out)
    time.sleep(0.5)
    assert json.loads(out.read_text()) == results and results["score"] == 0
    assert notes(drop, "wrote") == []
    check_nothing_left(lab, drop)


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
    submission = FIXTURE / which
    runs = [release.grade_with_zip(lab.zip, submission) for _ in range(3)]  # as `gmmcourse grade`
    results, printed, _ = run_autograder(lab, submission)
    runs.append(results)
    for run in runs:
        check_results(lab, run, printed)
        run.pop("execution_time")
    assert runs[0]["score"] == expected
    assert all(run == runs[0] for run in runs[1:])


GRADE = ("import json, sys\nfrom pathlib import Path\nfrom gmmcourse.grading import runner\n"
         "print(json.dumps(runner.grade(Path(sys.argv[1]), Path(sys.argv[2]))[0]))\n")


def test_concurrent_gradings_do_not_interfere(lab, tmp_path):
    """A killer (kill(-1, SIGKILL) in a loop, and its grader's sweeps) next to an honest grading."""
    drop = lab.drop()
    honest = make_submission(tmp_path / "honest", FIXTURE / "variants" / "slow_honest.py", drop)
    killer = make_submission(tmp_path / "killer", FIXTURE / "attacks" / "kill_everything.py", drop)

    def start(submission):
        return subprocess.Popen([sys.executable, "-c", GRADE, str(lab.unit), str(submission)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [start(killer)]
    deadline = time.monotonic() + 120
    while not notes(drop, "killer-ran") and procs[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    procs.append(start(honest))
    outs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    bad, good = (json.loads(out) for out, _ in outs)
    assert notes(drop, "overlap"), "the honest worker never ran while the killer was at work"
    assert good["score"] == MAX, runner.format_table(good)
    assert bad["score"] == 0
    check_results(lab, good)
    check_results(lab, bad)
    check_nothing_left(lab, drop)


def test_each_sandbox_has_a_uid_of_its_own():
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
    code = gradescope.main(["--unit-dir", str(tmp_path / "missing"),
                            "--submission", str(FIXTURE / "solution"), "--results", str(out)])
    results = json.loads(out.read_text())
    assert code == 2 and results["score"] == 0 and "could not grade" in results["output"]
