"""Every solution notebook runs top to bottom in a real kernel, and its committed form is clean.

The execution test starts a Jupyter kernel ("python3") in a copy of the unit's student release with
the solution's notebook and src/ put back, so the notebook runs where students run it (data found
through the environment variables the notebooks document). It fails on any error output,
requires at least one figure, and keeps every PNG in pytest's ``tmp_path`` for inspection.
"""

import base64
import os
import shutil
import time
from pathlib import Path

import nbclient
import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))
NOTEBOOK_IDS = [nb_path.relative_to(ROOT / "solutions").as_posix() for nb_path in NOTEBOOKS]

# One BLAS thread per kernel: the suite runs in parallel (pytest -n 2), and OpenBLAS threads competing
# for the same cores can make the notebooks several times slower.
KERNEL_ENV = dict(
    os.environ,
    OMP_NUM_THREADS="1",
    OPENBLAS_NUM_THREADS="1",
    MKL_NUM_THREADS="1",
    # the notebooks' one budget knob: "small" runs every cell on a reduced budget
    GMMCOURSE_BUDGET="small",
    GMMCOURSE_DATA=str(ROOT / "data"),
)

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


def _student_folder_with_solution(nb_path: Path, workdir: Path) -> Path:
    """A copy of the student release with the solution's notebook and src/ put back in.

    Running there proves the notebook works where students run it: its public checks
    (``grader.check``) find their otter tests and run_public_checks.py beside it.
    """
    unit = nb_path.parent.name
    shutil.copytree(ROOT / "assignments" / unit, workdir)
    if (nb_path.parent / "src").is_dir():  # the solution's modules over the starter's (course_data stays)
        shutil.copytree(
            nb_path.parent / "src",
            workdir / "src",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copyfile(nb_path, workdir / nb_path.name)
    return workdir


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_executes_without_errors(nb_path, tmp_path):
    """Run every cell in a fresh kernel; no errors, at least one figure (saved to tmp_path)."""
    nb = nbformat.read(nb_path, as_version=4)
    workdir = _student_folder_with_solution(nb_path, tmp_path / "unit")
    env = dict(
        KERNEL_ENV,
        GMMCOURSE_OUT_DIR=str(tmp_path / "out"),  # notebook outputs stay in tmp_path
    )
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{nb_path.name} raised while executing:\n{exc}")
    seconds = time.perf_counter() - start
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
    run = nbformat.read(run_path, as_version=4)
    source = nbformat.read(run_path.parent.parent / run_path.name, as_version=4)
    run_code = [c.source for c in run.cells if c.cell_type == "code"]
    assert run_code == [c.source for c in source.cells if c.cell_type == "code"], (
        f"{run_path.name}: its code differs from the notebook's; run it again at the full budget"
    )
    counts = [c.execution_count for c in run.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "the code cells were not run once each, top to bottom"
    errors = [o for c in run.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, "error outputs: " + "; ".join(_error_text(o) for o in errors)
