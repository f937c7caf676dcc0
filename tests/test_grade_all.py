"""`gmmcourse grade-all` on a synthetic class of 11 unit-3 submissions, graded two at a time.

The class: copies of the solution (folders and zips), of the untouched starter, of two of the
mutation suite's bugs (tests/test_unit3_mutations.py), two attacks of tests/fixtures/attack_unit
adapted to unit 3's file names (kill(-1, SIGKILL) in a loop; forging grade-all's own output
files), a truncated zip and an empty folder, with a submission_metadata.yml as in a Gradescope
export. Every row must equal what grading that submission alone gives (the mutants are graded one
at a time here; the solution earns full marks and the starter zero, as `gmmcourse check`
establishes), the attacks earn nothing, a re-run (also from the same class as an export zip)
grades nothing, a changed submission is graded again, Ctrl-C leaves no process and no half-written
file, and bad input is one line. Runs only as root (each sandbox's own uid).
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from gmmcourse import cli, paths
from gmmcourse.build.package import grade_with_zip
from gmmcourse.grading import layers
from tests.conftest import ROOT, run_cli
from tests.mutation_support import build_zip, replace_once
from tests.test_unit3_mutations import BUGS

UNIT = "unit3_gmm_em_lbfgs"
SRC = paths.SOLUTIONS_DIR / UNIT / "src"
ATTACKS = Path(__file__).resolve().parent / "fixtures" / "attack_unit" / "attacks"
TARGET = "calc_neg_log_lik__np.py"  # the attacks replace this file (nearly every probe imports it)
MUTANTS = BUGS[:2]

# kind of each submission, submission_01 ... submission_11 (attacks among honest neighbours)
KINDS = [
    "solution",
    "starter",
    "bug0",
    "killer",
    "solution.zip",
    "bug1",
    "solution",
    "forger",
    "bug0.zip",
    "broken.zip",
    "empty",
]
GROUP = "submission_02"  # a group submission: two submitters

# the attacks' stand-ins for unit 3's functions: wrong everywhere (no case expects 123 or -7)
UNIT3_STUBS = """

def calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD):
    return np.full((np.shape(x_ND)[0], np.shape(log_pi_K)[0]), -7.0)


def calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD):
    return 123.0
"""
# write_results.py adapted: also aim at grade-all's files, found through --out on a command line
BATCH_TARGETS = """def _batch_targets():
    found = set()
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().decode(errors="replace").split("\\0")
        except OSError:
            continue
        for i, arg in enumerate(args[:-1]):
            if arg == "--out":
                found.add(os.path.join(args[i + 1], "scores.csv"))
                found.update(os.path.join(args[i + 1], "results", f"submission_{n:02d}.{ext}")
                             for n in range(1, 100) for ext in ("json", "hash"))
    return found


def _targets():
"""

# one xdist worker grades the class once for the whole module (./kit test runs --dist loadgroup)
pytestmark = [
    pytest.mark.needs_root("the sandbox user exists only as root"),
    pytest.mark.xdist_group("grade_all"),
]


# --------------------------------------------------------------------------- building the class


def _zip_folder(folder: Path, target: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):  # folders too: an empty submission stays one
            zf.write(path, prefix + path.relative_to(folder).as_posix())


def _attack(name: str, drop: Path) -> str:
    text = (ATTACKS / f"{name}.py").read_text().replace("@DROP@", str(drop))
    if name == "kill_everything":
        text += "\n\n_kill_all(1.0)  # at import: in the worker of every test\n"
    if name == "write_results":
        text = replace_once(text, "def _targets():\n", BATCH_TARGETS, name)
        text = replace_once(
            text,
            '    found = {"/autograder/results/results.json"}\n',
            '    found = {"/autograder/results/results.json"}\n    found.update(_batch_targets())\n',
            name,
        )
    return text + UNIT3_STUBS


def _make(kind: str, target: Path, drop: Path) -> Path:
    """One submission of ``kind`` at ``target`` (``.zip`` kinds get the suffix); returns its path."""
    base, _, suffix = kind.partition(".")
    folder = target if not suffix else target.with_name(target.name + "-files")
    if base == "empty":
        folder.mkdir()
    else:  # the attacks ride on the starter
        source = SRC if base in ("solution", "bug0", "bug1", "broken") else paths.STARTER_DIR / UNIT
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if base.startswith("bug"):
        _, file, _function, old, new, *_ = MUTANTS[int(base[3:])]
        (folder / file).write_text(replace_once((folder / file).read_text(), old, new, file))
    if base in ("killer", "forger"):
        attack = "kill_everything" if base == "killer" else "write_results"
        (folder / TARGET).write_text(_attack(attack, drop))
    if not suffix:
        return folder
    out = target.with_name(target.name + ".zip")
    _zip_folder(folder, out)
    shutil.rmtree(folder)
    if base == "broken":  # a download cut short: no end of central directory
        out.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    return out


def _metadata(ids: list[str]) -> str:
    """submission_metadata.yml as a Gradescope export writes it (Ruby-symbol keys)."""
    lines = []
    for n, entry_id in enumerate(ids, start=1):
        lines += [f"{entry_id}:", "  :submitters:"]
        people = [(f"Student {n:02d}", f"s{n:02d}")]
        if entry_id == GROUP:
            people = [("Pair One", "p1"), ("Pair Two", "p2")]
        for name, handle in people:
            lines += [f"  - :name: {name}", f"    :sid: '{1000 + n}'", f"    :email: {handle}@example.edu"]
        lines += [
            "  :created_at: 2026-11-30 10:00:00.000000000 -08:00",
            "  :score: 0.0",
            "  :status: processed",
        ]
    return "\n".join(lines) + "\n"


def make_class(folder: Path, drop: Path) -> dict[str, str]:
    """The class of ``KINDS`` in ``folder``; returns {id: kind}."""
    folder.mkdir()
    kinds = {}
    for n, kind in enumerate(KINDS, start=1):
        entry_id = f"submission_{n:02d}"
        _make(kind, folder / entry_id, drop)
        kinds[entry_id] = kind.partition(".")[0]
    (folder / "submission_metadata.yml").write_text(_metadata(list(kinds)))
    return kinds


# --------------------------------------------------------------------------- helpers


def notes(drop: Path, kind: str) -> list[str]:
    return [line for path in sorted(drop.glob(f"{kind}-*")) for line in path.read_text().splitlines() if line]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if text.encode() in fh.read():
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(f"/proc/{entry.name}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            alive = not fields.get("State", "").strip().startswith("Z")
            if alive and str(uid) in fields.get("Uid", "").split():
                found.append(int(entry.name))
    return found


def leftovers(tmp: Path) -> list[str]:
    """What the gradings left in their TMPDIR (sandboxes, unpacked zips, unpacked exports)."""
    prefixes = ("gmmcourse-sandbox-", "gmmcourse-autograder-", "gmmcourse-grade-all-")
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith(prefixes))


def read_rows(out: Path) -> dict[str, dict]:
    with open(out / "scores.csv", newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


class Lab:
    """A TMPDIR the sandbox users can pass through (so leftovers can be listed) and a drop folder."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="gmmcourse-gradeall-test-"))
        os.chmod(self.root, 0o711)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir()
        os.chmod(self.tmp, 0o711)
        self.drop = self.root / "drop"
        self.drop.mkdir()
        os.chmod(self.drop, 0o1777)

    def env(self) -> dict[str, str]:
        # the attacks leave notes in lab.drop; a confined worker may write there only because the
        # grader's test hook says so (it can write nothing else outside its sandbox)
        return {
            "TMPDIR": str(self.tmp),
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "GMMCOURSE_SANDBOX_TEST_WRITABLE": str(self.drop),
        }


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    yield lab
    shutil.rmtree(lab.root, ignore_errors=True)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


def grade_all(lab: Lab, zip_path: Path, submissions: Path, out: Path, jobs: int = 2):
    return run_cli(
        "grade-all",
        UNIT,
        str(submissions),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--autograder",
        str(zip_path),
        env=lab.env(),
    )


@pytest.fixture(scope="module")
def graded(lab, autograder_zip, tmp_path_factory):
    """The class, graded once with two jobs; (class folder, out folder, kinds, the run)."""
    base = tmp_path_factory.mktemp("class")
    kinds = make_class(base / "class", lab.drop)
    out = base / "out"
    started = time.monotonic()
    proc = grade_all(lab, autograder_zip, base / "class", out)
    print(f"graded {len(kinds)} submissions in {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return base / "class", out, kinds, proc


@pytest.fixture(scope="module")
def expected(autograder_zip, tmp_path_factory):
    """Per kind: {test name: score} of that submission graded alone (the mutants), or known."""
    folder = tmp_path_factory.mktemp("alone")
    table = {}
    for i in range(len(MUTANTS)):
        results = grade_with_zip(autograder_zip, _make(f"bug{i}", folder / f"bug{i}", folder))
        table[f"bug{i}"] = {t["name"]: t["score"] for t in results["tests"]}
        assert any(t["score"] < t["max_score"] for t in results["tests"]), f"bug{i} earned full marks"
    maxima = {t["name"]: t["max_score"] for t in results["tests"]}
    table["solution"] = maxima
    for kind in ("starter", "killer", "forger", "broken", "empty"):
        table[kind] = {name: 0.0 for name in maxima}
    return table


# --------------------------------------------------------------------------- the class


def test_every_row_equals_its_grade_alone(graded, expected):
    _, out, kinds, _ = graded
    rows = read_rows(out)
    assert sorted(rows) == sorted(kinds)
    for entry_id, kind in kinds.items():
        row, want = rows[entry_id], expected[kind]
        got = {name: float(row[name]) for name in want}
        assert got == pytest.approx(want, abs=1e-9), (entry_id, kind, row["output"])
        assert float(row["total"]) == pytest.approx(sum(want.values()), abs=1e-6)
        assert float(row["max"]) == sum(expected["solution"].values())
        results = json.loads((out / "results" / f"{entry_id}.json").read_text())
        assert results["score"] == pytest.approx(float(row["total"]), abs=1e-9)


def test_attacks_ran_earned_nothing_and_left_nothing(graded, lab):
    _, out, kinds, _ = graded
    assert notes(lab.drop, "killer-ran"), "the kill(-1) attack never ran"
    targets = notes(lab.drop, "targets")
    if not layers.detect().unshare:  # in its own PID namespace the forger cannot even see grade-all
        assert str(out / "scores.csv") in targets, "the forger never found grade-all's files"
    rows = read_rows(out)
    for entry_id, kind in kinds.items():
        if kind in ("killer", "forger"):
            assert float(rows[entry_id]["total"]) == 0.0
    for file in out.rglob("*"):
        if file.is_file():
            assert b"FORGED" not in file.read_bytes(), f"{file} was forged"
    for uid in {int(u) for u in notes(lab.drop, "uid")}:
        assert uid != 0 and not processes_of(uid), f"processes of sandbox uid {uid} survived"
    assert not leftovers(lab.tmp), leftovers(lab.tmp)
    assert not processes_mentioning(str(lab.tmp))


def test_outputs_csv_results_summary_and_histogram(graded, expected):
    _, out, kinds, proc = graded
    with open(out / "scores.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == ["id", "name", "email", "sid", "total", "max", *expected["solution"], "output"]
    rows = read_rows(out)
    assert rows["submission_01"]["name"] == "Student 01" and rows["submission_01"]["sid"] == "1001"
    assert rows[GROUP]["name"] == "Pair One; Pair Two"
    assert rows[GROUP]["email"] == "p1@example.edu; p2@example.edu"
    for entry_id, kind in kinds.items():
        if kind in ("broken", "empty"):  # the reason is in the row
            reason = "is not a zip file" if kind == "broken" else "the submission is empty"
            assert reason in rows[entry_id]["output"], rows[entry_id]["output"]
    stored = sorted(p.name for p in (out / "results").iterdir())
    assert stored == sorted(f"{i}.{ext}" for i in kinds for ext in ("hash", "json"))
    lines = proc.stdout.splitlines()
    assert f"{len(KINDS)} submission(s), 0 up to date, {len(KINDS)} to grade with 2 job(s)" in proc.stdout
    header_line = next(line for line in lines if line.startswith("test "))
    assert header_line.split() == ["test", "points", "mean", "min", "max", "full", "marks"]
    solutions = sum(kind == "solution" for kind in kinds.values())
    total = next(line for line in lines if line.startswith("TOTAL"))
    mean = sum(float(r["total"]) for r in rows.values()) / len(rows)
    assert total.split() == ["TOTAL", "100", f"{mean:.2f}", "0", "100", str(solutions), "/", str(len(KINDS))]
    png = (out / "histogram.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_rerun_from_the_export_zip_grades_nothing(graded, lab, autograder_zip, tmp_path):
    folder, out, _, _ = graded
    export = tmp_path / "gradescope_export.zip"
    _zip_folder(folder, export, prefix="assignment_4242_export/")
    again = tmp_path / "out"
    shutil.copytree(out, again)
    stamps = {p.name: p.stat().st_mtime_ns for p in (again / "results").iterdir()}
    proc = grade_all(lab, autograder_zip, export, again)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{len(KINDS)} submission(s), {len(KINDS)} up to date, 0 to grade" in proc.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (again / "results").iterdir()} == stamps
    assert (again / "scores.csv").read_bytes() == (out / "scores.csv").read_bytes()


def test_a_changed_submission_is_graded_again(graded, lab, autograder_zip, tmp_path):
    folder, out, kinds, _ = graded
    changed = next(i for i, kind in kinds.items() if kind == "empty")
    shutil.copytree(folder, tmp_path / "class")
    shutil.copytree(out, tmp_path / "out")
    shutil.rmtree(tmp_path / "class" / changed)
    shutil.copytree(SRC, tmp_path / "class" / changed, ignore=shutil.ignore_patterns("__pycache__"))
    proc = grade_all(lab, autograder_zip, tmp_path / "class", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{len(KINDS)} submission(s), {len(KINDS) - 1} up to date, 1 to grade" in proc.stdout
    rows = read_rows(tmp_path / "out")
    assert float(rows[changed]["total"]) == 100.0
    before = read_rows(out)
    assert all(rows[i] == before[i] for i in kinds if i != changed)


# --------------------------------------------------------------------------- Ctrl-C


# `gmmcourse ...` with SIGINT at its default, as a shell starts a command in the foreground. A shell
# without job control starts a background job with SIGINT ignored (POSIX), e.g. `(pytest &)` in a
# script, and grade-all then keeps ignoring it, as a program should; this test is about Ctrl-C.
AS_IN_THE_FOREGROUND = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('gmmcourse.cli', run_name='__main__', alter_sys=True)"
)


def test_ctrl_c_ends_the_sandboxes_and_leaves_no_half_written_file(lab, autograder_zip, tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for n in range(4):
        shutil.copytree(SRC, folder / f"student{n}", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    earlier = set(lab.tmp.glob("gmmcourse-sandbox-*"))  # an earlier test's, being removed: not ours
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            AS_IN_THE_FOREGROUND,
            "grade-all",
            UNIT,
            str(folder),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--autograder",
            str(autograder_zip),
        ],
        cwd=ROOT,
        env=dict(os.environ, **lab.env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not set(lab.tmp.glob("gmmcourse-sandbox-*")) - earlier and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # workers are running
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    interrupted_after = time.monotonic() - started
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (
        f"SIGINT {interrupted_after:.1f} s after the start, {len(earlier)} earlier sandbox(es); "
        f"stdout {stdout[-1000:]!r}; stderr {stderr[-1000:]!r}"
    )
    assert "interrupted: stopping" in stderr and "run the same command again" in stderr
    assert not (out / "scores.csv").exists()
    for file in (out / "results").iterdir():
        assert not file.name.startswith("."), f"half-written {file}"
        if file.suffix == ".hash":
            json.loads(file.with_suffix(".json").read_text())
    assert not leftovers(lab.tmp), leftovers(lab.tmp)
    assert not processes_mentioning(str(lab.tmp))


# --------------------------------------------------------------------------- bad input


def _export(path: Path, files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _bad_submissions(case: str, folder: Path) -> tuple[list[str], str]:
    """(arguments after `grade-all`, a fragment the one-line error must contain)."""
    meta = b"submission_1:\n  :submitters: []\n"
    if case == "unknown unit":
        return ["unit9", str(folder / "class")], "unknown unit 'unit9'"
    if case == "no such folder":
        return [UNIT, str(folder / "nowhere")], "submissions not found"
    if case == "jobs 0":
        return [UNIT, str(folder / "class"), "--jobs", "0"], "--jobs must be at least 1, got 0"
    if case == "not a zip":
        (folder / "export.zip").write_bytes(b"not a zip at all")
        return [UNIT, str(folder / "export.zip")], "neither a folder of submissions nor a Gradescope export"
    if case == "zip without metadata":
        export = _export(folder / "e.zip", {f"submission_1/{TARGET}": b"x = 1\n"})
        return [UNIT, str(export)], "holds no submission_metadata.yml"
    if case == "unreadable metadata":
        export = _export(
            folder / "e.zip", {"x/submission_metadata.yml": b"a: [b\n", f"x/submission_1/{TARGET}": b""}
        )
        return [UNIT, str(export)], "cannot read submission_metadata.yml"
    if case == "corrupt export":  # the zip's directory is intact, one stored file's bytes are not
        export = _export(
            folder / "e.zip",
            {"submission_metadata.yml": meta, f"submission_1/{TARGET}": (SRC / TARGET).read_bytes()},
            zipfile.ZIP_STORED,
        )
        data = bytearray(export.read_bytes())
        at = data.index(b"def calc_neg_log_lik")
        data[at : at + 3] = b"XYZ"
        export.write_bytes(bytes(data))
        return [UNIT, str(export)], "cannot read the Gradescope export"
    assert case == "another assignment"
    export = _export(
        folder / "e.zip",
        {
            "assignment_1_export/submission_metadata.yml": meta,
            "assignment_1_export/submission_1/unit1_gaussian_classifier.ipynb": b"{}",
            "assignment_1_export/submission_1/notes.txt": b"hello",
        },
    )
    return [UNIT, str(export)], f"holds a file of {UNIT}"


BAD = [
    "unknown unit",
    "no such folder",
    "jobs 0",
    "not a zip",
    "zip without metadata",
    "unreadable metadata",
    "corrupt export",
    "another assignment",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_writes_nothing(case, autograder_zip, tmp_path, capsys):
    (tmp_path / "class" / "alice").mkdir(parents=True)
    (tmp_path / "class" / "alice" / TARGET).write_text("x = 1\n")
    args, needle = _bad_submissions(case, tmp_path)
    out = tmp_path / "out"
    code = cli.main(["grade-all", *args, "--out", str(out), "--autograder", str(autograder_zip)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gmmcourse: error: ") and needle in err, err
    assert not out.exists()
    if case == "another assignment":
        assert "unit3_gmm_em_lbfgs" in err and "they match unit1_gaussian_classifier" in err
