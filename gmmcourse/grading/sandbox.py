"""Sandboxed worker processes for grading untrusted student code.

The trusted grader keeps the hidden tests and the reference values; student code only ever runs in
a :class:`Worker`, a separate process started from a private sandbox folder. Each worker is
confined by every layer the machine allows (see :mod:`gmmcourse.grading.layers`): as root a
throw-away uid of its own (an unused uid/gid from a high range, no passwd entry, reserved with a
lock file for the sandbox's lifetime), resource limits, Landlock (it reads only the Python
installation and the system libraries and writes only its own folders; no TCP, no signals beyond
its own processes), PID/mount/network/IPC namespaces (nothing it starts outlives it, no network,
private System V IPC) and a cgroup that is killed as a whole. The last trusted step before the
worker runs is ``confine.py``, which applies them and execs the worker.

After every test all processes of the sandbox are killed (cgroup, process tree and uid sweeps)
and its files in the shared scratch folders and its System V segments removed, so nothing the
student started survives into the moment the results are written. Nothing on the host is changed:
folders the worker uid cannot enter are made reachable inside its own mount namespace only.

Written by hand because no maintained library does this job: otter-grader runs student code and
tests in one process (its results can be forged from the student code), and nbgrader's autograder
has the same shape.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import grp
import json
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
from gmmcourse.grading import layers as layers_mod
from gmmcourse.grading.spec import Limits

WORKER_USER = "gmmcourse-worker"  # the name workers see in $USER; their uid has no passwd entry
ID_BASE = 2_000_000  # first uid/gid of the pool that sandboxes take their user id from
ID_COUNT = 4096
_LOCK_DIRS = ("/run/gmmcourse-sandbox", os.path.join(tempfile.gettempdir(), "gmmcourse-sandbox-locks"))
_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue", tempfile.gettempdir())
_WATCH_SECONDS = 0.1  # how often a waiting grader checks the worker group's memory and files
_HERE = Path(__file__).resolve().parent
_GRADER_FILES = ("worker.py", "wire.py", "confine.py")
_INTERPRETER_OK: list[str] = []  # set once a confined worker could run the interpreter with numpy
CONFINE_FAILED = 70  # exit status of confine.py when a layer could not be applied


class WorkerDied(Exception):
    """The worker ended (crash, exit, limit) before answering."""


class WorkerTimeout(Exception):
    """The worker did not answer within the case's wall-time limit."""


class MemoryExceeded(WorkerDied):
    """The sandbox held more than its memory limit."""


def running_as_root() -> bool:
    """Tell whether the grader runs as root (then workers run as an unprivileged uid)."""
    return os.geteuid() == 0


_HIDDEN_LOCK = threading.Lock()
_HIDDEN_STATE = "hidden-folders.json"  # in the root-only lock folder: folder -> [users, own mode]


def _update_hidden(folders: list[str], delta: int) -> None:
    """Count the gradings (in any process) that need ``folders`` hidden.

    A folder is 0700 while any does, and gets its own mode again when the last one ends. The count
    lives in a root-only file under an exclusive lock, so gradings in separate processes
    (grade-all, two ``gmmcourse grade``) agree.
    """
    path = os.path.join(_lock_dir(), _HIDDEN_STATE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with _HIDDEN_LOCK, os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            state = json.loads(fh.read() or "{}")
        except ValueError:
            state = {}
        for folder in folders:
            users, mode = state.get(folder, [0, stat.S_IMODE(os.stat(folder).st_mode)])
            users = max(0, users + delta)
            if users:
                os.chmod(folder, 0o700)
                state[folder] = [users, mode]
            else:
                os.chmod(folder, mode)
                state.pop(folder, None)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(state))


@contextlib.contextmanager
def hidden_from_workers(paths):
    """Keep ``paths`` out of the workers' reach for the duration of a grading, changing nothing.

    With Landlock the workers can read only the Python installation and their sandbox, so nothing
    is done. Without it, as root, the folders are made root-only (mode 0700) while any grading uses
    them, and get their own mode back when the last one ends.
    """
    layers = layers_mod.detect()
    folders = (
        []
        if layers.landlock_abi or not layers.root
        else sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)})
    )
    if folders:
        _update_hidden(folders, +1)
    try:
        yield
    finally:
        if folders:
            _update_hidden(folders, -1)


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
                found[name] = status[at + len(name) + 2 : end if end >= 0 else None].strip()
        yield int(entry.name), found


def _ids(fields: dict, key: str) -> set[int]:
    return {int(v) for v in fields.get(key, "").split()}


def kill_user_processes(uid: int) -> None:
    """SIGKILL every process owned by ``uid``, repeating until none is left (fork races).

    A zombie whose threads have all ended runs nothing (its parent reaps it); a zombie thread-group
    leader with a live thread (the leader called SYS_exit) is killed like any other process.
    """
    for _ in range(200):
        found = False
        for pid, fields in _processes(("State", "Uid", "Threads")):
            threads = fields.get("Threads", "0")
            if fields.get("State", "").strip().startswith(("Z", "X")) and threads in ("0", "1"):
                continue
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


def sysv_segments(uid: int) -> list[tuple[int, int]]:
    """(shmid, bytes) of the System V shared-memory segments that ``uid`` owns or created."""
    found = []
    try:
        with open("/proc/sysvipc/shm") as fh:
            names = fh.readline().split()
            for line in fh:
                row = dict(zip(names, line.split(), strict=False))
                if uid in (int(row.get("uid", -1)), int(row.get("cuid", -1))):
                    found.append((int(row["shmid"]), int(row["size"])))
    except (OSError, ValueError, KeyError):
        pass
    return found


def remove_sysv_segments(uid: int) -> None:
    """Remove the System V shared-memory segments that ``uid`` created."""
    libc = ctypes.CDLL(None, use_errno=True)
    for shmid, _ in sysv_segments(uid):
        libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(0), None)  # IPC_RMID


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
    """Reserve an unused uid (also the gid); return it and the fd holding its lock.

    Leftovers of a crashed grading under a free uid are removed on the way.
    """
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
        remove_sysv_segments(n)
        return n, fd
    raise UserError(f"all {len(ids)} sandbox user ids are busy")


# --------------------------------------------------------------------------- the sandbox


class Sandbox:
    """A private folder holding the worker's files and a copy of the submission.

    Layout: ``_grader/`` (worker.py, wire.py, confine.py, probes.py; read-only for the worker),
    ``submission/`` (the student's files, the worker's working directory), ``home/`` and one
    ``output-N.txt`` per worker (its stdout and stderr, created by the grader in a folder the worker
    cannot write).
    """

    def __init__(self, probes: Path, submission_files: dict[str, bytes], limits: Limits):
        self.limits = limits
        self.files = dict(submission_files)
        self.layers = layers_mod.detect()
        self.identity: tuple[int, int] | None = None
        self.cgroup: Path | None = None
        self._lock_fd: int | None = None
        self._workers = 0
        self.root = Path(tempfile.mkdtemp(prefix="gmmcourse-sandbox-"))
        try:
            if self.layers.root:
                uid, self._lock_fd = _reserve_id()
                self.identity = (uid, uid)
            grader = self.root / "_grader"
            grader.mkdir()
            for name in _GRADER_FILES:
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
            if self.layers.cgroup_base is not None:
                self.cgroup = layers_mod.new_cgroup(self.layers.cgroup_base, str(self.identity[0]))
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
            target = sub / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if self.identity:
            uid, gid = self.identity
            for folder in (sub, home):
                for dirpath, dirnames, filenames in os.walk(folder):
                    for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                        os.chown(name, uid, gid, follow_symlinks=False)

    # ------------------------------------------------------------------ the confined command

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

    def _rlimits(self) -> dict[str, int]:
        lim = self.limits
        out = {
            "RLIMIT_CPU": int(lim.cpu_seconds),
            "RLIMIT_AS": int(lim.memory_bytes),
            "RLIMIT_FSIZE": int(lim.file_bytes),
            "RLIMIT_CORE": 0,
        }
        if self.identity:  # RLIMIT_NPROC counts the user's processes; it binds only a non-root user
            out["RLIMIT_NPROC"] = int(lim.processes)
        return out

    def confined_command(self, argv: list[str]) -> list[str]:
        """Return the command that runs ``argv`` (an interpreter command line) under every layer."""
        grader = self.root / "_grader"
        python = layers_mod.python_paths()
        config: dict = {
            "exec": argv,
            "env": self._env(),
            "cwd": str(self.root / "submission"),
            "rlimits": self._rlimits(),
        }
        if self.identity:
            config["uid"], config["gid"] = self.identity
        if self.layers.landlock_abi:
            config["landlock"] = {
                "read_exec": [*layers_mod.SYSTEM_READ_EXEC, *python, str(grader)],
                "read": list(layers_mod.SYSTEM_READ),
                "read_write": [
                    str(self.root / "submission"),
                    str(self.root / "home"),
                    *layers_mod.test_notes_folder(),
                ],
                "files_rw": list(layers_mod.SYSTEM_FILES_RW),
            }
        if self.layers.unshare:
            if self.identity:
                config["expose"] = layers_mod.blocked_ancestors(python, self.identity[0])
            config["tmpfs"] = list(layers_mod.SCRATCH_TMPFS)
            config["tmpfs_bytes"] = max(1 << 20, int(self.limits.memory_bytes) // 4)
            config["ipc_bytes"] = int(self.limits.memory_bytes)
        if self.cgroup is not None:
            config["cgroup"] = str(self.cgroup)
        command = [sys.executable, "-I", "-S", str(grader / "confine.py"), json.dumps(config)]
        return [self.layers.unshare, *layers_mod.UNSHARE_FLAGS, *command] if self.layers.unshare else command

    def _check_interpreter(self) -> None:
        """Once per grader process: a confined worker can run this Python with numpy."""
        if _INTERPRETER_OK:
            return
        command = self.confined_command([sys.executable, "-I", "-c", "import numpy, scipy"])
        proc = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)
        self.sweep()
        if proc.returncode != 0:
            err = proc.stderr.strip()
            last = err.splitlines()[-1] if err else f"status {proc.returncode}"
            blocked = []
            if self.identity and not self.layers.unshare:
                blocked = [
                    b for b, _ in layers_mod.blocked_ancestors(layers_mod.python_paths(), self.identity[0])
                ]
            hint = (
                (
                    f"; the folder {blocked[0]} on the way to it is closed to other users and this machine "
                    f"allows no mount namespace to open it without changing it"
                )
                if blocked
                else ""
            )
            raise UserError(
                f"a confined worker cannot run {sys.executable} with numpy ({last}){hint}; "
                f"{layers_mod.describe(self.layers)}"
            )
        _INTERPRETER_OK.append(sys.executable)

    def start(self) -> Worker:
        """Start a worker process in this sandbox."""
        return Worker(self)

    # ------------------------------------------------------------------ memory and cleanup

    def usage(self) -> int:
        """Bytes held by the sandbox user: memory of its processes, its files, its SysV segments."""
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
        total += sum(size for _, size in sysv_segments(uid))
        return total

    def check_usage(self) -> None:
        """Raise MemoryExceeded when the sandbox user holds more than the memory limit."""
        if self.identity and self.usage() > self.limits.memory_bytes:
            raise MemoryExceeded(
                f"the worker's processes and files together used more than the memory "
                f"limit of {self.limits.memory_bytes / 2**20:g} MiB"
            )

    def sweep(self) -> None:
        """Kill everything the student may have left running and delete its scratch files."""
        layers_mod.kill_cgroup(self.cgroup)
        if self.identity:
            kill_user_processes(self.identity[0])
            remove_user_files(self.identity[0])
            remove_sysv_segments(self.identity[0])

    def reset(self) -> None:
        """Between tests: nothing of the previous test's workers survives, not even their files."""
        self.sweep()
        if self.root.is_dir():
            self._student_folders()

    def close(self) -> None:
        """End the sandbox: sweep its processes, remove its cgroup and folder, release its uid."""
        try:
            self.sweep()
            layers_mod.kill_cgroup(self.cgroup, remove=True)
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self):
        """Use the sandbox in a ``with`` block (closed at its end)."""
        return self

    def __exit__(self, *exc):
        """Close the sandbox."""
        self.close()


class Worker:
    """One worker process; ask it to run probes with :meth:`call`."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        sandbox._workers += 1
        # stdout/stderr go to a new file in the sandbox root, which the worker cannot write to or
        # replace (a file in a folder it owns could be swapped for a symlink to a grader file)
        self._output = sandbox.root / f"output-{sandbox._workers}.txt"
        out = os.open(self._output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_APPEND, 0o600)
        read_fd, write_fd = os.pipe()
        self._answers = read_fd
        self._buffer = bytearray()
        argv = [sys.executable, "-I", str(sandbox.root / "_grader" / "worker.py"), "--fd", str(write_fd)]
        try:
            self.proc = subprocess.Popen(
                sandbox.confined_command(argv),
                cwd=sandbox.root,
                env={"PATH": "/usr/bin:/bin"},
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=out,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
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
        """Why the worker ended (for the instructor's log and public cases; never student text)."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the worker closed its answer channel"
        if code == CONFINE_FAILED:
            return "the sandbox could not be set up"
        if code < 0 or code > 128:
            sig = -code if code < 0 else code - 128
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            why = {
                "SIGXCPU": " (CPU time limit)",
                "SIGXFSZ": " (output/file size limit)",
                "SIGKILL": " (killed, e.g. memory exhausted)",
                "SIGSEGV": " (crashed)",
            }.get(name, "")
            return f"the worker was killed by {name}{why}"
        return "the worker exited before answering"

    def stop(self) -> None:
        """Kill the worker's process group, wait for it and sweep the sandbox."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.sandbox.sweep()
        try:
            self.proc.stdin.close()
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
