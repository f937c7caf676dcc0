"""Unit 3's student release carries the questions, never the answers: no number that the solution's
written answers state appears in the released notebook or README, and README and notebook ask the
same questions and say what to hand in."""

import re

import nbformat
import pytest

from gmmcourse import paths

UNIT = "unit3_gmm_em_lbfgs"
SOLUTION_NOTEBOOK = paths.SOLUTIONS_DIR / UNIT / f"{UNIT}.ipynb"
RELEASE = paths.ASSIGNMENTS_DIR / UNIT
# a decimal number such as 0.756, -1.301 or 0.0200 (not part of a longer word or number)
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")


def _answer_numbers():
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    answers = [
        c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "markdown"
    ]
    assert len(answers) == 4, "expected one written-answer cell per question"
    return sorted({n.lstrip("-") for text in answers for n in NUMBER.findall(text)})


def _release_texts():
    nb = nbformat.read(RELEASE / f"{UNIT}.ipynb", as_version=4)
    yield f"{UNIT}.ipynb", "\n".join(c.source for c in nb.cells)
    yield "README.md", (RELEASE / "README.md").read_text()


def test_the_solution_answers_state_numbers():
    assert len(_answer_numbers()) >= 20  # the answers quote the run; otherwise this test tests nothing


@pytest.mark.parametrize("name, text", list(_release_texts()), ids=lambda v: v if len(v) < 40 else "")
def test_no_answer_number_in_the_release(name, text):
    found = {n.lstrip("-") for n in NUMBER.findall(text)}
    leaked = sorted(found & set(_answer_numbers()))
    assert not leaked, f"{name} contains numbers from the solution's answers: {leaked}"
    assert "Discussion" not in text
    assert "### BEGIN SOLUTION" not in text


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
