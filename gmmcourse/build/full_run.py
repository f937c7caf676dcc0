"""Run a solution notebook where students run it, and keep the outputs of a full-budget run.

A unit's notebook runs in a real Jupyter kernel inside a copy of its student release, with the
solution's ``src/`` and notebook put back in, so that its public checks and data paths are the
students' own. The test suite does this at the small budget (``GMMCOURSE_BUDGET=small``).

``gmmcourse full-run UNIT`` does it at the full budget and writes
``solutions/<unit>/full_run/<unit>.ipynb``: today's solution notebook with that run's outputs and a
first cell that says how long the run took. The copy is never released; :func:`stale_problems`
(run by ``gmmcourse check`` and the tests) refuses one whose code, text or ``src/`` modules are not
today's. ``gmmcourse full-run UNIT --text-only`` puts today's text into a copy whose code and
modules are unchanged, without running it again (answers quote the numbers of the run).
"""

from __future__ import annotations

import copy
import hashlib
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
SRC_DIGEST_KEY = "gmmcourse_src_sha256"  # in the note cell's metadata: the modules the run used
FULL_RUN_CELL_TIMEOUT_S = 4 * 3600  # a unit 5 VAE cell trains for about 10 minutes


def full_run_path(unit: str) -> Path:
    """Where the full-budget run of ``unit``'s solution notebook is committed."""
    return paths.SOLUTIONS_DIR / unit / "full_run" / f"{unit}.ipynb"


def src_digest(solution_dir: Path) -> str:
    """Return the SHA-256 of the names and bytes of the ``*.py`` files in ``solution_dir/src``.

    Those are the modules a run imports: a full-run copy keeps their digest, to tell that they
    changed after it was made.
    """
    digest = hashlib.sha256()
    src = solution_dir / "src"
    for path in sorted(src.glob("*.py")) if src.is_dir() else []:
        # line ends as LF, so that a checkout with CRLF line ends (git's autocrlf) digests the same
        digest.update(path.name.encode() + b"\0" + path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


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


def _outputs_into(source, executed):
    """Return a copy of notebook ``source`` whose code cells carry the outputs of ``executed``'s."""
    out = copy.deepcopy(source)
    code = [c for c in executed.cells if c.cell_type == "code"]
    for cell, ran in zip([c for c in out.cells if c.cell_type == "code"], code, strict=True):
        cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
        if "execution" in ran.metadata:  # per-cell start and end times
            cell.metadata["execution"] = ran.metadata["execution"]
    return out


def with_outputs(
    unit: str, source, executed, seconds: float, load: tuple[float, ...], budget: str, threads, digest: str
):
    """Return ``source`` (today's notebook of ``unit``) with ``executed``'s outputs, after a note.

    The note says how the run went; its metadata keeps ``digest``, the :func:`src_digest` of the
    modules the run imported.
    """
    out = _outputs_into(source, executed)
    blas = "the libraries' default BLAS threads" if threads is None else f"{threads} BLAS thread(s)"
    note = nbformat.v4.new_markdown_cell(
        f"*This copy of the solution notebook carries the outputs of one run at the {budget} "
        f"budget (`GMMCOURSE_BUDGET={budget}`) in a Jupyter kernel on {os.cpu_count()} CPU "
        f"core(s), {blas}: "
        f"{seconds / 60:.1f} minutes wall time (load average at the start "
        f"{' '.join(f'{v:.2f}' for v in load)}). It is not released to students; "
        f"`gmmcourse full-run {unit}` makes it again, and `gmmcourse check` refuses a "
        f"copy whose code, text or modules are not today's.*"
    )
    note.id = NOTE_ID
    note.metadata[SRC_DIGEST_KEY] = digest
    out.cells.insert(0, note)
    return out


def _write_atomically(nb, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        nbformat.write(nb, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def refresh_text(unit: str, out: Path | None = None) -> Path:
    """Put the text (markdown cells) of today's notebook into the full-run copy of ``unit``.

    Allowed only when the copy's code and modules are today's, so its outputs still stand.
    """
    nb_path = paths.SOLUTIONS_DIR / unit / f"{unit}.ipynb"
    out = out or full_run_path(unit)
    if not out.exists():
        raise UserError(f"{out} does not exist; run `gmmcourse full-run {unit}` first")
    notebooks = []
    for path in (out, nb_path):
        try:
            notebooks.append(nbformat.read(path, as_version=4))
        except (ValueError, nbformat.ValidationError) as exc:  # NotJSONError is a ValueError
            unreadable = f"{path} is not a readable notebook ({type(exc).__name__})"
            raise UserError(f"{unreadable}; run `gmmcourse full-run {unit}`") from None
    old, today = notebooks
    problems = _problems(old, today, out, nb_path, text=False)
    if problems:
        raise UserError(f"{problems[0]} (--text-only keeps a copy's outputs only when they still stand)")
    result = _outputs_into(today, old)
    result.cells.insert(0, old.cells[0])
    _write_atomically(result, out)
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
    digest = src_digest(nb_path.parent)
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
    _write_atomically(with_outputs(unit, source, executed, seconds, load, budget, threads, digest), out)
    return out


def stale_problems(run_path: Path, source_path: Path | None = None, *, text: bool = True) -> list[str]:
    """Why a full-run copy cannot stand for today's notebook (empty: it can).

    It must have the code and text of ``source_path`` (default: the notebook beside its ``full_run``
    folder), have been run with today's ``src/`` modules beside that notebook, have every code cell
    run once, top to bottom, and have no error output. ``text=False`` leaves the text unchecked
    (what ``--text-only`` is about to replace).
    """
    source_path = source_path or run_path.parent.parent / run_path.name
    run_nb = nbformat.read(run_path, as_version=4)
    source = nbformat.read(source_path, as_version=4)
    return _problems(run_nb, source, run_path, source_path, text=text)


def _problems(run_nb, source, run_path: Path, source_path: Path, *, text: bool) -> list[str]:
    """:func:`stale_problems` on notebooks already read (``run_nb`` from ``run_path``)."""
    name = run_path.relative_to(paths.REPO_ROOT) if run_path.is_relative_to(paths.REPO_ROOT) else run_path
    unit = source_path.parent.name
    note = run_nb.cells[0] if run_nb.cells and run_nb.cells[0].get("id") == NOTE_ID else None
    body = [c for c in run_nb.cells if c is not note]

    def sources(cells, kind):
        return [c.source for c in cells if c.cell_type == kind]

    problems = []
    if sources(body, "code") != sources(source.cells, "code"):
        problems.append(f"{name}: its code differs from the notebook's; run `gmmcourse full-run {unit}`")
    if note is None or note.metadata.get(SRC_DIGEST_KEY) != src_digest(source_path.parent):
        problems.append(
            f"{name}: it was not run with today's {unit}/src modules; run `gmmcourse full-run {unit}`"
        )
    if text and sources(body, "markdown") != sources(source.cells, "markdown"):
        problems.append(
            f"{name}: its text differs from the notebook's; run `gmmcourse full-run {unit} --text-only`"
        )
    counts = [c.execution_count for c in run_nb.cells if c.cell_type == "code"]
    if counts != list(range(1, len(counts) + 1)):
        problems.append(f"{name}: the code cells were not run once each, top to bottom")
    errors = [o for c in run_nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        first = f"{errors[0].get('ename', '?')}: {errors[0].get('evalue', '')}"
        problems.append(f"{name}: {len(errors)} error output(s), the first {first}")
    return problems
