"""Turn a submitted notebook into a Python module the worker can import.

Runs on the trusted side and never executes anything: the notebook is parsed as JSON, each code
cell is turned into plain Python by IPython's own input transformers (the code Jupyter runs for
``%magics``, ``!shell`` lines and their continuation lines), and parsed with ``ast``.

With ``keep="definitions"`` the module holds, in notebook order:

- every function and class definition;
- module-level assignments of literal values, and any other module-level assignment a kept
  definition needs (directly or through other assignments), e.g. ``LOG_2PI = np.log(2 * np.pi)``.
  A needed assignment that fails while loading leaves its name undefined instead of failing the
  whole module;
- the imports that bind a name the kept code reads (and every ``from m import *``), each wrapped so
  that a package the grader does not have (otter, say) cannot stop the module from loading;
  ``from __future__`` imports open the module.

Everything else (experiments, plots, prints, and the imports only they use) is dropped, so grading
never re-runs the notebook's heavy work. A worker starts once per test: unit 1's notebook imports
matplotlib and scipy.stats for its plots and check cells, which took each worker 2.8 s to import
against 1.0 s for the numpy and scipy.linalg its graded functions use (grading the solution
notebook: 21.8 s before, 5.8 s after). The one pattern this can break is a kept function that
reaches a submodule as an attribute (``sp.stats.norm``) which only a dropped import loaded, in a
package that does not load its submodules on demand (numpy and scipy do). With ``keep="all"`` every
cell runs, in order.

This file is also copied into the student release (``public_checks/``), so the public checks turn
a notebook into a module exactly as the autograder does; it imports only the standard library and
IPython.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field

# Cell magics whose body is ordinary code of the notebook (timing and output capture).
_TRANSPARENT_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_IMPORTS = (ast.Import, ast.ImportFrom)
_ASSIGNMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign)
_PRELUDE = (
    "def get_ipython():  # no IPython while grading: magics and shell lines do nothing\n"
    "    class _NoShell:\n"
    "        def __getattr__(self, name):\n"
    "            return lambda *args, **kwargs: None\n"
    "    return _NoShell()\n"
)


class NotebookError(ValueError):
    """The file is not a notebook that can be read."""


@dataclass
class Extracted:
    """The module source and, for each of its lines, the notebook cell and line it came from."""

    source: str
    notes: list[str] = field(default_factory=list)
    line_map: dict[int, tuple[int, int]] = field(default_factory=dict)  # module line -> (cell, line)

    def where(self, line: int) -> str | None:
        """'cell C, line L' for a line of the module, or None for the grader's own lines."""
        if line not in self.line_map:
            return None
        cell, cell_line = self.line_map[line]
        return f"notebook cell {cell}, line {cell_line}"


def _to_python(source: str) -> str:
    """IPython's transformation of one cell (magics become calls of ``get_ipython()``)."""
    from IPython.core.inputtransformer2 import TransformerManager

    first, _, rest = source.lstrip().partition("\n")
    if first.split()[:1] and first.split()[0] in _TRANSPARENT_CELL_MAGICS:
        source = "\n" * (len(source) - len(source.lstrip()) + 1) + rest  # keep line numbers
    return TransformerManager().transform_cell(source)


def _cells(data: bytes, name: str) -> list[tuple[int, str]]:
    """(cell number counting from 1, source) of every code cell."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise NotebookError(f"{name} is not a Jupyter notebook (not valid JSON)") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise NotebookError(f"{name} is not a Jupyter notebook (no list of cells)")
    out = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str) and source.strip():
            out.append((number, source))
    return out


def _names_loaded(node: ast.AST) -> set[str]:
    """Find the names a statement reads from the module's globals.

    Roughly: a function's parameters and the names it assigns are its own, unless declared
    ``global``.

    Parameters
    ----------
    node : ast.AST
        One top-level statement.

    Returns
    -------
    set of str
        The global names it loads.
    """
    loaded = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    own: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = inner.args
            own |= {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
            own |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
            own |= {n.id for n in ast.walk(inner) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    globals_declared = {name for n in ast.walk(node) if isinstance(n, ast.Global) for name in n.names}
    return loaded - (own - globals_declared)


def _names_bound(node: ast.AST) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _is_literal(node: ast.AST) -> bool:
    value = getattr(node, "value", None)
    if value is None or isinstance(node, ast.AugAssign):
        return False
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _import_names(node: ast.Import | ast.ImportFrom) -> set[str] | None:
    """Return the names an import binds (``import a.b`` binds ``a``); None for ``from m import *``."""
    if any(alias.name == "*" for alias in node.names):
        return None
    return {alias.asname or alias.name.split(".")[0] for alias in node.names}


def _needed(statements: list[ast.stmt]) -> tuple[set[int], set[str]]:
    """Find the assignments that kept definitions need, directly or through each other.

    Parameters
    ----------
    statements : list of ast.stmt
        The notebook's top-level statements, in order.

    Returns
    -------
    keep : set of int
        Indices into ``statements`` of the needed assignments (literal ones always count).
    needed : set of str
        The global names the definitions and those assignments read.
    """
    needed: set[str] = set()
    for node in statements:
        if isinstance(node, _DEFINITIONS):
            needed |= _names_loaded(node)
    keep: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, node in enumerate(statements):
            if i in keep or not isinstance(node, _ASSIGNMENTS):
                continue
            if _is_literal(node) or _names_bound(node) & needed:
                keep.add(i)
                needed |= _names_loaded(node)
                changed = True
    return keep, needed


def _guarded(segment: str, kind: str) -> list[str]:
    """Wrap one statement so that its failure cannot stop the module from loading."""
    body = ["    " + line for line in segment.splitlines()]
    return ["try:", *body, f"except {kind}:", "    pass"]


def _segment(parsed, i) -> tuple[int, str]:
    """(first line, source text) of statement i, decorators included, as the student wrote it."""
    cell, source, node = parsed[i]
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    shares_line = any(
        other is not node and c == cell and o.lineno <= node.end_lineno and o.end_lineno >= start
        for c, _, o in parsed[max(0, i - 1) : i + 2]
        for other in [o]
    )
    if node.col_offset != 0 or shares_line:
        return start, ast.unparse(node)
    return start, "\n".join(source.splitlines()[start - 1 : node.end_lineno])


def _parse_cells(data: bytes, name: str) -> tuple[list[tuple[int, str, ast.stmt]], list[str]]:
    """Parse every code cell into its top-level statements; skip the cells that cannot be parsed.

    Parameters
    ----------
    data : bytes
        The notebook file.
    name : str
        The notebook's name, for notes and errors.

    Returns
    -------
    parsed : list of tuple of (int, str, ast.stmt)
        For each statement, in notebook order: its cell number, the cell's transformed source and
        the statement.
    notes : list of str
        One note per skipped cell (a syntax error, or code nested too deeply).

    Raises
    ------
    NotebookError
        ``data`` is not a notebook.
    """
    parsed: list[tuple[int, str, ast.stmt]] = []
    notes: list[str] = []
    for number, raw in _cells(data, name):
        try:
            source = _to_python(raw)
            tree = ast.parse(source)
        except (SyntaxError, ValueError) as exc:
            line = getattr(exc, "lineno", None)
            notes.append(
                f"{name}: code cell {number} has a syntax error"
                + (f" (line {line})" if line else "")
                + "; it was skipped"
            )
            continue
        except (RecursionError, MemoryError):
            notes.append(f"{name}: code cell {number} is nested too deeply to read; it was skipped")
            continue
        parsed.extend((number, source, node) for node in tree.body)
    return parsed, notes


def _chosen(statements: list[ast.stmt], keep: str, name: str) -> list[int]:
    """Select the statements the module keeps.

    Parameters
    ----------
    statements : list of ast.stmt
        The notebook's top-level statements, in order.
    keep : {'definitions', 'all'}
        'definitions' keeps definitions and the assignments and imports they need; 'all' keeps
        everything.
    name : str
        The notebook's name, for errors.

    Returns
    -------
    list of int
        Indices into ``statements``, in order.

    Raises
    ------
    NotebookError
        The code is nested too deeply to tell which assignments are needed.
    """
    if keep != "definitions":
        return list(range(len(statements)))
    try:
        wanted, needed = _needed(statements)
    except RecursionError:
        raise NotebookError(f"{name}: its code is nested too deeply to read") from None

    def kept(node: ast.stmt) -> bool:
        if isinstance(node, _IMPORTS):
            names = _import_names(node)
            return names is None or bool(names & needed)
        return isinstance(node, _DEFINITIONS)

    return [i for i, node in enumerate(statements) if i in wanted or kept(node)]


def _future_imports(statements: list[ast.stmt]) -> list[str]:
    """Collect the ``from __future__`` imports, which must open the module.

    Parameters
    ----------
    statements : list of ast.stmt
        The notebook's top-level statements.

    Returns
    -------
    list of str
        One sorted import line per feature, each once.
    """
    return sorted(
        {
            f"from __future__ import {alias.name}"
            for node in statements
            if isinstance(node, ast.ImportFrom) and node.module == "__future__"
            for alias in node.names
        }
    )


def _block(node: ast.stmt, segment: str, keep: str) -> tuple[list[str], int]:
    """Lay out the module lines of one kept statement.

    Parameters
    ----------
    node : ast.stmt
        The statement.
    segment : str
        Its source text.
    keep : {'definitions', 'all'}
        As in :func:`to_module`; with 'definitions', computed assignments are guarded.

    Returns
    -------
    block : list of str
        The lines: imports and computed assignments wrapped in ``try``, the rest as written.
    offset : int
        How many wrapper lines come before the statement's first line (0 or 1).
    """
    if isinstance(node, _IMPORTS):
        return _guarded(segment, "ImportError"), 1
    if isinstance(node, _ASSIGNMENTS) and keep == "definitions" and not _is_literal(node):
        return _guarded(segment, "Exception"), 1
    return segment.splitlines(), 0


def to_module(data: bytes, name: str, keep: str = "definitions") -> Extracted:
    """Build the Python module of the code cells of a notebook.

    Parameters
    ----------
    data : bytes
        The notebook file.
    name : str
        The notebook's name, used in notes and errors.
    keep : {'definitions', 'all'}, default='definitions'
        'definitions' keeps definitions and the assignments and imports they need; 'all' keeps
        every statement.

    Returns
    -------
    Extracted
        The module source, the notes (a cell with a syntax error is skipped and reported there)
        and the map from module lines to notebook cells and lines.

    Raises
    ------
    NotebookError
        ``data`` is not a notebook, or its code is nested too deeply to read.
    """
    parsed, notes = _parse_cells(data, name)
    statements = [node for _, _, node in parsed]
    chosen = _chosen(statements, keep, name)
    out = Extracted("", notes)
    lines = _future_imports(statements)
    lines.extend(_PRELUDE.splitlines())
    for i in chosen:
        cell, _, node = parsed[i]
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        try:
            start, segment = _segment(parsed, i)
        except RecursionError:
            out.notes.append(
                f"{name}: a statement of code cell {cell} is nested too deeply to read; it was skipped"
            )
            continue
        block, offset = _block(node, segment, keep)
        lines.append(f"# --- notebook cell {cell}")
        for k, text in enumerate(block):
            lines.append(text)
            if offset <= k < len(block) - 2 * offset:
                out.line_map[len(lines)] = (cell, start + k - offset)
    out.source = "\n".join(lines) + "\n"
    return out
