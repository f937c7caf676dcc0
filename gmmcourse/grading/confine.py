"""Confine this process, then exec the worker: the last trusted step before student code runs.

Started by :mod:`gmmcourse.grading.sandbox` as ``python -I -S confine.py CONFIG_JSON`` (inside
util-linux ``unshare`` when namespaces are available, so this process is then PID 1 of a new PID
namespace with its own mount, network and IPC namespaces). In this order it

1. (new mount namespace, as root) mounts private tmpfs over the shared scratch folders and makes
   the folders on the interpreter's path reachable for the worker's uid without changing any
   host file: a tmpfs is laid over a folder the uid cannot enter, and only the needed sub-folders
   are bind-mounted back into it;
2. (new IPC namespace, as root) caps System V shared memory at the memory limit;
3. joins the sandbox's cgroup (so the grader can kill the whole process tree at once);
4. sets the resource limits and ``no_new_privs``;
5. restricts itself with Landlock: read (and execute) only the Python installation and the system
   libraries, read-write only the sandbox's own folders, no TCP, no signals or abstract unix
   sockets beyond its own processes (each feature as far as the kernel's Landlock ABI goes);
6. drops to the sandbox's uid/gid (as root) and execs the worker.

Every step the configuration asks for must succeed, or this process exits with status 70 before
any student code could run. Only the standard library is used (the file runs before ``site``).

Landlock is reached through its three system calls with ctypes: the Python bindings on PyPI are
pre-releases or unmaintained, and the calls are small and stable (see the kernel's
Documentation/userspace-api/landlock.rst). The constants below are the kernel's UAPI values.
"""

import ctypes
import json
import os
import resource
import sys

# --------------------------------------------------------------------------- Landlock UAPI

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on x86_64 and arm64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
READ = FS_READ_FILE | FS_READ_DIR
READ_EXEC = READ | FS_EXECUTE
FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_MS_BIND, _MS_REC, _MS_NOSUID, _MS_NODEV = 4096, 16384, 2, 4


class ConfineError(Exception):
    """A confinement step failed (the worker must not start)."""


def landlock_abi() -> int:
    """Return the kernel's Landlock ABI version, 0 when Landlock is unavailable or disabled."""
    abi = _libc.syscall(
        _SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
    )
    return max(int(abi), 0)


def _fail(what: str) -> None:
    err = ctypes.get_errno()
    raise ConfineError(f"{what}: {os.strerror(err) if err else 'failed'}")


_WRITE_TREE = (
    FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SYM
    | FS_MAKE_FIFO
    | FS_MAKE_SOCK
    | FS_TRUNCATE
    | FS_REFER
)


def _create_ruleset(abi: int, handled: int) -> int:
    """Create a Landlock ruleset handling ``handled`` (plus TCP from ABI 4, scopes from ABI 6)."""
    attr = _RulesetAttr(
        handled,
        (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = _libc.syscall(
        _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        _fail("landlock_create_ruleset")
    return ruleset


def _add_path_rule(ruleset: int, path: str, access: int, handled: int) -> None:
    """Allow ``access`` beneath ``path``; a path this machine does not have is skipped."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            access &= FILE_ONLY
        rule = _PathBeneathAttr(access & handled, fd)
        added = _libc.syscall(
            _SYS_ADD_RULE,
            ctypes.c_int(ruleset),
            ctypes.c_int(_RULE_PATH_BENEATH),
            ctypes.byref(rule),
            ctypes.c_uint32(0),
        )
        if added < 0:
            _fail(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def apply_landlock(read_exec: list[str], read: list[str], read_write: list[str], files_rw: list[str]) -> int:
    """Restrict this process (and its future children) to the given paths; returns the ABI used."""
    abi = landlock_abi()
    if abi < 1:
        raise ConfineError("Landlock is not available")
    handled = _FS_BY_ABI.get(abi, (1 << 16) - 1)
    rules = (
        [(p, READ_EXEC) for p in read_exec]
        + [(p, READ) for p in read]
        + [(p, READ_EXEC | _WRITE_TREE) for p in read_write]
        + [(p, FS_READ_FILE | FS_WRITE_FILE | FS_IOCTL_DEV) for p in files_rw]
    )
    ruleset = _create_ruleset(abi, handled)
    try:
        for path, access in rules:
            _add_path_rule(ruleset, path, access, handled)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _fail("prctl(PR_SET_NO_NEW_PRIVS)")
        if _libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            _fail("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


# --------------------------------------------------------------------------- mounts (own mount namespace)


def _mount(source, target, fstype, flags, data=None) -> None:
    if (
        _libc.mount(
            source and source.encode(),
            target.encode(),
            fstype and fstype.encode(),
            flags,
            data and data.encode(),
        )
        != 0
    ):
        _fail(f"mount {target}")


def private_tmpfs(folders: list[str], size_bytes: int) -> None:
    """Mount a fresh, size-limited tmpfs over each shared scratch folder (gone with the namespace)."""
    for folder in folders:
        if os.path.isdir(folder):
            _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size_bytes},mode=1777")


def expose(blocked: str, needed: list[str]) -> None:
    """Make ``needed`` folders (all below ``blocked``) reachable although ``blocked`` is not.

    ``blocked`` is covered by an empty tmpfs (mode 0755) holding only the paths down to each needed
    folder, each bind-mounted back from the original. Nothing on the host changes.
    """
    fds = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in needed]
    st = os.stat(blocked)
    _mount("tmpfs", blocked, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
    os.chown(blocked, st.st_uid, st.st_gid)
    for path, fd in zip(needed, fds, strict=True):
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        os.close(fd)


# --------------------------------------------------------------------------- the rest


def limit_ipc(max_bytes: int) -> None:
    """Cap System V shared memory of this (new) IPC namespace at ``max_bytes``."""
    page = os.sysconf("SC_PAGE_SIZE")
    for name, value in (("shmmax", max_bytes), ("shmall", max(1, max_bytes // page)), ("shmmni", 64)):
        with open(f"/proc/sys/kernel/{name}", "w") as fh:
            fh.write(str(value))


def join_cgroup(path: str) -> None:
    """Move this process into the cgroup at ``path``."""
    with open(os.path.join(path, "cgroup.procs"), "w") as fh:
        fh.write(str(os.getpid()))


def set_limits(limits: dict) -> None:
    """Set each resource limit (``RLIMIT_*`` name -> value), soft and hard alike."""
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good: no supplementary groups, all three ids changed."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid):  # pragma: no cover - the kernel said yes but did not
        raise ConfineError("could not drop privileges")


def main(argv) -> None:
    """Apply the layers that ``argv[1]`` (JSON) describes, then exec the command it names."""
    config = json.loads(argv[1])
    try:
        for blocked, needed in config.get("expose", []):
            expose(blocked, needed)
        if config.get("tmpfs"):
            private_tmpfs(config["tmpfs"], config["tmpfs_bytes"])
        if config.get("ipc_bytes"):
            limit_ipc(config["ipc_bytes"])
        if config.get("cgroup"):
            join_cgroup(config["cgroup"])
        set_limits(config.get("rlimits", {}))
        if config.get("landlock"):
            ll = config["landlock"]
            apply_landlock(ll["read_exec"], ll["read"], ll["read_write"], ll["files_rw"])
        if config.get("uid") is not None:
            drop_privileges(config["uid"], config["gid"])
        os.chdir(config["cwd"])
    except (ConfineError, OSError, ValueError) as exc:
        print(f"gmmcourse sandbox: confinement failed: {exc}", file=sys.stderr)
        os._exit(70)
    argv = config["exec"]
    os.execve(argv[0], argv, config["env"])


if __name__ == "__main__":
    main(sys.argv)
