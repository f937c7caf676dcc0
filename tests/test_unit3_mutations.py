"""Unit 3's autograder against realistic student bugs and correct-but-different answers.

Each mutant is the instructor solution with one edit (an exact snippet, so a change to the solution
that removes the snippet fails loudly here). Every bug must lose points; every alternative correct
implementation must earn full marks. Grading goes through the built autograder zip, as on Gradescope.
"""

import zipfile

import pytest

from gmmcourse import paths
from gmmcourse.grading import runner
from tests.mutation_support import build_zip, copy_src, lost_points, replace_once, replace_region, scores

UNIT = "unit3_gmm_em_lbfgs"
SRC = paths.SOLUTIONS_DIR / UNIT / "src"

# (name, file, exact old snippet, new snippet)
BUGS = [
    ("variance returned where the stddev is due", "GMM_PenalizedMLEstimator_EM.py",
     "return np.sqrt(var_KD)", "return var_KD"),
    ("penalty dropped from the variance update", "GMM_PenalizedMLEstimator_EM.py",
     "var_KD = (1.0 / (s * m) + spread_KD) / (1.0 / (s * m * m) + count_K[:, np.newaxis])",
     "var_KD = spread_KD / np.maximum(count_K[:, np.newaxis], 1e-300)"),
    ("responsibilities not normalized", "GMM_PenalizedMLEstimator_EM.py",
     "r_NK = np.exp(log_joint_NK - logsumexp(log_joint_NK, axis=1, keepdims=True))",
     "r_NK = np.exp(log_joint_NK)"),
    ("weights summed over the wrong axis", "GMM_PenalizedMLEstimator_EM.py",
     "count_K = np.sum(np.asarray(r_NK, dtype=np.float64), axis=0)\n        total",
     "count_K = np.sum(np.asarray(r_NK, dtype=np.float64), axis=1)\n        total"),
    ("no log-sum-exp in the likelihood", "calc_neg_log_lik__np.py",
     "return float(-np.sum(logsumexp(log_joint_NK, axis=1)))",
     "return float(-np.sum(np.log(np.sum(np.exp(log_joint_NK), axis=1))))"),
    ("off-by-one history (max_iter entries instead of max_iter + 1)", "GMM_PenalizedMLEstimator_EM.py",
     "for iter_id in range(self.max_iter + 1):", "for iter_id in range(self.max_iter):"),
    ("penalty without the factor 2", "calc_penalty_stddev.py",
     "/ (2.0 * s * m))", "/ (s * m))"),
    ("normalizing constant 2 pi forgotten", "calc_neg_log_lik__np.py",
     "const_K = log_pi_K - np.sum(np.log(stddev_KD), axis=1) - 0.5 * D * np.log(2 * np.pi)",
     "const_K = log_pi_K - np.sum(np.log(stddev_KD), axis=1)"),
    ("initial stddevs scaled by m instead of sqrt(m)", "GMM_PenalizedMLEstimator.py",
     "stddev_KD = np.sqrt(self.variance_penalty_mode) * (1.0 + prng.rand(K, D))",
     "stddev_KD = self.variance_penalty_mode * (1.0 + prng.rand(K, D))"),
    ("entropy term missing from the EM loss", "GMM_PenalizedMLEstimator_EM.py",
     "np.sum(weighted_NK) + np.sum(xlogy(r_NK, r_NK)))", "np.sum(weighted_NK))"),
    ("means divided by N instead of the component's count", "GMM_PenalizedMLEstimator_EM.py",
     "mu_KD[alive_K] = sum_KD[alive_K] / count_K[alive_K, np.newaxis] + data.center_D",
     "mu_KD[alive_K] = sum_KD[alive_K] / r_NK.shape[0] + data.center_D"),
    ("float() inside the autograd twin breaks differentiation", "calc_neg_log_lik__ag.py",
     "return -ag_np.sum(log_lik_N)",
     "return -float(ag_np.sum(log_lik_N))"),
    ("naive softplus overflows", "transform_softplus.py",
     "return ag_np.logaddexp(0.0, u)", "return ag_np.log(1.0 + ag_np.exp(u))"),
    ("L-BFGS loss without the penalty", "GMM_PenalizedMLEstimator_LBFGS.py",
     "return penalty + calc_neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD)",
     "return calc_neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD)"),
]

NAIVE_LOG_JOINT = '''    from scipy.stats import norm
    x_ND = getattr(x_ND, "x_ND", x_ND)
    x_ND = np.asarray(x_ND, dtype=np.float64)
    logpdf_NKD = norm.logpdf(x_ND[:, None, :], loc=np.asarray(mu_KD)[None], scale=np.asarray(stddev_KD)[None])
    return np.asarray(log_pi_K, dtype=np.float64)[None, :] + logpdf_NKD.sum(axis=2)
'''

DIRECT_MSTEP_STDDEV = '''        x_ND = np.asarray(getattr(x_ND, "x_ND", x_ND), dtype=np.float64)
        m, s = self.variance_penalty_mode, self.variance_penalty_spread
        diff_NKD = x_ND[:, None, :] - self.mu_KD[None, :, :]
        spread_KD = np.einsum("nk,nkd->kd", r_NK, diff_NKD ** 2)
        count_K = r_NK.sum(axis=0)
        return np.sqrt((1 / (s * m) + spread_KD) / (1 / (s * m * m) + count_K[:, None]))
'''

PLAIN_ESTEP = '''        log_joint_NK = calc_log_joint_NK(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD)
        return np.exp(log_joint_NK - logsumexp(log_joint_NK, axis=1)[:, None])
'''

WHERE_SOFTPLUS = '''    return ag_np.maximum(u, 0.0) + ag_np.log1p(ag_np.exp(-ag_np.abs(u)))
'''

OTHER_LOG_SOFTMAX = '''    import autograd.numpy as anp
    shift = anp.max(u_K)
    return u_K - shift - anp.log(anp.sum(anp.exp(u_K - shift)))
'''

# (name, {file: [(function name, new region body)]})
ALTERNATIVES = [
    ("naive scipy log-densities (broadcast over N, K, D)",
     {"calc_neg_log_lik__np.py": [("calc_log_joint_NK", NAIVE_LOG_JOINT)]}),
    ("E-step without a responsibility floor, variance by direct differences",
     {"GMM_PenalizedMLEstimator_EM.py": [("estep__calc_r_NK", PLAIN_ESTEP),
                                         ("mstep__update_stddev_KD", DIRECT_MSTEP_STDDEV)]}),
    ("softplus and log-softmax written another stable way",
     {"transform_softplus.py": [("softplus", WHERE_SOFTPLUS)],
      "transform_log_softmax.py": [("log_softmax", OTHER_LOG_SOFTMAX)]}),
]


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("name, file, old, new", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points(autograder_zip, tmp_path, name, file, old, new):
    sub = copy_src(UNIT, tmp_path)
    (sub / file).write_text(replace_once((sub / file).read_text(), old, new, file))
    assert lost_points(scores(autograder_zip, sub)), f"the bug {name!r} earned full marks"


@pytest.mark.parametrize("name, edits", ALTERNATIVES, ids=[a[0] for a in ALTERNATIVES])
def test_correct_alternative_earns_full_marks(autograder_zip, tmp_path, name, edits):
    sub = copy_src(UNIT, tmp_path)
    for file, changes in edits.items():
        text = (sub / file).read_text()
        for function, body in changes:
            text = replace_region(text, function, body)
        (sub / file).write_text(text)
    short = lost_points(scores(autograder_zip, sub))
    assert not short, f"a correct alternative lost points: {short}"


def test_a_zip_of_the_src_folder_is_graded_like_the_folder(autograder_zip, tmp_path):
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(SRC.glob("*.py")):
            if file.name != "prepared_data.py":  # a support file the grader supplies itself
                zf.write(file, f"my_work/src/{file.name}")
    table = scores(autograder_zip, archive)
    assert not lost_points(table), table
    assert sum(m for _, m in table.values()) == runner.load_unit(paths.AUTOGRADER_DIR / UNIT).max_score
