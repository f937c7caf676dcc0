"""Notebook submissions become the module the grader imports, as the notebook ran in Jupyter.

The cases are the ones that cost real students points: ``from __future__`` imports, magics and shell
lines (also in continuation lines and on the right of an assignment), constants built from
imports, matplotlib in graded functions, cell magics, deep nesting, files that are not notebooks.
"""

import subprocess
import sys

import nbformat
import pytest

from gmmcourse.grading import notebook_source


def _notebook(*cells: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a notebook")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
    return nbformat.writes(nb).encode()


def _load(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "submission.py", "exec"), namespace)
    return namespace


def test_future_import_is_hoisted_and_annotations_work():
    module = notebook_source.to_module(
        _notebook(
            "import numpy as np",
            "from __future__ import annotations\n\ndef f(x: np.ndarray) -> Later:\n    return 2 * x",
        ),
        "nb.ipynb",
    )
    assert module.source.startswith("from __future__ import annotations\n")
    assert _load(module.source)["f"](3) == 6


def test_magics_anywhere_do_not_drop_a_cell():
    module = notebook_source.to_module(
        _notebook(
            "%matplotlib inline\nimport numpy as np\n!pip list\nt = %timeit -o np.zeros(3)",
            "def mod3(a):\n    return (a \\\n  % 3)\nfiles = !ls\nK = 4",
        ),
        "nb.ipynb",
    )
    namespace = _load(module.source)
    assert namespace["mod3"](7) == 1 and namespace["K"] == 4
    assert "files" not in namespace and "t" not in namespace  # experiments are not re-run


def test_constants_a_function_needs_are_kept_and_experiments_dropped():
    module = notebook_source.to_module(
        _notebook(
            "import numpy as np\nLOG_2PI = np.log(2 * np.pi)\nHALF = LOG_2PI / 2\n"
            "big_experiment = np.ones(10**10)  # would fail if it ran",
            "def log_normal(x):\n    return -0.5 * x * x - HALF",
        ),
        "nb.ipynb",
    )
    namespace = _load(module.source)
    assert abs(namespace["log_normal"](0.0) + 0.9189385332046727) < 1e-15
    assert "big_experiment" not in namespace


def test_a_failing_needed_constant_leaves_the_rest_importable():
    module = notebook_source.to_module(
        _notebook(
            "import numpy as np\nDATA = np.load('no-such-file.npy')\ndef uses_data():\n    return DATA\n"
            "def fine():\n    return 1"
        ),
        "nb.ipynb",
    )
    namespace = _load(module.source)
    assert namespace["fine"]() == 1 and "DATA" not in namespace


def test_graded_function_may_use_matplotlib_with_agg():
    module = notebook_source.to_module(
        _notebook(
            "import matplotlib.pyplot as plt\nimport numpy as np",
            "def draw(x):\n    fig, ax = plt.subplots()\n    ax.plot(x)\n"
            "    plt.close(fig)\n    return len(x)",
        ),
        "nb.ipynb",
    )
    code = module.source + "\nprint(draw([1, 2, 3]))\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "3", proc.stderr


def test_imports_only_the_experiments_use_are_not_run():
    module = notebook_source.to_module(
        _notebook(
            "import numpy as np\nimport no_such_plotting as plotting\nfrom no_such_stats.dist import check\n"
            "from math import *\nimport os.path",
            "def f(x):\n    return np.sqrt(x) + floor(0.5)",  # floor comes from the star import
            "plotting.show(f(4.0))\ncheck(f)",
        ),
        "nb.ipynb",
    )
    assert "no_such_plotting" not in module.source and "no_such_stats" not in module.source
    assert "import os.path" not in module.source
    assert "from math import *" in module.source and "import numpy as np" in module.source
    assert _load(module.source)["f"](4.0) == 2.0


def test_cell_magic_time_keeps_its_definitions():
    module = notebook_source.to_module(_notebook("%%time\ndef g(x):\n    return x + 1"), "nb.ipynb")
    assert _load(module.source)["g"](1) == 2


def test_decorators_are_kept_and_lines_map_to_cells():
    module = notebook_source.to_module(
        _notebook("import functools", "@functools.lru_cache\ndef h(n):\n    raise ValueError(n)"), "nb.ipynb"
    )
    namespace = _load(module.source)
    assert hasattr(namespace["h"], "cache_info")
    raise_line = next(i for i, line in enumerate(module.source.splitlines(), 1) if "raise ValueError" in line)
    assert module.where(raise_line) == "notebook cell 3, line 3"  # cell 1 is the markdown title


def test_syntax_errors_and_deep_nesting_are_notes_not_crashes():
    module = notebook_source.to_module(
        _notebook(
            "def broken(:\n    pass",
            "x = " + "(" * 5000 + "1" + ")" * 5000,
            "def deep():\n    return " + "-" * 100_000 + "1",
            "def ok():\n    return 5",
        ),
        "nb.ipynb",
    )
    assert len(module.notes) == 3
    assert _load(module.source)["ok"]() == 5


@pytest.mark.parametrize("data", [b"not json", b"[" * 100_000 + b"]" * 100_000, b'{"cells": 3}', b"\xff\xfe"])
def test_not_a_notebook_is_one_clear_error(data):
    with pytest.raises(notebook_source.NotebookError, match="is not a Jupyter notebook"):
        notebook_source.to_module(data, "nb.ipynb")
