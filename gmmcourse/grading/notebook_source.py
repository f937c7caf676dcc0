"""Turn a submitted notebook into a Python module the worker can import.

Runs on the trusted side and never executes anything: the notebook is parsed as JSON and its code
cells as Python syntax (``ast``). IPython magics and shell escapes are dropped.
"""

from __future__ import annotations

import ast
import json

_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_literal_assignment(node) -> bool:
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    try:
        ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _tolerant(node):
    """An import wrapped in ``try/except ImportError`` (e.g. otter, which graders need not have)."""
    if not isinstance(node, (ast.Import, ast.ImportFrom)):
        return node
    handler = ast.ExceptHandler(type=ast.Name("ImportError", ast.Load()), name=None, body=[ast.Pass()])
    return ast.fix_missing_locations(ast.Try(body=[node], handlers=[handler], orelse=[], finalbody=[]))


def _strip_magics(source: str) -> str:
    lines = []
    for line in source.splitlines():
        if line.lstrip().startswith(("%", "!")):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}pass  # IPython magic removed")
        else:
            lines.append(line)
    return "\n".join(lines)


def _imports_skipped(node, skip: tuple[str, ...]) -> bool:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        names = [node.module or ""]
    else:
        return False
    return all(n.split(".")[0] in skip for n in names)


def to_module(data: bytes, name: str, keep: str = "definitions",
              skip_imports: tuple[str, ...] = ()) -> tuple[bytes, list[str]]:
    """Python source for the code cells of notebook ``data``; returns (source, notes).

    skip_imports: top-level packages whose imports are dropped in "definitions" mode (the notebook's
    own tools, e.g. otter or matplotlib, which graded functions do not need and which cost seconds).
    """
    notes: list[str] = []
    try:
        nb = json.loads(data.decode("utf-8"))
        cells = nb["cells"]
        assert isinstance(cells, list)
    except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError):
        return b"", [f"{name} is not a readable Jupyter notebook"]
    chunks = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            continue
        source = _strip_magics(source)
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            notes.append(f"{name}: code cell {number} has a syntax error (line {exc.lineno}); skipped")
            continue
        if keep == "definitions":
            tree.body = [_tolerant(n) for n in tree.body
                         if (isinstance(n, _DEFINITIONS) or _is_literal_assignment(n))
                         and not _imports_skipped(n, skip_imports)]
            if not tree.body:
                continue
            source = ast.unparse(tree)
        chunks.append(f"# --- code cell {number}\n{source}\n")
    return "\n".join(chunks).encode("utf-8"), notes
