"""Sandboxed worker processes for grading untrusted student code.

The trusted grader keeps the hidden tests and the reference values; student code only ever runs in
a :class:`Worker`, a separate process started from a private sandbox folder with resource limits.
When the grader runs as root (as on Gradescope and in CI) the worker also runs as the unprivileged
user ``gmmcourse-worker``, which cannot read the grader's files (the grader makes them root-only
first), cannot write ``results.json``, and whose processes are all killed after every test, so no
background process survives into the moment the results are written.

Written by hand because no maintained library does this job: otter-grader runs student code and
tests in one process (its results can be forged from the student code), and nbgrader's autograder
has the same shape.
"""

from __future__ import annotations

import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gmmcourse.errors import UserError

WORKER_USER = "gmmcourse-worker"
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Limits:
    """Resource limits for one worker process (each test gets fresh workers)."""

    cpu_seconds: int = 300
    memory_bytes: int = 6 * 1024**3
    processes: int = 64
    file_bytes: int = 8 * 1024**2
    answer_bytes: int = 256 * 1024**2


class WorkerDied(Exception):
    """The worker ended (crash, exit, limit) before answering."""


class WorkerTimeout(Exception):
    """The worker did not answer within the case's wall-time limit."""


def running_as_root() -> bool:
    return os.geteuid() == 0


def worker_identity() -> tuple[int, int] | None:
    """(uid, gid) of the unprivileged worker user, creating it if needed; None unless root."""
    if not running_as_root():
        return None
    try:
        entry = pwd.getpwnam(WORKER_USER)
    except KeyError:
        entry = None
    if entry is None:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        proc = subprocess.run(
            [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--user-group", WORKER_USER],
            capture_output=True, text=True)
        if proc.returncode not in (0, 9):  # 9: created meanwhile by a concurrent grader
            raise UserError(f"cannot create the sandbox user {WORKER_USER}: {proc.stderr.strip()}")
        entry = pwd.getpwnam(WORKER_USER)
    return entry.pw_uid, entry.pw_gid


def make_private(*paths: Path) -> None:
    """As root, make folders that hold hidden material unreadable for the worker user (mode 0700)."""
    if not running_as_root():
        return
    for path in paths:
        if path.is_dir():
            os.chmod(path, 0o700)


def kill_user_processes(uid: int) -> None:
    """SIGKILL every process owned by ``uid``, repeating until none is left (fork races)."""
    for _ in range(200):
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as fh:
                    status = fh.read()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("State", "").strip().startswith(("Z", "X")):
                continue  # a zombie runs nothing; its parent reaps it
            owners = {int(v) for v in fields.get("Uid", "").split()}
            if uid in owners:
                found = True
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.01)


def _make_reachable(*paths: Path) -> None:
    """As root, let other users *search* (not list) the folders above the Python interpreter.

    Python installed under /root (pyenv) or a virtual environment inside a private checkout would
    otherwise be out of the worker user's reach. Only the search bit is added, never read/write.
    """
    for path in paths:
        for folder in [path, *path.parents] if path.is_dir() else list(path.parents):
            mode = folder.stat().st_mode
            if not mode & 0o001:
                os.chmod(folder, (mode & 0o7777) | 0o001)


class Sandbox:
    """A private folder holding the worker script, the probes and a copy of the submission."""

    def __init__(self, probes: Path, submission_files: dict[str, bytes], limits: Limits):
        self.limits = limits
        self.identity = worker_identity()
        self.root = Path(tempfile.mkdtemp(prefix="gmmcourse-sandbox-"))
        grader = self.root / "_grader"
        sub = self.root / "submission"
        grader.mkdir()
        sub.mkdir()
        for name in ("worker.py", "wire.py"):
            shutil.copyfile(_HERE / name, grader / name)
        shutil.copyfile(probes, grader / "probes.py")
        for name, data in submission_files.items():
            (sub / name).write_bytes(data)
        (self.root / "home").mkdir()
        if self.identity:
            uid, gid = self.identity
            for dirpath, dirnames, filenames in os.walk(self.root):
                for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                    os.chown(name, uid, gid)
            os.chown(self.root, 0, gid)
            os.chmod(self.root, 0o750)
            os.chmod(grader, 0o550)
            for name in os.listdir(grader):
                os.chmod(grader / name, 0o440)
        self._check_interpreter()

    def _check_interpreter(self) -> None:
        if not self.identity:
            return
        _make_reachable(Path(os.path.realpath(sys.executable)), Path(sys.prefix), Path(sys.base_prefix))
        proc = subprocess.run([sys.executable, "-I", "-c", "import numpy"], cwd=self.root,
                              preexec_fn=self._drop_privileges, capture_output=True, text=True,
                              env=self._env(), timeout=120)
        if proc.returncode != 0:  # pragma: no cover - depends on the machine's permissions
            raise UserError(
                f"the sandbox user {WORKER_USER} cannot run {sys.executable} with numpy "
                f"(make the folders on its path readable and searchable for others, e.g. "
                f"chmod o+rx): {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")

    def _env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(self.root / "home"),
        }

    def _drop_privileges(self) -> None:
        if self.identity:
            uid, gid = self.identity
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

    def _limit_and_drop(self) -> None:
        import resource

        lim = self.limits
        for res, value in ((resource.RLIMIT_CPU, lim.cpu_seconds),
                           (resource.RLIMIT_AS, lim.memory_bytes),
                           (resource.RLIMIT_FSIZE, lim.file_bytes),
                           (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))
        if self.identity:
            # RLIMIT_NPROC counts the user's processes; it binds only a non-root user.
            resource.setrlimit(resource.RLIMIT_NPROC, (lim.processes, lim.processes))
        self._drop_privileges()

    def start(self) -> Worker:
        return Worker(self)

    def sweep(self) -> None:
        """Kill everything the student may have left running."""
        if self.identity:
            kill_user_processes(self.identity[0])

    def close(self) -> None:
        self.sweep()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Worker:
    """One worker process; ask it to run probes with :meth:`call`."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        read_fd, write_fd = os.pipe()
        self._answers = read_fd
        self._buffer = bytearray()
        out = open(sandbox.root / "home" / "output.txt", "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(sandbox.root / "_grader" / "worker.py"), "--fd", str(write_fd)],
                cwd=sandbox.root / "submission", env=sandbox._env(), stdin=subprocess.PIPE,
                stdout=out, stderr=out, pass_fds=(write_fd,), start_new_session=True,
                preexec_fn=sandbox._limit_and_drop)
        finally:
            os.close(write_fd)
            out.close()

    def call(self, request_line: str, timeout: float) -> bytes:
        """Send one request line; return the raw answer line (untrusted bytes)."""
        deadline = time.monotonic() + timeout
        payload = request_line.encode() + b"\n"

        def feed():
            try:
                self.proc.stdin.write(payload)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        cap = self.sandbox.limits.answer_bytes
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout()
            ready, _, _ = select.select([self._answers], [], [], remaining)
            if not ready:
                raise WorkerTimeout()
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise WorkerDied(self._death_reason())
            self._buffer += chunk
            if len(self._buffer) > cap:
                raise WorkerDied("the answer exceeded the size limit")
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return line

    def _death_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the worker closed its answer channel"
        if code < 0:
            sig = signal.Signals(-code).name
            why = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (output/file size limit)",
                   "SIGKILL": " (killed, e.g. memory exhausted)", "SIGSEGV": " (crashed)"}.get(sig, "")
            return f"the worker was killed by {sig}{why}"
        return f"the worker exited with status {code} before answering"

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.sandbox.sweep()
        for stream in (self.proc.stdin,):
            try:
                stream.close()
            except OSError:
                pass
        try:
            os.close(self._answers)
        except OSError:
            pass
