"""Every solution notebook runs top to bottom in a real kernel, and its committed form is clean.

The execution test starts a Jupyter kernel ("python3") in a copy of the unit's student release with
the solution's notebook and src/ put back, so the notebook runs where students run it (data found
through the environment variables the notebooks document). It fails on any error output,
requires at least one figure, and keeps every PNG in pytest's ``tmp_path`` for inspection.
"""

import base64
import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from gmmcourse import cli, paths
from gmmcourse.build import full_run
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))
NOTEBOOK_IDS = [nb_path.relative_to(ROOT / "solutions").as_posix() for nb_path in NOTEBOOKS]

# One BLAS thread per kernel: the suite runs in parallel (pytest -n 2), and OpenBLAS threads competing
# for the same cores can make the notebooks several times slower. "small" is the notebooks' one
# budget knob: every cell runs on a reduced budget.
KERNEL_ENV = full_run.kernel_env("small", threads=1)

# nbgrader's rule (ClearSolutions): ANY line of ANY cell that contains "BEGIN SOLUTION" opens a solution
# region, even inside prose, so a cell that merely mentions the marker must be a solution cell too.
BEGIN = "BEGIN SOLUTION"
END = "END SOLUTION"
CELL_TIMEOUT_S = 600


def _error_text(output) -> str:
    return f"{output.get('ename', '?')}: {output.get('evalue', '')}"


def test_there_are_solution_notebooks():
    assert NOTEBOOKS, "no solutions/*/*.ipynb found"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_committed_notebook_is_clean(nb_path):
    """Valid nbformat 4, no outputs, and nbgrader metadata on every cell with a solution region."""
    nb = nbformat.read(nb_path, as_version=4)
    nbformat.validate(nb)
    grade_ids = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has committed outputs; clear them"
            assert cell.execution_count is None, f"cell {index} has an execution count; clear it"
        meta = cell.metadata.get("nbgrader")
        if BEGIN in cell.source:
            assert meta is not None, (
                f"cell {index} ({cell.cell_type}) has a line containing {BEGIN!r} but no nbgrader metadata; "
                "nbgrader treats that line as a solution region (reword prose that mentions the marker)"
            )
            opened = False
            for line in cell.source.splitlines():
                if BEGIN in line:
                    assert not opened, f"cell {index}: nested {BEGIN!r}"
                    opened = True
                elif END in line:
                    opened = False
            assert not opened, f"cell {index}: {BEGIN!r} without a matching {END!r} on a later line"
            assert meta.get("solution") is True, f"cell {index}: nbgrader 'solution' should be true"
            assert meta.get("grade_id"), f"cell {index}: nbgrader metadata without a grade_id"
        if meta is not None and meta.get("grade_id"):
            grade_ids.append(meta["grade_id"])
    repeated = sorted({gid for gid in grade_ids if grade_ids.count(gid) > 1})
    assert not repeated, f"grade_id used by more than one cell: {repeated}"
    # nbgrader's own schema check (what `generate_assignment` runs first); e.g. it rejects a markdown
    # solution cell that is not also a grade cell with points
    MetadataValidator().validate_nb(nb)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_executes_without_errors(nb_path, tmp_path):
    """Run every cell in a fresh kernel; no errors, at least one figure (saved to tmp_path)."""
    nb = nbformat.read(nb_path, as_version=4)
    # where students run it: the release, with the solution's src/ and notebook put back in
    workdir = full_run.release_with_solution(nb_path, tmp_path / "unit")
    env = dict(
        KERNEL_ENV,
        GMMCOURSE_OUT_DIR=str(tmp_path / "out"),  # notebook outputs stay in tmp_path
    )
    try:
        seconds = full_run.execute(nb, workdir, env, CELL_TIMEOUT_S)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{nb_path.name} raised while executing:\n{exc}")
    print(f"{nb_path.relative_to(ROOT)}: executed in {seconds:.1f} s")

    errors = []
    n_png = 0
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append(f"cell {index}: {_error_text(output)}")
            png = output.get("data", {}).get("image/png") if "data" in output else None
            if png:
                n_png += 1
                (tmp_path / f"{nb_path.stem}_fig{n_png:02d}_cell{index:02d}.png").write_bytes(
                    base64.b64decode(png)
                )
    assert not errors, "error outputs:\n" + "\n".join(errors)
    assert n_png >= 1, f"{nb_path.name} produced no image/png output"


FULL_RUNS = sorted((ROOT / "solutions").glob("*/full_run/*.ipynb"))


def test_the_unit5_full_run_is_committed():
    # the issue asks to see the 25-epoch VAE training in the committed solution, outputs included
    assert ROOT / "solutions/unit5_density_models/full_run/unit5_density_models.ipynb" in FULL_RUNS


@pytest.mark.parametrize(
    "run_path", FULL_RUNS, ids=[p.relative_to(ROOT / "solutions").as_posix() for p in FULL_RUNS]
)
def test_a_full_run_copy_is_the_notebook_it_claims_to_be(run_path):
    """A committed full-budget run (solutions/<unit>/full_run/) has the code of today's notebook,
    every code cell executed in order, and no error output: a stale or failed run is refused."""
    assert full_run.stale_problems(run_path) == []


def test_stale_problems_refuses_changed_code_text_modules_skipped_cells_and_errors(tmp_path):
    run_path = FULL_RUNS[0]
    unit_dir = run_path.parent.parent
    source = unit_dir / run_path.name
    assert full_run.stale_problems(run_path, source) == []
    for change in ("code", "text", "count", "error"):
        nb = nbformat.read(run_path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code")
        if change == "code":
            cell.source += "\nx = 1"
        elif change == "text":
            next(c for c in nb.cells[1:] if c.cell_type == "markdown").source += " (an older answer)"
        elif change == "count":
            cell.execution_count = 2
        else:
            cell.outputs.append(
                nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])
            )
        nbformat.write(nb, tmp_path / f"{change}.ipynb")
        (problem,) = full_run.stale_problems(tmp_path / f"{change}.ipynb", source)
        assert {
            "code": "code differs",
            "text": "text differs",
            "count": "not run once each",
            "error": "ValueError: boom",
        }[change] in problem
    # a module in src/ changed after the run: its outputs no longer stand
    today = tmp_path / unit_dir.name
    shutil.copytree(unit_dir / "src", today / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(source, today / source.name)
    assert full_run.stale_problems(run_path, today / source.name) == []
    with open(sorted((today / "src").glob("*.py"))[0], "a") as module:
        module.write("\nCHANGED = True\n")
    (problem,) = full_run.stale_problems(run_path, today / source.name)
    assert "not run with today's" in problem


def test_full_run_command_writes_an_executed_copy(tmp_path):
    """`gmmcourse full-run` (here at the small budget, on unit 3) writes today's notebook with its
    outputs behind a note on the run; the copy passes the staleness check."""
    out = tmp_path / "full_run" / "unit3_gmm_em_lbfgs.ipynb"
    proc = run_cli("full-run", "unit3", "--budget", "small", "--threads", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cell " in proc.stdout and f"wrote {out}" in proc.stdout
    assert "    | data folder:" in proc.stdout  # what the cells print is shown as they print it
    source = ROOT / "solutions" / "unit3_gmm_em_lbfgs" / "unit3_gmm_em_lbfgs.ipynb"
    assert full_run.stale_problems(out, source) == []
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[0].id == full_run.NOTE_ID and "GMMCOURSE_BUDGET=small" in nb.cells[0].source
    assert any(o.output_type == "display_data" for c in nb.cells for o in c.get("outputs", []))
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no partial file left

    # --text-only puts today's text back into a copy whose answers are older, keeping its outputs
    outputs = [c.outputs for c in nb.cells if c.cell_type == "code"]
    next(c for c in nb.cells[1:] if c.cell_type == "markdown").source += " (an older answer)"
    nbformat.write(nb, out)
    assert "text differs" in " ".join(full_run.stale_problems(out, source))
    proc = run_cli("full-run", "unit3", "--text-only", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    refreshed = nbformat.read(out, as_version=4)
    assert full_run.stale_problems(out, source) == []
    assert [c.outputs for c in refreshed.cells if c.cell_type == "code"] == outputs
    assert refreshed.cells[0] == nb.cells[0]  # the note on the run stays
    # ... but refuses one whose code is not today's: its outputs would not stand
    next(c for c in refreshed.cells if c.cell_type == "code").source += "\nx = 1"
    nbformat.write(refreshed, out)
    proc = run_cli("full-run", "unit3", "--text-only", "--out", str(out))
    assert proc.returncode == 2 and "code differs" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    out.write_text('{"cells": [')  # a truncated copy
    proc = run_cli("full-run", "unit3", "--text-only", "--out", str(out))
    assert proc.returncode == 2 and "not a readable notebook" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_text_only_with_an_unreadable_solution_notebook_is_one_error(tmp_path, monkeypatch):
    unit = "unit3_gmm_em_lbfgs"
    (tmp_path / "solutions" / unit).mkdir(parents=True)
    (tmp_path / "solutions" / unit / f"{unit}.ipynb").write_text('{"cells": [')
    copy = tmp_path / "copy.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), copy)
    before = copy.read_bytes()
    monkeypatch.setattr(paths, "SOLUTIONS_DIR", tmp_path / "solutions")
    with pytest.raises(cli.UserError, match=f"{unit}.ipynb is not a readable notebook"):
        full_run.refresh_text(unit, out=copy)
    assert copy.read_bytes() == before  # nothing half-written


FAILURES = {  # a cell's code -> what the one error line must say
    "raise ValueError('the data folder moved')": "a cell raised ValueError: the data folder moved",
    "import time\ntime.sleep(60)": "timed out",
}


@pytest.mark.parametrize("failing_code", FAILURES, ids=["raises", "times out"])
def test_full_run_of_a_failing_notebook_writes_nothing(failing_code, tmp_path, monkeypatch, capsys):
    """A cell that raises, or outlives the cell timeout, in a real kernel: one error line, exit 2,
    and the old copy stays as it was."""
    unit = "unit3_gmm_em_lbfgs"
    solutions = tmp_path / "solutions"
    shutil.copytree(ROOT / "solutions" / unit, solutions / unit, ignore=shutil.ignore_patterns("__pycache__"))
    nb = nbformat.read(solutions / unit / f"{unit}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[0].source, code[1].source = "x = 1", failing_code  # quick cells, well inside the timeout
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or c in code[:2]]
    nbformat.write(nb, solutions / unit / f"{unit}.ipynb")
    monkeypatch.setattr(paths, "SOLUTIONS_DIR", solutions)
    monkeypatch.setattr(full_run, "FULL_RUN_CELL_TIMEOUT_S", 3)
    out = tmp_path / "old.ipynb"
    out.write_text("the previous run")
    assert cli.main(["full-run", unit, "--budget", "small", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and FAILURES[failing_code] in err and "nothing was written" in err, err
    assert out.read_text() == "the previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.ipynb", "solutions"]


@pytest.mark.parametrize(
    "args, needle",
    [(["unit9"], "unknown unit 'unit9'"), (["unit3", "--threads", "0"], "--threads must be at least 1")],
)
def test_full_run_bad_arguments_are_one_line(args, needle, capsys):
    assert cli.main(["full-run", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err
