"""A submission written against the CS136 Spring 2024 starter (tests/fixtures/unit3_cs136) is graded on
the functions its student wrote: full marks for the likelihoods, the E-step, the M-steps, the EM loss
and the fit history; the final parameters of its fit loop (one M-step past the last history entry)
lose only their own points, with a feedback sentence that says exactly that."""

from pathlib import Path

from gmmcourse.build.package import grade_with_zip
from gmmcourse.grading.spec import MISMATCH_KINDS
from tests.mutation_support import build_zip

UNIT = "unit3_gmm_em_lbfgs"
FIXTURE = Path(__file__).parent / "fixtures" / "unit3_cs136"

FULL_MARKS = [
    "calc_neg_log_lik (numpy)",
    "calc_neg_log_lik (autograd)",
    "estep__calc_r_NK",
    "calc_EM_loss",
    "mstep__update_log_pi_K",
    "mstep__update_mu_KD",
    "mstep__update_stddev_KD",
    "fit (EM): history",
]


def test_cs136_style_submission_is_graded_on_what_its_student_wrote(tmp_path):
    results = grade_with_zip(build_zip(UNIT, tmp_path), FIXTURE)
    tests = {t["name"]: t for t in results["tests"]}
    short = {
        name: (tests[name]["score"], tests[name]["max_score"])
        for name in FULL_MARKS
        if tests[name]["score"] < tests[name]["max_score"]
    }
    assert not short, short
    final = tests["fit (EM): final parameters"]
    assert final["score"] < final["max_score"]
    # every hidden case it fails says exactly why (where one more step changes nothing, e.g. K = 1
    # after convergence or N = 0, it passes)
    hidden = [line for line in final["output"].splitlines() if line.startswith("FAIL  [hidden]")]
    assert len(hidden) >= 3 and all(MISMATCH_KINDS["one_step_past"] in line for line in hidden), hidden
    print({name: (t["score"], t["max_score"]) for name, t in tests.items()}, results["score"])
