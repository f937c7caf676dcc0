"""Every unit's student release carries the questions, never the answers.

No decimal number that a solution's written answers state appears in the released notebook or README,
except the numbers the question itself hands to the students (a published report's table, a split
size, a ridge the notebook sets); those are declared below, per unit, with where they come from. The
released notebook also has no solution marker and no answer text.
"""

import re

import nbformat
import pytest

from gmmcourse import paths

UNITS = paths.available_units()
# a decimal number such as 0.756, -1.301 or 0.0200 (not part of a longer word or number)
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")

GIVEN = {  # numbers an answer may repeat because the released question states them too
    "unit4_conditional_gmm": {
        "0.3",  # test_size=0.3 of the study's split, and a ridge of the per-label baseline's grid
    },
    "unit5_density_models": {
        "142.8",  # the report's table (README, Question 1 and Question 4, the notebook's tables) ...
        "142.81",
        "157.05",
        "0.0375",
        "0.0444",
        "4329.7",
        "1.07",  # ... and its GMM row, -1.07 x 10^7
        "0.01",  # GMM_REG, the ridge the notebook's code sets
    },
}


def _answer_cells(unit):
    nb = nbformat.read(paths.SOLUTIONS_DIR / unit / f"{unit}.ipynb", as_version=4)
    return [
        c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "markdown"
    ]


def _numbers(text):
    return {n.lstrip("-") for n in NUMBER.findall(text)}


def _release_texts(unit):
    release = paths.ASSIGNMENTS_DIR / unit
    nb = nbformat.read(release / f"{unit}.ipynb", as_version=4)
    yield f"{unit}.ipynb", "\n".join(c.source for c in nb.cells)
    yield "README.md", (release / "README.md").read_text()


@pytest.mark.parametrize("unit", UNITS)
def test_the_written_answers_state_numbers(unit):
    answers = _answer_cells(unit)
    assert len(answers) >= 4, f"{unit}: expected a written-answer cell per question"
    # the answers quote their runs; with no numbers in them the test below would test nothing
    assert len(set().union(*map(_numbers, answers))) >= 5


@pytest.mark.parametrize("unit", UNITS)
def test_no_answer_number_in_the_release(unit):
    answer_numbers = set().union(*map(_numbers, _answer_cells(unit)))
    given = GIVEN.get(unit, set())
    for name, text in _release_texts(unit):
        leaked = sorted((_numbers(text) & answer_numbers) - given)
        assert not leaked, f"{unit}/{name} contains numbers from the solution's answers: {leaked}"
        assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text, f"{unit}/{name}"


@pytest.mark.parametrize("unit", sorted(GIVEN))
def test_each_given_number_is_in_the_question(unit):
    """The exemptions stay honest: each one is stated by the released question, and is quoted by an
    answer (otherwise it exempts nothing and should go)."""
    released = set().union(*(_numbers(text) for _, text in _release_texts(unit)))
    answered = set().union(*map(_numbers, _answer_cells(unit)))
    for number in GIVEN[unit]:
        assert number in released, f"{unit}: {number} is declared given but the release does not state it"
        assert number in answered, f"{unit}: {number} is declared given but no answer quotes it"
