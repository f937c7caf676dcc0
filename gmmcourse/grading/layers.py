"""Which confinement layers this machine allows, and the command line that uses all of them.

Detected once per grader process, each layer on its own (a container may forbid one and allow
another):

- ``uid``: as root, every sandbox runs under a throw-away uid of its own (see sandbox.py).
- ``landlock``: the kernel's Landlock LSM (unprivileged; works inside Docker when the seccomp
  profile allows its system calls): the worker reads only the Python installation and the system
  libraries, writes only its sandbox folders; from ABI 4 no TCP, from ABI 6 no signals or abstract
  unix sockets beyond its own processes.
- ``namespaces``: as root where ``unshare`` is permitted, util-linux ``unshare`` starts the worker
  as PID 1 of new PID, mount, network and IPC namespaces: no network at all, private System V IPC
  and scratch folders, and killing it kills every process it started.
- ``cgroup``: a cgroup v2 folder per sandbox whose ``cgroup.kill`` ends the whole process tree.

:func:`describe` is the line written into the grading log (instructor-visible) so an instructor can
see when a container forbids a layer.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
UNSHARE_FLAGS = (
    "--fork",
    "--kill-child",
    "--pid",
    "--mount-proc",
    "--net",
    "--ipc",
    "--propagation",
    "private",
)
# Disable a layer for experiments and tests: GMMCOURSE_SANDBOX_DISABLE=landlock,namespaces,cgroup
DISABLE_ENV = "GMMCOURSE_SANDBOX_DISABLE"
# For the attack tests only: one folder every worker may also write, where attacks leave notes of
# what they found (never set when grading for real; the grading log says when it is set).
NOTES_ENV = "GMMCOURSE_SANDBOX_TEST_WRITABLE"


def test_notes_folder() -> list[str]:
    """Return the folder the security tests let workers write notes to (empty outside them)."""
    folder = os.environ.get(NOTES_ENV, "")
    return [os.path.realpath(folder)] if folder and os.path.isdir(folder) else []


@dataclass(frozen=True)
class Layers:
    """Which confinement layers this machine offers to the sandbox."""

    root: bool
    landlock_abi: int
    unshare: str | None  # path of a working util-linux unshare, when namespaces are allowed
    cgroup_base: Path | None  # a writable cgroup v2 folder for the sandboxes' cgroups

    def names(self) -> list[str]:
        """Return the names of the active layers."""
        out = []
        if self.root:
            out.append("separate uid")
        out.append("rlimits")
        if self.landlock_abi:
            what = (
                ["files"]
                + (["tcp"] if self.landlock_abi >= 4 else [])
                + (["signals", "abstract sockets"] if self.landlock_abi >= 6 else [])
            )
            out.append(f"landlock ABI {self.landlock_abi} ({', '.join(what)})")
        if self.unshare:
            out.append("namespaces (pid, mount, net, ipc)")
        if self.cgroup_base:
            out.append("cgroup v2 (kill)")
        return out

    def missing(self) -> list[str]:
        """Return the layers that are missing, each with the reason."""
        out = []
        if not self.root:
            out.append("separate uid (not root)")
        if not self.landlock_abi:
            out.append("landlock (kernel or container does not allow it)")
        if not self.unshare:
            out.append("namespaces (" + ("not root" if not self.root else "unshare not permitted") + ")")
        if not self.cgroup_base:
            out.append("cgroup v2 (no writable cgroup2 folder)")
        return out


def describe(layers: Layers) -> str:
    """Return one line naming the active layers (and the missing ones)."""
    line = "sandbox layers active: " + ", ".join(layers.names())
    if layers.missing():
        line += "; not available: " + ", ".join(layers.missing())
    if test_notes_folder():
        line += f"; TEST MODE: workers may also write {test_notes_folder()[0]}"
    return line


def _disabled() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def _landlock_abi() -> int:
    sys.path.insert(0, str(_HERE))
    try:
        import confine  # noqa: PLC0415  (the same file the workers run)
    finally:
        sys.path.pop(0)
    return confine.landlock_abi()


def _working_unshare() -> str | None:
    tool = shutil.which("unshare")
    if not tool:
        return None
    try:
        proc = subprocess.run([tool, *UNSHARE_FLAGS, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return tool if proc.returncode == 0 else None


def _cgroup2_base() -> Path | None:
    """Return this process's own cgroup v2 folder, if it is writable (a child folder can be made)."""
    mount = None
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                if right.split()[:1] == ["cgroup2"]:
                    mount = left.split()[4]
                    break
        with open("/proc/self/cgroup") as fh:
            own = next((ln.strip()[3:] for ln in fh if ln.startswith("0::")), None)
    except OSError:
        return None
    if not mount or own is None:
        return None
    base = Path(mount) / own.lstrip("/")
    probe = base / f"gmmcourse-probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError:
        return None
    try:
        ok = (probe / "cgroup.procs").exists() and (probe / "cgroup.kill").exists()
    finally:
        probe.rmdir()
    return base if ok else None


@functools.cache
def detect() -> Layers:
    """Find out which layers work here (each can be switched off for tests, see DISABLE_ENV)."""
    off = _disabled()
    root = os.geteuid() == 0
    abi = 0 if "landlock" in off else _landlock_abi()
    unshare = None if (not root or "namespaces" in off) else _working_unshare()
    cgroup = None if (not root or "cgroup" in off) else _cgroup2_base()
    return Layers(root, abi, unshare, cgroup)


# --------------------------------------------------------------------------- cgroups


def new_cgroup(base: Path, tag: str) -> Path:
    """Create a fresh child cgroup of ``base`` named after ``tag``; return its folder."""
    path = base / f"gmmcourse-{tag}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def kill_cgroup(path: Path | None, remove: bool = False) -> None:
    """SIGKILL every process of the cgroup (a whole tree, zombies' threads included)."""
    if path is None or not path.is_dir():
        return
    try:
        (path / "cgroup.kill").write_text("1")
    except OSError:
        pass
    for _ in range(500):
        try:
            if not (path / "cgroup.procs").read_text().split():
                break
        except OSError:
            break
        time.sleep(0.01)
    if remove:
        try:
            path.rmdir()
        except OSError:
            pass


# --------------------------------------------------------------------------- what the worker may read


def python_paths() -> list[str]:
    """Folders of the running Python installation (interpreter, stdlib, site-packages)."""
    found = []
    for path in (
        sys.base_prefix,
        sys.prefix,
        os.path.dirname(sys.executable),
        os.path.dirname(os.path.realpath(sys.executable)),
    ):
        real = os.path.realpath(path)
        if real not in found and os.path.isdir(real):
            found.append(real)
    for path in (sys.base_prefix, sys.prefix):  # a venv's own folder (its bin/ may be a symlink farm)
        if os.path.isdir(path) and path not in found:
            found.append(path)
    return found


SYSTEM_READ_EXEC = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
SYSTEM_READ = ("/etc", "/proc", "/sys", "/dev/urandom", "/dev/random", "/dev/zero")
SYSTEM_FILES_RW = ("/dev/null",)
SCRATCH_TMPFS = ("/dev/shm", "/var/tmp", "/run/lock")


def blocked_ancestors(paths: list[str], uid: int) -> list[tuple[str, list[str]]]:
    """(folder the uid cannot enter, [needed folders below it]) for folders on the way to ``paths``.

    Only the highest such folder per path is returned; the needed folders are the paths below it.
    """
    groups: dict[str, list[str]] = {}
    for path in paths:
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            folder = os.path.join(*parts[:i])
            try:
                st = os.stat(folder)
            except OSError:
                break
            if st.st_uid != uid and not st.st_mode & 0o001:
                if folder != path:
                    groups.setdefault(folder, [])
                    if path not in groups[folder]:
                        groups[folder].append(path)
                break
    # a needed path below another needed path is exposed with its parent
    out = []
    for folder, needed in groups.items():
        needed = sorted(needed)
        kept = [p for p in needed if not any(p != q and p.startswith(q + os.sep) for q in needed)]
        out.append((folder, kept))
    return out
