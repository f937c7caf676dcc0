"""Sandboxed worker processes for grading untrusted student code.

The trusted grader keeps the hidden tests and the reference values; student code only ever runs in
a :class:`Worker`, a separate process started from a private sandbox folder with resource limits.
When the grader runs as root (as on Gradescope and in CI) every sandbox also gets a user id of its
own: an unused uid/gid from a high range (no passwd entry needed), reserved with a lock file for
the sandbox's lifetime. Its processes cannot read the grader's files (the grader makes them
root-only first), cannot write ``results.json``, and cannot signal the workers of a grading that
runs at the same time. After every test all processes of that uid are killed and its files in the
shared scratch folders removed, so nothing the student started survives into the moment the
results are written.

Written by hand because no maintained library does this job: otter-grader runs student code and
tests in one process (its results can be forged from the student code), and nbgrader's autograder
has the same shape.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gmmcourse.errors import UserError
from gmmcourse.grading.spec import Limits

WORKER_USER = "gmmcourse-worker"  # the name workers see in $USER; their uid has no passwd entry
ID_BASE = 2_000_000  # first uid/gid of the pool that sandboxes take their user id from
ID_COUNT = 4096
_LOCK_DIRS = ("/run/gmmcourse-sandbox", os.path.join(tempfile.gettempdir(), "gmmcourse-sandbox-locks"))
_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue", tempfile.gettempdir())
_WATCH_SECONDS = 0.1  # how often a waiting grader checks the worker group's memory and files
_HERE = Path(__file__).resolve().parent
_INTERPRETER_OK: list[str] = []  # set once a sandbox user could run the interpreter with numpy


class WorkerDied(Exception):
    """The worker ended (crash, exit, limit) before answering."""


class WorkerTimeout(Exception):
    """The worker did not answer within the case's wall-time limit."""


def running_as_root() -> bool:
    return os.geteuid() == 0


def make_private(*paths: Path) -> None:
    """As root, make folders that hold hidden material unreadable for the workers (mode 0700)."""
    if not running_as_root():
        return
    for path in paths:
        if path.is_dir():
            os.chmod(path, 0o700)


# --------------------------------------------------------------------------- processes and files of a uid


def _processes(fields=("State", "Uid")):
    """(pid, {field: value}) of every process, from /proc/PID/status (only the named fields)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as fh:
                status = fh.read()
        except OSError:
            continue
        found = {}
        for name in fields:
            at = status.find(f"\n{name}:")
            if at >= 0:
                end = status.find("\n", at + 1)
                found[name] = status[at + len(name) + 2: end if end >= 0 else None].strip()
        yield int(entry.name), found


def _ids(fields: dict, key: str) -> set[int]:
    return {int(v) for v in fields.get(key, "").split()}


def kill_user_processes(uid: int) -> None:
    """SIGKILL every process owned by ``uid``, repeating until none is left (fork races)."""
    for _ in range(200):
        found = False
        for pid, fields in _processes():
            if fields.get("State", "").strip().startswith(("Z", "X")):
                continue  # a zombie runs nothing; its parent reaps it
            if uid in _ids(fields, "Uid"):
                found = True
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.01)


def _scratch_entries(uid: int):
    """Top-level entries of the shared scratch folders that belong to ``uid``."""
    for folder in dict.fromkeys(_SCRATCH):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    yield entry
            except OSError:
                continue


def _bytes_under(path: str) -> int:
    """Disk/memory blocks used by ``path`` and, for a folder, everything below it (no symlinks)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    total = st.st_blocks * 512
    if stat.S_ISDIR(st.st_mode):
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except OSError:
                    pass
    return total


def remove_user_files(uid: int) -> None:
    """Delete what ``uid`` left in the shared scratch folders (call after its processes are gone)."""
    for entry in _scratch_entries(uid):
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


# --------------------------------------------------------------------------- one uid per sandbox


def _mapped(first: int, count: int) -> bool:
    """Whether ids first..first+count-1 exist in this (possibly namespaced) system, as uid and gid."""
    for name in ("uid_map", "gid_map"):
        try:
            with open(f"/proc/self/{name}") as fh:
                ranges = [tuple(map(int, line.split())) for line in fh if line.strip()]
        except OSError:
            return True
        if not any(inside <= first and first + count <= inside + length for inside, _, length in ranges):
            return False
    return True


def _pool() -> range:
    if _mapped(ID_BASE, ID_COUNT):
        return range(ID_BASE, ID_BASE + ID_COUNT)
    top = 65534  # a user namespace with few ids (rootless containers): just below "nobody"
    while top > 2000 and not _mapped(top - 1024, 1024):
        top //= 2
    return range(max(1000, top - 1024), top)


def _lock_dir() -> str:
    for folder in _LOCK_DIRS:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError:
            continue
        st = os.lstat(folder)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return folder
    raise UserError(f"no private folder for the sandbox locks (tried {', '.join(_LOCK_DIRS)})")


def _has_account(n: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(n)
            return True
        except KeyError:
            pass
    return False


def _reserve_id() -> tuple[int, int]:
    """An unused uid (also used as gid) and the fd holding its lock; leftovers of a crash are removed."""
    folder = _lock_dir()
    busy: set[int] = set()
    for _, fields in _processes(("Uid", "Gid")):
        busy |= _ids(fields, "Uid") | _ids(fields, "Gid")
    ids = list(_pool())
    start = secrets.randbelow(len(ids))
    for n in ids[start:] + ids[:start]:
        if n in busy or _has_account(n):
            continue
        fd = os.open(os.path.join(folder, f"{n}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        kill_user_processes(n)  # from a grader that was killed before it could clean up
        remove_user_files(n)
        return n, fd
    raise UserError(f"all {len(ids)} sandbox user ids are busy")


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
    """A private folder holding the worker script, the probes and a copy of the submission.

    Layout: ``_grader/`` (worker.py, wire.py, probes.py; read-only for the worker), ``submission/``
    (the student's files, the worker's working directory), ``home/`` and one ``output-N.txt`` per
    worker (its stdout and stderr, created by the grader in a folder the worker cannot write).
    """

    def __init__(self, probes: Path, submission_files: dict[str, bytes], limits: Limits):
        self.limits = limits
        self.files = dict(submission_files)
        self.identity: tuple[int, int] | None = None
        self._lock_fd: int | None = None
        self._workers = 0
        self.root = Path(tempfile.mkdtemp(prefix="gmmcourse-sandbox-"))
        try:
            if running_as_root():
                uid, self._lock_fd = _reserve_id()
                self.identity = (uid, uid)
            grader = self.root / "_grader"
            grader.mkdir()
            for name in ("worker.py", "wire.py"):
                shutil.copyfile(_HERE / name, grader / name)
            shutil.copyfile(probes, grader / "probes.py")
            if self.identity:
                gid = self.identity[1]
                for path in (self.root, grader):
                    os.chown(path, 0, gid)
                    os.chmod(path, 0o750)
                for name in os.listdir(grader):
                    os.chown(grader / name, 0, gid)
                    os.chmod(grader / name, 0o640)
            self._student_folders()
            self._check_interpreter()
        except BaseException:
            self.close()
            raise

    def _student_folders(self) -> None:
        """(Re)create ``submission/`` and ``home/``, the only folders the worker may write."""
        sub, home = self.root / "submission", self.root / "home"
        for folder in (sub, home):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
        for name, data in self.files.items():
            (sub / name).write_bytes(data)
        if self.identity:
            uid, gid = self.identity
            for folder in (sub, home):
                for dirpath, dirnames, filenames in os.walk(folder):
                    for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                        os.chown(name, uid, gid, follow_symlinks=False)

    def _check_interpreter(self) -> None:
        """Once per grader process: an unprivileged uid can run this Python with numpy."""
        if not self.identity or _INTERPRETER_OK:
            return
        _make_reachable(Path(os.path.realpath(sys.executable)), Path(sys.prefix), Path(sys.base_prefix))
        proc = subprocess.run([sys.executable, "-I", "-c", "import numpy"], cwd=self.root / "home",
                              preexec_fn=self._drop_privileges, capture_output=True, text=True,
                              env=self._env(), timeout=120)
        self.sweep()
        if proc.returncode != 0:  # pragma: no cover - depends on the machine's permissions
            raise UserError(
                f"a sandbox user (uid {self.identity[0]}) cannot run {sys.executable} with numpy "
                f"(make the folders on its path readable and searchable for others, e.g. "
                f"chmod o+rx): {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")
        _INTERPRETER_OK.append(sys.executable)

    def _env(self) -> dict[str, str]:
        home = str(self.root / "home")
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": home,
            "USER": WORKER_USER,
            "LOGNAME": WORKER_USER,
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": home,
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

    def usage(self) -> int:
        """Bytes held by the sandbox user: resident memory of its processes plus its files."""
        if not self.identity:
            return 0
        uid = self.identity[0]
        total = 0
        for _, fields in _processes(("Uid", "RssAnon", "RssShmem")):
            if uid in _ids(fields, "Uid"):
                for key in ("RssAnon", "RssShmem"):
                    value = fields.get(key, "0 kB").split()
                    total += int(value[0]) * 1024 if value and value[0].isdigit() else 0
        for entry in _scratch_entries(uid):
            total += _bytes_under(entry.path)
        for folder in ("submission", "home"):
            total += _bytes_under(str(self.root / folder))
        return total

    def check_usage(self) -> None:
        """Raise WorkerDied when the sandbox user holds more than the memory limit."""
        if self.identity and self.usage() > self.limits.memory_bytes:
            raise WorkerDied(f"the worker's processes and files together used more than the memory "
                             f"limit of {self.limits.memory_bytes / 2**20:g} MiB")

    def sweep(self) -> None:
        """Kill everything the student may have left running and delete its scratch files."""
        if self.identity:
            kill_user_processes(self.identity[0])
            remove_user_files(self.identity[0])

    def reset(self) -> None:
        """Between tests: nothing of the previous test's workers survives, not even their files."""
        self.sweep()
        if self.root.is_dir():
            self._student_folders()

    def close(self) -> None:
        try:
            self.sweep()
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Worker:
    """One worker process; ask it to run probes with :meth:`call`."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        sandbox._workers += 1
        # stdout/stderr go to a new file in the sandbox root, which the worker cannot write to or
        # replace (a file in a folder it owns could be swapped for a symlink to a grader file)
        self._output = sandbox.root / f"output-{sandbox._workers}.txt"
        out = os.open(self._output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_APPEND,
                      0o600)
        read_fd, write_fd = os.pipe()
        self._answers = read_fd
        self._buffer = bytearray()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(sandbox.root / "_grader" / "worker.py"), "--fd", str(write_fd)],
                cwd=sandbox.root / "submission", env=sandbox._env(), stdin=subprocess.PIPE,
                stdout=out, stderr=out, pass_fds=(write_fd,), start_new_session=True,
                preexec_fn=sandbox._limit_and_drop)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
            os.close(out)

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
        poller = select.poll()
        poller.register(self._answers, select.POLLIN)
        next_check = time.monotonic() + _WATCH_SECONDS
        while b"\n" not in self._buffer:
            now = time.monotonic()
            if now >= deadline:
                raise WorkerTimeout()
            if now >= next_check:
                self.sandbox.check_usage()
                next_check = now + _WATCH_SECONDS
            if not poller.poll(max(0.0, min(deadline, next_check) - now) * 1000):
                continue
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
        try:
            os.unlink(self._output)
        except OSError:
            pass
