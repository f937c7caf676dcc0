"""Unit 4's autograder against realistic student bugs and correct-but-different answers.

Each mutant is the instructor solution with one edit (an exact snippet, so a change to the solution
that removes the snippet fails loudly here). Every bug must lose points; every alternative correct
implementation must earn full marks. Grading goes through the built autograder zip, as on Gradescope.
"""

import pytest

from gmmcourse import paths
from tests.mutation_support import (
    build_zip,
    copy_src,
    lost_points,
    replace_once,
    replace_region,
    scores,
    scores_on,
)

UNIT = "unit4_conditional_gmm"
SRC = paths.SOLUTIONS_DIR / UNIT / "src"
CGMM, MOE, DCGMM = (
    "ConditionalGMMRegressor.py",
    "MixtureOfExpertsRegressor.py",
    "DiscriminativeConditionalGMMRegressor.py",
)

# (name, file, exact old snippet, new snippet)
BUGS = [
    (
        "conditioning with the marginal covariance of y instead of the conditional one",
        CGMM,
        "return log_w_NK, mean_NKO, chol_KDD[:, I:, I:]",
        "return log_w_NK, mean_NKO, np.linalg.cholesky(cov_KDD[:, I:, I:])",
    ),
    (
        "input-dependent weights not normalised",
        CGMM,
        "log_w_NK = log_joint_NK - logsumexp_rows(log_joint_NK)[:, np.newaxis]",
        "log_w_NK = log_joint_NK",
    ),
    (
        "conditional mean ignores the input (mu_y only)",
        CGMM,
        "mean_NKO = mu_KD[np.newaxis, :, I:] + np.transpose(shift_KNO, (1, 0, 2))",
        "mean_NKO = mu_KD[np.newaxis, :, I:] + 0.0 * np.transpose(shift_KNO, (1, 0, 2))",
    ),
    (
        "gate weights not normalised",
        MOE,
        "return logits_NK - logsumexp_rows(logits_NK)[:, np.newaxis]",
        "return logits_NK",
    ),
    (
        "score summed instead of averaged",
        "conditional_mixture.py",
        "return float(np.mean(self.score_samples(X, y)))",
        "return float(np.sum(self.score_samples(X, y)))",
    ),
    (
        "log-determinant without the factor 2",
        "gaussian_math.py",
        "log_det_K = 2.0 * np.sum(",
        "log_det_K = np.sum(",
    ),
    (
        "normalizing constant 2 pi forgotten",
        "gaussian_math.py",
        "return -0.5 * (maha_NK + log_det_K + D * np.log(2.0 * np.pi))",
        "return -0.5 * (maha_NK + log_det_K)",
    ),
    (
        "whitening with L^-T instead of L^-1",
        "gaussian_math.py",
        "np.matmul(np.transpose(diff_NKD, (1, 0, 2)), np.swapaxes(chol_inv_KDD, 1, 2))",
        "np.matmul(np.transpose(diff_NKD, (1, 0, 2)), chol_inv_KDD)",
    ),
    (
        "reg_covar not added to the joint covariances",
        CGMM,
        "cov_KDD[k] += self.reg_covar * np.eye(D)",
        "cov_KDD[k] += 0.0 * np.eye(D)",
    ),
    (
        "covariance divided by N instead of the component's count",
        CGMM,
        "cov_KDD[k] = (r_NK[:, k, np.newaxis] * diff_ND).T @ diff_ND / count_K[k]",
        "cov_KDD[k] = (r_NK[:, k, np.newaxis] * diff_ND).T @ diff_ND / N",
    ),
    (
        "expert least squares weighted by r instead of sqrt(r) (weights squared)",
        MOE,
        "sqrt_r_N1 = np.sqrt(r_NK[:, k])[:, np.newaxis]",
        "sqrt_r_N1 = r_NK[:, k][:, np.newaxis]",
    ),
    (
        "gate loss not divided by N (penalty too weak)",
        MOE,
        "return -np.sum(r_NK * log_gate_NK) / N + ",
        "return -np.sum(r_NK * log_gate_NK) + ",
    ),
    (
        "sampler multiplies by L^T instead of L",
        "gaussian_math.py",
        'np.einsum("nsij,nsj->nsi", chol_KDD[k_NS], eps_NSD)',
        'np.einsum("nsji,nsj->nsi", chol_KDD[k_NS], eps_NSD)',
    ),
    (
        "predict averages the component means without their weights",
        "conditional_mixture.py",
        'return np.einsum("nk,nko->no", np.exp(log_w_NK), mean_NKO)',
        "return np.mean(mean_NKO, axis=1)",
    ),
    (
        "discriminative covariances without reg_covar",
        DCGMM,
        "cov_KDD = np.matmul(A_KDD, np.swapaxes(A_KDD, 1, 2)) + self.reg_covar * np.eye(D)",
        "cov_KDD = np.matmul(A_KDD, np.swapaxes(A_KDD, 1, 2))",
    ),
]

LOOP_LOG_PDF = """    N, K, D = diff_NKD.shape
    columns = []
    for k in range(K):
        cov_DD = np.dot(chol_KDD[k], chol_KDD[k].T)
        solved_DN = np.linalg.solve(cov_DD, diff_NKD[:, k, :].T)
        maha_N = np.sum(diff_NKD[:, k, :].T * solved_DN, axis=0)
        columns.append(-0.5 * (maha_N + np.linalg.slogdet(cov_DD)[1] + D * np.log(2 * np.pi)))
    return np.stack(columns, axis=1)
"""

TEXTBOOK_CONDITION = """    I = x_NI.shape[1]
    log_joint, means, chols = [], [], []
    for k in range(len(log_pi_K)):
        S = cov_KDD[k]
        d_NI = x_NI - mu_KD[k, :I]
        maha_N = np.sum(d_NI * np.linalg.solve(S[:I, :I], d_NI.T).T, axis=1)
        log_det = np.linalg.slogdet(S[:I, :I])[1]
        log_joint.append(log_pi_K[k] - 0.5 * (maha_N + log_det + I * np.log(2 * np.pi)))
        gain_OI = np.linalg.solve(S[:I, :I], S[:I, I:]).T
        means.append(mu_KD[k, I:] + np.dot(d_NI, gain_OI.T))
        chols.append(np.linalg.cholesky(S[I:, I:] - np.dot(gain_OI, S[:I, I:])))
    log_joint_NK = np.stack(log_joint, axis=1)
    top_N1 = np.max(log_joint_NK, axis=1, keepdims=True)
    log_norm_N1 = top_N1 + np.log(np.sum(np.exp(log_joint_NK - top_N1), axis=1, keepdims=True))
    return log_joint_NK - log_norm_N1, np.stack(means, axis=1), np.stack(chols)
"""

SCORE_AS_SUM_OVER_N = """        log_lik_N = self.score_samples(X, y)
        return float(np.sum(log_lik_N) / log_lik_N.shape[0])
"""

# (name, {file: [(function name, new region body)]})
ALTERNATIVES = [
    (
        "log densities by solve and slogdet, one component at a time",
        {"gaussian_math.py": [("calc_log_pdf_NK", LOOP_LOG_PDF)]},
    ),
    (
        "conditioning by the textbook formulas (solve, slogdet)",
        {CGMM: [("condition_joint_gmm", TEXTBOOK_CONDITION)]},
    ),
    ("score as a sum divided by N", {"conditional_mixture.py": [("score", SCORE_AS_SUM_OVER_N)]}),
]


# The tests that exercise each file directly: a bug is graded on these only (so the suite stays
# cheap); the correct alternatives are graded on every test.
TESTS_OF = {
    "gaussian_math.py": ["calc_log_pdf_NK", "whiten_KND and calc_mixture_log_lik_N", "sample_mixture"],
    CGMM: [
        "condition_joint_gmm",
        "ConditionalGMMRegressor.estep__calc_r_NK",
        "ConditionalGMMRegressor.mstep__update_params",
        "ConditionalGMMRegressor.fit",
    ],
    "conditional_mixture.py": ["predict, score_samples and score", "sample", "ConditionalGMMRegressor.fit"],
    MOE: [
        "MixtureOfExpertsRegressor.estep__calc_r_NK",
        "MixtureOfExpertsRegressor.mstep__update_experts",
        "the gate",
        "MixtureOfExpertsRegressor.fit",
    ],
    DCGMM: [
        "DiscriminativeConditionalGMMRegressor.calc_loss and transforms",
        "DiscriminativeConditionalGMMRegressor.fit",
    ],
}


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("name, file, old, new", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points(autograder_zip, tmp_path, monkeypatch, name, file, old, new):
    sub = copy_src(UNIT, tmp_path)
    (sub / file).write_text(replace_once((sub / file).read_text(), old, new, file))
    lost = lost_points(scores_on(autograder_zip, sub, TESTS_OF[file], monkeypatch))
    assert lost, f"the bug {name!r} earned full marks on {TESTS_OF[file]}"


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
