"""Unit 3's student release: README and notebook ask the same questions and say what to hand in, and
no text but the notebook's own output makes a timing claim. (That no release carries an answer is
tests/test_release_hides_answers.py, for every unit.)"""

import re

import nbformat

from gmmcourse import paths

UNIT = "unit3_gmm_em_lbfgs"
SOLUTION_NOTEBOOK = paths.SOLUTIONS_DIR / UNIT / f"{UNIT}.ipynb"
RELEASE = paths.ASSIGNMENTS_DIR / UNIT


def _release_texts():
    nb = nbformat.read(RELEASE / f"{UNIT}.ipynb", as_version=4)
    yield f"{UNIT}.ipynb", "\n".join(c.source for c in nb.cells)
    yield "README.md", (RELEASE / "README.md").read_text()


def test_readme_and_notebook_ask_the_same_questions_and_say_what_to_hand_in():
    texts = dict(_release_texts())
    notebook_questions = re.findall(r"\*\*(Q\d)\.\*\*", texts[f"{UNIT}.ipynb"])
    readme_questions = re.findall(r"\*\*(Q\d)\*\*", texts["README.md"])
    assert notebook_questions == readme_questions == ["Q1", "Q2", "Q3", "Q4"]
    readme = texts["README.md"]
    assert f"{UNIT}.ipynb" in readme and "Gradescope" in readme
    for package in ("numpy", "scipy", "autograd", "matplotlib", "pandas"):
        assert f"`{package}`" in readme, package


def test_no_timing_claim_in_any_text_but_the_notebooks_own_output():
    """Seconds and speed ratios come only from what the notebook prints in its run."""
    claim = re.compile(r"\d+(\.\d+)?\s*(s|sec|seconds)\b|\b(twice|three|four|five) times\b", re.I)
    readme = (RELEASE / "README.md").read_text()
    assert not claim.search(readme), claim.search(readme).group(0)
    for path in (SOLUTION_NOTEBOOK, RELEASE / f"{UNIT}.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":  # code cells print the run's own timings
                assert not claim.search(cell.source), (path.name, claim.search(cell.source).group(0))
