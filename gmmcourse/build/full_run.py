"""Run a solution notebook where students run it, and keep the outputs of a full-budget run.

A unit's notebook runs in a real Jupyter kernel inside a copy of its student release, with the
solution's ``src/`` and notebook put back in, so that its public checks and data paths are the
students' own. The test suite does this at the small budget (``GMMCOURSE_BUDGET=small``).

``gmmcourse full-run UNIT`` does it at the full budget and writes
``solutions/<unit>/full_run/<unit>.ipynb``: today's solution notebook with that run's outputs and a
first cell that says how long the run took. The copy is never released; :func:`stale_problems`
(run by ``gmmcourse check`` and the tests) refuses one whose code is not today's notebook's.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

from gmmcourse import paths
from gmmcourse.errors import UserError

NOTE_ID = "full-run-note"  # the id of the first cell of a full-run copy, the one that describes it
FULL_RUN_CELL_TIMEOUT_S = 4 * 3600  # a unit 5 VAE cell trains for about 10 minutes


def full_run_path(unit: str) -> Path:
    """Where the full-budget run of ``unit``'s solution notebook is committed."""
    return paths.SOLUTIONS_DIR / unit / "full_run" / f"{unit}.ipynb"


def release_with_solution(nb_path: Path, workdir: Path) -> Path:
    """Copy the unit's student release to ``workdir`` and put the solution's src/ and notebook back.

    Parameters
    ----------
    nb_path : Path
        The solution notebook, ``solutions/<unit>/<unit>.ipynb``.
    workdir : Path
        A folder that does not exist yet.

    Returns
    -------
    Path
        ``workdir``.
    """
    unit = nb_path.parent.name
    release = paths.REPO_ROOT / "assignments" / unit
    if not release.is_dir():
        raise UserError(f"{release} does not exist; run `gmmcourse build {unit}` first")
    shutil.copytree(release, workdir)
    if (nb_path.parent / "src").is_dir():  # the solution's modules over the starter's (course_data stays)
        shutil.copytree(
            nb_path.parent / "src",
            workdir / "src",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copyfile(nb_path, workdir / nb_path.name)
    return workdir


def kernel_env(budget: str, threads: int | None) -> dict[str, str]:
    """Return the kernel's environment: the budget knob, the data folder and the BLAS threads.

    Parameters
    ----------
    budget : {"small", "full"}
        What the notebooks read from ``GMMCOURSE_BUDGET``.
    threads : int or None
        BLAS threads (None: the libraries' default, one per core).
    """
    env = dict(os.environ, GMMCOURSE_BUDGET=budget, GMMCOURSE_DATA=str(paths.REPO_ROOT / "data"))
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


class _EchoingClient(nbclient.NotebookClient):
    """A NotebookClient that hands each stream the kernel prints to ``echo`` as it arrives.

    A cell that trains for ten minutes then shows its progress lines while it runs.
    """

    echo = None

    def output(self, outs, msg, display_id, cell_index):
        if self.echo is not None and msg["msg_type"] == "stream":
            self.echo(msg["content"]["text"])
        return super().output(outs, msg, display_id, cell_index)


def execute(nb, workdir: Path, env: dict[str, str], cell_timeout: float, on_cell=None, echo=None) -> float:
    """Run every cell of ``nb`` (in place) in a fresh "python3" kernel started in ``workdir``.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook; its cells get the run's outputs and execution counts.
    workdir : Path
        The kernel's working folder (a release copy from :func:`release_with_solution`).
    env : dict
        The kernel's environment.
    cell_timeout : float
        Seconds one cell may take.
    on_cell : callable, optional
        Called as ``on_cell(index, cell)`` after each cell.
    echo : callable, optional
        Called with each piece of text the cells print, as they print it.

    Returns
    -------
    float
        Wall time of the whole run in seconds.

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        A cell raised; ``nb`` holds the outputs so far.
    """
    client = _EchoingClient(
        nb, timeout=cell_timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.echo = echo
    if on_cell is not None:
        client.on_cell_executed = lambda cell, cell_index, execute_reply: on_cell(cell_index, cell)
    start = time.perf_counter()
    client.execute(env=env)
    return time.perf_counter() - start


def with_outputs(unit: str, source, executed, seconds: float, load: tuple[float, ...], budget: str, threads):
    """``source`` (today's notebook of ``unit``) with ``executed``'s outputs, after a note on the run."""
    code = [c for c in executed.cells if c.cell_type == "code"]
    out = copy.deepcopy(source)
    for cell, ran in zip([c for c in out.cells if c.cell_type == "code"], code, strict=True):
        cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
        if "execution" in ran.metadata:  # per-cell start and end times
            cell.metadata["execution"] = ran.metadata["execution"]
    blas = "the libraries' default BLAS threads" if threads is None else f"{threads} BLAS thread(s)"
    note = nbformat.v4.new_markdown_cell(
        f"*This copy of the solution notebook carries the outputs of one run at the {budget} "
        f"budget (`GMMCOURSE_BUDGET={budget}`) in a Jupyter kernel on {os.cpu_count()} CPU "
        f"core(s), {blas}: "
        f"{seconds / 60:.1f} minutes wall time (load average at the start "
        f"{' '.join(f'{v:.2f}' for v in load)}). It is not released to students; "
        f"`gmmcourse full-run {unit}` makes it again, and `gmmcourse check` refuses a "
        f"copy whose code is not today's notebook's.*"
    )
    note.id = NOTE_ID
    out.cells.insert(0, note)
    return out


def run(unit: str, *, budget: str = "full", threads: int | None = None, out: Path | None = None) -> Path:
    """Run ``unit``'s solution notebook at ``budget`` and write the copy with its outputs.

    Nothing is written unless every cell ran without error; the copy replaces the old one in one
    step. Progress goes to stdout: what the cells print, as they print it, and each cell's end.

    Parameters
    ----------
    unit : str
        The unit's folder name.
    budget : {"full", "small"}
        The notebooks' budget knob ("small" is a quick rehearsal of the same steps).
    threads : int or None
        BLAS threads of the kernel.
    out : Path, optional
        Where to write (default :func:`full_run_path`).

    Returns
    -------
    Path
        The written notebook.
    """
    nb_path = paths.SOLUTIONS_DIR / unit / f"{unit}.ipynb"
    out = out or full_run_path(unit)
    source = nbformat.read(nb_path, as_version=4)
    executed = copy.deepcopy(source)
    load = os.getloadavg()
    started = time.perf_counter()

    def progress(index, cell):
        if cell.cell_type == "code":
            print(f"  cell {index:3d} done, {time.perf_counter() - started:7.1f} s so far", flush=True)

    def echo(text):
        print("".join(f"    | {line}\n" for line in text.splitlines()), end="", flush=True)

    with tempfile.TemporaryDirectory(prefix="gmmcourse-full-run-") as tmp:
        workdir = release_with_solution(nb_path, Path(tmp) / unit)
        try:
            env = kernel_env(budget, threads)
            seconds = execute(executed, workdir, env, FULL_RUN_CELL_TIMEOUT_S, progress, echo)
        except nbclient.exceptions.CellExecutionError as exc:
            raised = f"{exc.ename}: {exc.evalue}"  # the kernel's own error, without the colours
            raise UserError(f"{nb_path.name}: a cell raised {raised}; nothing was written") from None
        except (nbclient.exceptions.CellTimeoutError, nbclient.exceptions.DeadKernelError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{nb_path.name}: {first}; nothing was written") from None
    result = with_outputs(unit, source, executed, seconds, load, budget, threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        nbformat.write(result, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def stale_problems(run_path: Path, source_path: Path | None = None) -> list[str]:
    """Why a full-run copy cannot stand for today's notebook (empty: it can).

    It must have the code of ``source_path`` (default: the notebook beside its ``full_run``
    folder), every code cell run once, top to bottom, and no error output.
    """
    run_nb = nbformat.read(run_path, as_version=4)
    source = nbformat.read(source_path or run_path.parent.parent / run_path.name, as_version=4)
    name = run_path.relative_to(paths.REPO_ROOT) if run_path.is_relative_to(paths.REPO_ROOT) else run_path
    problems = []
    if [c.source for c in run_nb.cells if c.cell_type == "code"] != [
        c.source for c in source.cells if c.cell_type == "code"
    ]:
        unit = run_path.parent.parent.name
        problems.append(f"{name}: its code differs from the notebook's; run `gmmcourse full-run {unit}`")
    counts = [c.execution_count for c in run_nb.cells if c.cell_type == "code"]
    if counts != list(range(1, len(counts) + 1)):
        problems.append(f"{name}: the code cells were not run once each, top to bottom")
    errors = [o for c in run_nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        first = f"{errors[0].get('ename', '?')}: {errors[0].get('evalue', '')}"
        problems.append(f"{name}: {len(errors)} error output(s), the first {first}")
    return problems
