"""What a confined worker can and cannot do, layer by layer (runs as root, like CI and Gradescope).

The worker must reach the Python installation and its own sandbox folders, and nothing else: no
file of a checkout (a second clone included), no shared scratch folder, no network, no process
outside its own tree, no System V segment that outlives it. Each check runs once with every layer
the machine allows and once more with each layer switched off, so every layer is shown to work on
its own (what a container that forbids the others still gets).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gmmcourse import paths
from gmmcourse.grading import layers
from gmmcourse.grading.sandbox import Sandbox
from gmmcourse.grading.spec import Limits

pytestmark = pytest.mark.needs_root("workers run under a separate uid only as root")
NOBODY = 65534  # a uid that owns no folder on the way to the interpreter

PROBE = textwrap.dedent("""
    import ctypes, os, socket, sys
    def attempt(name, action):
        try:
            action()
            print(name, "allowed")
        except Exception as exc:
            print(name, "denied", type(exc).__name__)
    attempt("read_checkout", lambda: os.listdir(sys.argv[1]))
    attempt("read_checkout_file", lambda: open(os.path.join(sys.argv[1], "README.md")).read(1))
    attempt("write_tmp", lambda: open("/tmp/gmmcourse-confine-probe", "w").write("x"))
    attempt("write_dev_shm", lambda: open("/dev/shm/gmmcourse-confine-probe", "w").write("x"))
    attempt("tcp", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2))
    attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9)))
    attempt("signal_grader", lambda: os.kill(int(sys.argv[3]), 0))
    attempt("write_home", lambda: open(os.path.join(os.environ["HOME"], "f"), "w").write("x"))
    attempt("numpy", lambda: __import__("numpy").ones(3).sum())
    libc = ctypes.CDLL(None, use_errno=True)
    def big_shm():
        shmid = libc.shmget(0, ctypes.c_size_t(3 << 30), 0o1600)  # IPC_PRIVATE | IPC_CREAT
        if shmid < 0:
            raise OSError(ctypes.get_errno(), "shmget")
    attempt("sysv_shm_3g", big_shm)
""")


@pytest.fixture(scope="module")
def listener():
    server = __import__("socket").socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def _run(listener_port, disable: str = "") -> dict[str, str]:
    proc, names = _run_probe(listener_port, disable)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.strip())
    found = {k: v.split()[0] for k, v in found.items()}
    found["_layers"] = names
    return found


def _run_probe(listener_port, disable: str = ""):
    """(the finished process that ran PROBE in a sandbox, the layer names it had)."""
    env = dict(os.environ, GMMCOURSE_SANDBOX_DISABLE=disable)
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from gmmcourse.grading import layers; print(json.dumps(layers.detect().names()))"
    )
    names = subprocess.run(
        [sys.executable, "-c", code, str(paths.REPO_ROOT)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    runner = textwrap.dedent(f'''
        import subprocess, sys
        sys.path.insert(0, {str(paths.REPO_ROOT)!r})
        from pathlib import Path
        from gmmcourse.grading.sandbox import Sandbox
        from gmmcourse.grading.spec import Limits
        with Sandbox(Path({str(paths.AUTOGRADER_DIR / "unit3_gmm_em_lbfgs" / "probes.py")!r}), {{}},
                     Limits(memory_bytes=1 << 30)) as box:
            argv = [sys.executable, "-I", "-c", {PROBE!r}, {str(paths.REPO_ROOT)!r}, "{listener_port}",
                    str(__import__("os").getpid())]
            out = subprocess.run(box.confined_command(argv), cwd=box.root, capture_output=True, text=True)
            print(out.stdout)
            print(out.stderr, file=sys.stderr)
    ''')
    proc = subprocess.run(
        [sys.executable, "-c", runner], env=env, capture_output=True, text=True, timeout=300
    )
    return proc, names


def test_every_layer_together(listener):
    seen = _run(listener)
    assert seen["numpy"] == "allowed" and seen["write_home"] == "allowed"
    for action in (
        "read_checkout",
        "read_checkout_file",
        "write_tmp",
        "write_dev_shm",
        "tcp",
        "udp",
        "signal_grader",
        "sysv_shm_3g",
    ):
        assert seen[action] == "denied", (action, seen)
    if os.environ.get("CI"):  # CI's machines allow every layer: a missing one is a regression
        for name in ("landlock", "namespaces", "cgroup"):
            assert name in seen["_layers"], seen["_layers"]


@pytest.mark.parametrize(
    "disable, still_denied",
    [
        ("namespaces,cgroup", ["read_checkout_file", "write_tmp", "write_dev_shm", "tcp", "signal_grader"]),
        ("landlock,cgroup", ["udp", "tcp", "sysv_shm_3g"]),  # without Landlock, only folder modes guard files
    ],
)
def test_each_layer_on_its_own(listener, disable, still_denied):
    if "landlock" not in disable and not layers.detect().landlock_abi:
        pytest.skip("this kernel has no Landlock")
    if "namespaces" not in disable and not layers.detect().unshare:
        pytest.skip("this machine allows no namespaces")
    if "namespaces" in disable and layers.blocked_ancestors(layers.python_paths(), NOBODY):
        # The interpreter lies under a folder other users cannot enter (here /root, mode 700, holds
        # pyenv's Python). Only a mount namespace can open it without changing its mode, which the
        # sandbox never does; with namespaces off it must refuse in one clear error, not start a
        # worker that cannot import numpy. (Landlock alone is then exercised only on machines
        # whose Python other users can reach, e.g. one under /usr.)
        proc, _ = _run_probe(listener, disable)
        assert proc.returncode != 0
        assert "UserError: a confined worker cannot run" in proc.stderr, proc.stderr[-2000:]
        assert "is closed to other users" in proc.stderr, proc.stderr[-2000:]
        return
    seen = _run(listener, disable)
    assert seen["numpy"] == "allowed"
    for action in still_denied:
        assert seen[action] == "denied", (disable, action, seen)


def test_the_grading_log_names_the_layers():
    line = layers.describe(layers.detect())
    assert line.startswith("sandbox layers active: separate uid, rlimits")


def test_no_host_folder_changes_mode(tmp_path):
    """Starting a sandbox changes no folder on the way to the interpreter (nothing is chmod-ed)."""
    on_the_way = {p for path in layers.python_paths() for p in [path, *map(str, Path(path).parents)]}
    watched = sorted(on_the_way | {str(paths.REPO_ROOT / n) for n in ("solutions", "autograder")})
    before = {p: os.stat(p).st_mode for p in watched if os.path.exists(p)}
    with Sandbox(paths.AUTOGRADER_DIR / "unit3_gmm_em_lbfgs" / "probes.py", {}, Limits()):
        pass
    assert {p: os.stat(p).st_mode for p in before} == before
