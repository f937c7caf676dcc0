"""Hidden tests for unit 4 (conditional Gaussian mixtures: joint GMM conditioned on x, mixture of
experts, discriminative conditional GMM).

A table of cases per graded function. Inputs are built here from fixed seeds (and, where it matters,
from the course's digits split); reference values come from ``references.npz`` (``gmmcourse refs
unit4``). Cases marked public ship with the release. Samplers and whole discriminative fits are
graded by properties the probe measures (``Within``).
"""

import numpy as np
from scipy.stats import multivariate_normal

from gmmcourse.grading.spec import Case, Close, Limits, Submission, Test, Within

UNIT = "unit4_conditional_gmm"
SUBMISSION = Submission(
    kind="py",
    files=(
        "gaussian_math.py",
        "conditional_mixture.py",
        "ConditionalGMMRegressor.py",
        "MixtureOfExpertsRegressor.py",
        "DiscriminativeConditionalGMMRegressor.py",
    ),
)
LIMITS = Limits(cpu_seconds=120, memory_bytes=3 * 1024**3, grading_seconds=300.0)

TIGHT = Close(rtol=1e-7, atol=1e-9)
LOOSE = Close(rtol=1e-5, atol=1e-7)
GATE = Close(rtol=1e-3, atol=1e-5)  # the gate is the optimum of an iterative fit
FIT = Close(rtol=1e-3, atol=1e-4)  # whole EM fits whose M-step includes that gate fit
ONE = Within(1.0, 1.0)
SAMPLE = {
    "shape_ok": ONE,
    "reproducible": ONE,
    "max_abs_z_mean": Within(0.0, 4.5),
    "max_var_ratio_error": Within(0.0, 0.2),
    "max_abs_corr_error": Within(0.0, 0.15),
}


# --------------------------------------------------------------------------- input builders


def _spd(rng, K, D, floor=0.3):
    A = rng.randn(K, D, D) / np.sqrt(D)
    return A @ np.swapaxes(A, 1, 2) + floor * np.eye(D)


def _chol(seed, K, D, floor=0.3):
    return np.linalg.cholesky(_spd(np.random.RandomState(seed), K, D, floor))


def _log_w(seed, N, K, dead=None):
    w = np.random.RandomState(seed).dirichlet(np.ones(K), size=N)
    if dead is not None:
        w[:, dead] = 0.0
        w /= w.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(w)


def _joint(seed, K, I, O, one_hot=False, floor=0.3):
    """Joint-GMM parameters on [x, y]; with one_hot the x-means sit in the simplex."""
    rng = np.random.RandomState(seed)
    mu = rng.randn(K, I + O)
    if one_hot:
        mu[:, :I] = rng.dirichlet(np.ones(I), size=K)
    return {"log_pi_K": np.log(rng.dirichlet(np.ones(K))), "mu_KD": mu, "cov_KDD": _spd(rng, K, I + O, floor)}


def _one_hot(seed, N, I):
    return np.eye(I)[np.random.RandomState(seed).randint(I, size=N)]


def _xy(seed, N, I, O, one_hot=False, K=3):
    """Inputs and targets from K random linear regimes."""
    rng = np.random.RandomState(seed)
    x = _one_hot(seed + 1, N, I) if one_hot else rng.randn(N, I)
    W = rng.randn(K, I, O)
    k = rng.randint(K, size=N)
    return x, np.einsum("ni,nio->no", x, W[k]) + rng.randn(K, O)[k] + 0.3 * rng.randn(N, O)


def _resp(seed, N, K, zero_column=None):
    r = np.random.RandomState(seed).dirichlet(np.ones(K), size=N)
    if zero_column is not None:
        r[:, zero_column] = 0.0
        r /= r.sum(axis=1, keepdims=True)
    return r


def _hard_resp(seed, N, K):
    return np.eye(K)[np.random.RandomState(seed).randint(K, size=N)]


def _moe(seed, K, I, O):
    rng = np.random.RandomState(seed)
    return {
        "gate_coef_IK": rng.randn(I, K),
        "gate_intercept_K": rng.randn(K),
        "coef_KIO": rng.randn(K, I, O),
        "intercept_KO": rng.randn(K, O),
        "cov_KOO": _spd(rng, K, O),
    }


def _digits():
    """The course's digits split: one-hot labels, 20 PCA coordinates of the scaled pixels."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    y = PCA(n_components=20).fit_transform(StandardScaler().fit_transform(digits.data))
    return train_test_split(np.eye(10)[digits.target], y, test_size=0.3, random_state=42)


# --------------------------------------------------------------------------- true conditional moments


def _cgmm_moments(params, x_NI):
    """Mean and covariance of p(y | x) of a joint GMM, the textbook way (solve, scipy densities)."""
    I = x_NI.shape[1]
    log_w, means, covs = [], [], []
    for k in range(len(params["log_pi_K"])):
        mu, S = params["mu_KD"][k], params["cov_KDD"][k]
        log_w.append(params["log_pi_K"][k] + multivariate_normal(mu[:I], S[:I, :I]).logpdf(x_NI))
        gain = np.linalg.solve(S[:I, :I], S[:I, I:]).T
        means.append(mu[I:] + (x_NI - mu[:I]) @ gain.T)
        covs.append(S[I:, I:] - gain @ S[:I, I:])
    log_w = np.array(log_w).T.reshape(len(x_NI), -1)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return _mixture_moments(w / w.sum(axis=1, keepdims=True), np.stack(means, axis=1), np.array(covs))


def _moe_moments(params, x_NI):
    logits = x_NI @ params["gate_coef_IK"] + params["gate_intercept_K"]
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    means = np.einsum("ni,kio->nko", x_NI, params["coef_KIO"]) + params["intercept_KO"]
    return _mixture_moments(w / w.sum(axis=1, keepdims=True), means, params["cov_KOO"])


def _mixture_moments(w_NK, mean_NKO, cov_KOO):
    mean = np.einsum("nk,nko->no", w_NK, mean_NKO)
    second = np.einsum("nk,kop->nop", w_NK, cov_KOO) + np.einsum("nk,nko,nkp->nop", w_NK, mean_NKO, mean_NKO)
    return mean, second - np.einsum("no,np->nop", mean, mean)


# --------------------------------------------------------------------------- cases


def _gaussian_math_tests():
    diff_small = np.random.RandomState(1).randn(5, 2, 3)
    diff_big = np.random.RandomState(2).randn(40, 4, 20)
    tiny = np.tile(1e-8 * np.eye(3), (2, 1, 1))
    pdf = "log_pdf"
    return [
        Test(
            "calc_log_pdf_NK",
            8,
            [
                Case(
                    "N=5, K=2, D=3",
                    pdf,
                    {"diff_NKD": diff_small, "chol_KDD": _chol(3, 2, 3)},
                    {"log_pdf_NK": TIGHT},
                    public=True,
                ),
                Case(
                    "N=40, K=4, D=20",
                    pdf,
                    {"diff_NKD": diff_big, "chol_KDD": _chol(4, 4, 20)},
                    {"log_pdf_NK": TIGHT},
                ),
                Case(
                    "covariances of 1e-16 (stay in log space)",
                    pdf,
                    {"diff_NKD": 1e-8 * diff_small, "chol_KDD": tiny},
                    {"log_pdf_NK": TIGHT},
                ),
                Case(
                    "K=1, D=1",
                    pdf,
                    {"diff_NKD": diff_small[:, :1, :1], "chol_KDD": np.array([[[0.7]]])},
                    {"log_pdf_NK": TIGHT},
                ),
            ],
            "gaussian_math.calc_log_pdf_NK: Gaussian log densities of residuals from Cholesky factors",
        ),
        Test(
            "whiten_KND and calc_mixture_log_lik_N",
            8,
            [
                Case(
                    "whiten: N=5, K=2, D=3",
                    "whiten",
                    {"diff_NKD": diff_small, "chol_KDD": _chol(3, 2, 3)},
                    {"z_KND": TIGHT},
                    public=True,
                ),
                Case(
                    "whiten: N=40, K=4, D=20",
                    "whiten",
                    {"diff_NKD": diff_big, "chol_KDD": _chol(4, 4, 20)},
                    {"z_KND": TIGHT},
                ),
                Case(
                    "mixture: N=5, K=2, D=3",
                    "mixture_log_lik",
                    {"log_w_NK": _log_w(5, 5, 2), "diff_NKD": diff_small, "chol_KDD": _chol(3, 2, 3)},
                    {"log_lik_N": TIGHT},
                    public=True,
                ),
                Case(
                    "mixture: residuals far out (needs log-sum-exp)",
                    "mixture_log_lik",
                    {"log_w_NK": _log_w(6, 40, 4), "diff_NKD": 40.0 * diff_big, "chol_KDD": _chol(4, 4, 20)},
                    {"log_lik_N": TIGHT},
                ),
                Case(
                    "mixture: a component with weight 0 (log w = -inf)",
                    "mixture_log_lik",
                    {"log_w_NK": _log_w(7, 40, 4, dead=1), "diff_NKD": diff_big, "chol_KDD": _chol(4, 4, 20)},
                    {"log_lik_N": TIGHT},
                ),
            ],
            "gaussian_math.whiten_KND and calc_mixture_log_lik_N",
        ),
        Test(
            "sample_mixture",
            6,
            [
                Case(
                    "N=2, K=2, D=2, 20000 draws each",
                    "sample_mixture",
                    {
                        "log_w_NK": _log_w(8, 2, 2),
                        "mean_NKD": np.random.RandomState(9).randn(2, 2, 2),
                        "chol_KDD": _chol(10, 2, 2),
                        "n_samples": 20000,
                        "seed": 0,
                    },
                    SAMPLE,
                    public=True,
                ),
                Case(
                    "N=3, K=3, D=3, far-apart components",
                    "sample_mixture",
                    {
                        "log_w_NK": _log_w(11, 3, 3),
                        "mean_NKD": 5.0 * np.random.RandomState(12).randn(3, 3, 3),
                        "chol_KDD": _chol(13, 3, 3),
                        "n_samples": 4000,
                        "seed": 1,
                    },
                    SAMPLE,
                ),
                Case(
                    "a component with weight 0 is never drawn",
                    "sample_mixture",
                    {
                        "log_w_NK": _log_w(14, 3, 3, dead=0),
                        "mean_NKD": np.concatenate(
                            [np.full((3, 1, 2), 1e3), np.random.RandomState(15).randn(3, 2, 2)], axis=1
                        ),
                        "chol_KDD": _chol(16, 3, 2),
                        "n_samples": 4000,
                        "seed": 2,
                    },
                    SAMPLE,
                ),
            ],
            "gaussian_math.sample_mixture: draws have the mixture's means and covariances, "
            "shape (N, S, D), and the same generator state gives the same draws",
        ),
    ]


def _cgmm_tests(digits):
    x_tr, x_te, y_tr, y_te = digits
    cont = _xy(20, 30, 2, 2)
    hot = _xy(21, 60, 10, 20, one_hot=True)
    far = _joint(22, 3, 2, 2)
    dead = _joint(23, 3, 10, 20, one_hot=True)
    with np.errstate(divide="ignore"):
        dead["log_pi_K"] = np.log(np.array([0.6, 0.0, 0.4]))
    cond = "condition"
    x_far = cont[0] + 50.0
    sub = slice(0, 400)
    init_digits = _hard_resp(26, 400, 4)
    return [
        Test(
            "condition_joint_gmm",
            10,
            [
                Case(
                    "K=2, I=2, O=2",
                    cond,
                    {"x_NI": cont[0], **_joint(24, 2, 2, 2)},
                    {"w_NK": TIGHT, "mean_NKO": TIGHT, "cond_cov_KOO": TIGHT},
                    public=True,
                ),
                Case(
                    "one-hot inputs (I=10, O=20, K=3)",
                    cond,
                    {"x_NI": hot[0], **_joint(25, 3, 10, 20, True)},
                    {"w_NK": TIGHT, "mean_NKO": TIGHT, "cond_cov_KOO": TIGHT},
                ),
                Case(
                    "inputs far from every component (needs log space)",
                    cond,
                    {"x_NI": x_far, **far},
                    {"w_NK": TIGHT, "mean_NKO": TIGHT, "cond_cov_KOO": TIGHT},
                ),
                Case(
                    "K=1: one Gaussian conditioned on x",
                    cond,
                    {"x_NI": cont[0], **_joint(27, 1, 2, 2)},
                    {"w_NK": TIGHT, "mean_NKO": TIGHT, "cond_cov_KOO": TIGHT},
                ),
                Case(
                    "a component with weight 0",
                    cond,
                    {"x_NI": hot[0], **dead},
                    {"w_NK": TIGHT, "mean_NKO": TIGHT, "cond_cov_KOO": TIGHT},
                ),
            ],
            "ConditionalGMMRegressor.condition_joint_gmm: input-dependent weights, conditional means and "
            "conditional covariances",
        ),
        Test(
            "ConditionalGMMRegressor.estep__calc_r_NK",
            6,
            [
                Case(
                    "K=2, I=2, O=2",
                    "cgmm_estep",
                    {"x_NI": cont[0], "y_NO": cont[1], "params": _joint(28, 2, 2, 2)},
                    {"r_NK": TIGHT, "mean_log_lik": TIGHT},
                    public=True,
                ),
                Case(
                    "one-hot inputs (I=10, O=20, K=3)",
                    "cgmm_estep",
                    {"x_NI": hot[0], "y_NO": hot[1], "params": _joint(29, 3, 10, 20, True)},
                    {"r_NK": TIGHT, "mean_log_lik": TIGHT},
                ),
                Case(
                    "points far from every component (needs log-sum-exp)",
                    "cgmm_estep",
                    {"x_NI": x_far, "y_NO": cont[1], "params": far},
                    {"r_NK": TIGHT, "mean_log_lik": TIGHT},
                ),
                Case(
                    "K=1 gives all ones",
                    "cgmm_estep",
                    {"x_NI": cont[0], "y_NO": cont[1], "params": _joint(30, 1, 2, 2)},
                    {"r_NK": TIGHT, "mean_log_lik": TIGHT},
                ),
            ],
            "ConditionalGMMRegressor.estep__calc_r_NK: joint responsibilities and mean joint log likelihood",
        ),
        Test(
            "ConditionalGMMRegressor.mstep__update_params",
            8,
            [
                Case(
                    "K=2, I=2, O=2",
                    "cgmm_mstep",
                    {
                        "x_NI": cont[0],
                        "y_NO": cont[1],
                        "r_NK": _resp(31, 30, 2),
                        "params": _joint(32, 2, 2, 2),
                        "reg_covar": 1e-2,
                    },
                    {"pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT},
                    public=True,
                ),
                Case(
                    "one-hot inputs (I=10, O=20, K=3), reg_covar=0.3",
                    "cgmm_mstep",
                    {
                        "x_NI": hot[0],
                        "y_NO": hot[1],
                        "r_NK": _resp(33, 60, 3),
                        "params": _joint(34, 3, 10, 20, True),
                        "reg_covar": 0.3,
                    },
                    {"pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT},
                ),
                Case(
                    "a component with no responsibility keeps its mean and covariance",
                    "cgmm_mstep",
                    {
                        "x_NI": cont[0],
                        "y_NO": cont[1],
                        "r_NK": _resp(35, 30, 3, zero_column=1),
                        "params": _joint(36, 3, 2, 2),
                        "reg_covar": 1e-2,
                    },
                    {"pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT},
                ),
            ],
            "ConditionalGMMRegressor.mstep__update_params: weights, joint means, joint covariances "
            "+ reg_covar",
        ),
        Test(
            "ConditionalGMMRegressor.fit",
            8,
            [
                Case(
                    "K=2 on 30 points, from given responsibilities",
                    "cgmm_fit",
                    {
                        "x_NI": cont[0],
                        "y_NO": cont[1],
                        "r_init_NK": _hard_resp(37, 30, 2),
                        "n_components": 2,
                        "reg_covar": 1e-2,
                        "max_iter": 30,
                        "tol": 1e-6,
                        "x_eval_NI": cont[0][:5],
                        "y_eval_NO": cont[1][:5],
                    },
                    {"pi_K": LOOSE, "mu_KD": LOOSE, "cov_KDD": LOOSE, "history": LOOSE, "score_eval": LOOSE},
                    public=True,
                ),
                Case(
                    "digits: K=4 on 400 training images, scored on the test images",
                    "cgmm_fit",
                    {
                        "x_NI": x_tr[sub],
                        "y_NO": y_tr[sub],
                        "r_init_NK": init_digits,
                        "n_components": 4,
                        "reg_covar": 1e-2,
                        "max_iter": 40,
                        "tol": 1e-4,
                        "x_eval_NI": x_te,
                        "y_eval_NO": y_te,
                    },
                    {"pi_K": FIT, "mu_KD": FIT, "cov_KDD": FIT, "history": FIT, "score_eval": FIT},
                ),
                Case(
                    "K=1: a single Gaussian on [x, y]",
                    "cgmm_fit",
                    {
                        "x_NI": hot[0],
                        "y_NO": hot[1],
                        "r_init_NK": np.ones((60, 1)),
                        "n_components": 1,
                        "reg_covar": 1e-2,
                        "max_iter": 5,
                        "tol": 1e-6,
                        "x_eval_NI": hot[0][:7],
                        "y_eval_NO": hot[1][:7],
                    },
                    {"pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT, "history": TIGHT, "score_eval": TIGHT},
                ),
                Case(
                    "singular covariances without reg_covar raise a ValueError",
                    "cgmm_fit_raises",
                    {"x_NI": hot[0], "y_NO": hot[1], "n_components": 2, "reg_covar": 0.0},
                    {"raised_value_error": ONE},
                ),
            ],
            "ConditionalGMMRegressor.fit: the EM loop from given initial responsibilities",
            timeout=90,
        ),
    ]


def _use_tests(digits):
    x_tr, x_te, y_tr, y_te = digits
    cont = _xy(40, 25, 2, 2)
    hot_x = np.eye(10)
    cg = _joint(41, 3, 2, 2)
    cg_hot = _joint(42, 4, 10, 20, one_hot=True)
    moe = _moe(43, 3, 2, 2)
    moe_hot = _moe(44, 3, 10, 20)
    out = {"predict_NO": TIGHT, "log_lik_N": TIGHT, "score": TIGHT, "score_minus_mean": Within(0.0, 1e-9)}
    rows = cont[0][:2]
    return [
        Test(
            "predict, score_samples and score",
            10,
            [
                Case(
                    "conditional GMM, K=3, I=2, O=2",
                    "use_model",
                    {"kind": "cgmm", "params": cg, "x_NI": cont[0], "y_NO": cont[1]},
                    out,
                    public=True,
                ),
                Case(
                    "conditional GMM on the digits test split (K=4)",
                    "use_model",
                    {"kind": "cgmm", "params": cg_hot, "x_NI": x_te, "y_NO": y_te},
                    out,
                ),
                Case(
                    "mixture of experts, K=3, I=2, O=2",
                    "use_model",
                    {"kind": "moe", "params": moe, "x_NI": cont[0], "y_NO": cont[1]},
                    out,
                    public=True,
                ),
                Case(
                    "mixture of experts on the digits test split (K=3)",
                    "use_model",
                    {"kind": "moe", "params": moe_hot, "x_NI": x_te, "y_NO": y_te},
                    out,
                ),
                Case(
                    "discriminative conditional GMM (same parametrisation), K=3",
                    "use_model",
                    {"kind": "dcgmm", "params": cg, "x_NI": cont[0], "y_NO": cont[1]},
                    out,
                ),
            ],
            "predict (conditional mean), score_samples (log p(y | x) per example) and score (their mean)",
        ),
        Test(
            "sample",
            6,
            [
                Case(
                    "conditional GMM: two inputs, 20000 draws each",
                    "sample_model",
                    {
                        "kind": "cgmm",
                        "params": cg,
                        "x_NI": rows,
                        "n_samples": 20000,
                        "seed": 0,
                        **dict(zip(("true_mean_ND", "true_cov_NDD"), _cgmm_moments(cg, rows), strict=True)),
                    },
                    SAMPLE,
                    public=True,
                ),
                Case(
                    "conditional GMM: every digit label, 3000 draws each",
                    "sample_model",
                    {
                        "kind": "cgmm",
                        "params": cg_hot,
                        "x_NI": hot_x,
                        "n_samples": 3000,
                        "seed": 1,
                        **dict(
                            zip(("true_mean_ND", "true_cov_NDD"), _cgmm_moments(cg_hot, hot_x), strict=True)
                        ),
                    },
                    SAMPLE,
                ),
                Case(
                    "mixture of experts: every digit label, 3000 draws each",
                    "sample_model",
                    {
                        "kind": "moe",
                        "params": moe_hot,
                        "x_NI": hot_x,
                        "n_samples": 3000,
                        "seed": 2,
                        **dict(
                            zip(("true_mean_ND", "true_cov_NDD"), _moe_moments(moe_hot, hot_x), strict=True)
                        ),
                    },
                    SAMPLE,
                ),
            ],
            "sample(X, n_samples, random_state): shape (N, S, O), the conditional moments of each input, "
            "reproducible for a fixed random_state",
            timeout=90,
        ),
    ]


def _moe_tests():
    cont = _xy(50, 40, 2, 2)
    hot = _xy(51, 80, 10, 3, one_hot=True)
    far_y = cont[1] + 60.0
    expert_out = {"expert_mean_NKO": TIGHT, "cov_KOO": TIGHT}
    gate_x = np.random.RandomState(52).randn(30, 3)
    flat = np.random.RandomState(53).randn(3 * 4 + 4)
    return [
        Test(
            "MixtureOfExpertsRegressor.estep__calc_r_NK",
            6,
            [
                Case(
                    "K=3, I=2, O=2",
                    "moe_estep",
                    {"x_NI": cont[0], "y_NO": cont[1], "params": _moe(54, 3, 2, 2)},
                    {"r_NK": TIGHT, "mean_log_lik": TIGHT},
                    public=True,
                ),
                Case(
                    "one-hot inputs (I=10, O=3, K=4)",
                    "moe_estep",
                    {"x_NI": hot[0], "y_NO": hot[1], "params": _moe(55, 4, 10, 3)},
                    {"r_NK": TIGHT, "mean_log_lik": TIGHT},
                ),
                Case(
                    "targets far from every expert (needs log-sum-exp)",
                    "moe_estep",
                    {"x_NI": cont[0], "y_NO": far_y, "params": _moe(56, 3, 2, 2)},
                    {"r_NK": TIGHT, "mean_log_lik": TIGHT},
                ),
            ],
            "MixtureOfExpertsRegressor.estep__calc_r_NK: responsibilities and mean conditional log "
            "likelihood",
        ),
        Test(
            "MixtureOfExpertsRegressor.mstep__update_experts",
            8,
            [
                Case(
                    "K=3, I=2, O=2",
                    "moe_experts",
                    {
                        "x_NI": cont[0],
                        "y_NO": cont[1],
                        "r_NK": _resp(57, 40, 3),
                        "params": _moe(58, 3, 2, 2),
                        "reg_covar": 1e-2,
                    },
                    expert_out,
                    public=True,
                ),
                Case(
                    "one-hot inputs: the design [x, 1] has dependent columns",
                    "moe_experts",
                    {
                        "x_NI": hot[0],
                        "y_NO": hot[1],
                        "r_NK": _resp(59, 80, 4),
                        "params": _moe(60, 4, 10, 3),
                        "reg_covar": 0.1,
                    },
                    {"expert_mean_NKO": LOOSE, "cov_KOO": LOOSE},
                ),
                Case(
                    "an expert with no responsibility keeps its parameters",
                    "moe_experts",
                    {
                        "x_NI": cont[0],
                        "y_NO": cont[1],
                        "r_NK": _resp(61, 40, 3, zero_column=2),
                        "params": _moe(62, 3, 2, 2),
                        "reg_covar": 1e-2,
                    },
                    expert_out,
                ),
            ],
            "MixtureOfExpertsRegressor.mstep__update_experts: weighted least squares and residual "
            "covariances",
        ),
        Test(
            "the gate",
            10,
            [
                Case(
                    "calc_log_gate_NK, I=3, K=4",
                    "log_gate",
                    {"x_NI": gate_x, "gate_coef_IK": flat[:12].reshape(3, 4), "gate_intercept_K": flat[12:]},
                    {"gate_NK": TIGHT},
                    public=True,
                ),
                Case(
                    "calc_log_gate_NK with huge logits (needs log-sum-exp)",
                    "log_gate",
                    {
                        "x_NI": 100.0 * gate_x,
                        "gate_coef_IK": 10.0 * flat[:12].reshape(3, 4),
                        "gate_intercept_K": flat[12:],
                    },
                    {"gate_NK": TIGHT},
                ),
                Case(
                    "calc_gate_loss and its autograd gradient",
                    "moe_gate_loss",
                    {
                        "x_NI": gate_x,
                        "r_NK": _resp(63, 30, 4),
                        "flat": flat,
                        "gate_penalty": 0.1,
                        "n_components": 4,
                    },
                    {"loss": TIGHT, "grad": LOOSE},
                    public=True,
                ),
                Case(
                    "calc_gate_loss: another penalty",
                    "moe_gate_loss",
                    {
                        "x_NI": gate_x,
                        "r_NK": _resp(64, 30, 4),
                        "flat": -flat,
                        "gate_penalty": 2.0,
                        "n_components": 4,
                    },
                    {"loss": TIGHT, "grad": LOOSE},
                ),
                Case(
                    "mstep__update_gate reaches the optimum (continuous inputs)",
                    "moe_gate",
                    {
                        "x_NI": cont[0],
                        "r_NK": _resp(65, 40, 3),
                        "params": _moe(66, 3, 2, 2),
                        "gate_penalty": 1e-2,
                    },
                    {"gate_NK": GATE, "loss": LOOSE},
                ),
                Case(
                    "mstep__update_gate on one-hot inputs",
                    "moe_gate",
                    {
                        "x_NI": hot[0],
                        "r_NK": _resp(67, 80, 4),
                        "params": _moe(68, 4, 10, 3),
                        "gate_penalty": 1e-3,
                    },
                    {"gate_NK": GATE, "loss": LOOSE},
                ),
            ],
            "MixtureOfExpertsRegressor gate: log_softmax gate, weighted logistic loss with its gradient, "
            "and the fit that minimizes it",
        ),
        Test(
            "MixtureOfExpertsRegressor.fit",
            8,
            [
                Case(
                    "K=2 on 40 points, from given responsibilities",
                    "moe_fit",
                    {
                        "x_NI": cont[0],
                        "y_NO": cont[1],
                        "r_init_NK": _hard_resp(69, 40, 2),
                        "n_components": 2,
                        "reg_covar": 1e-2,
                        "max_iter": 15,
                        "tol": 1e-6,
                        "x_eval_NI": cont[0][:6],
                        "y_eval_NO": cont[1][:6],
                    },
                    {
                        "gate_NK": FIT,
                        "expert_mean_NKO": FIT,
                        "cov_KOO": FIT,
                        "history": FIT,
                        "score_eval": FIT,
                    },
                    public=True,
                ),
                Case(
                    "one-hot inputs, K=3",
                    "moe_fit",
                    {
                        "x_NI": hot[0],
                        "y_NO": hot[1],
                        "r_init_NK": _hard_resp(70, 80, 3),
                        "n_components": 3,
                        "reg_covar": 1e-2,
                        "max_iter": 15,
                        "tol": 1e-6,
                        "x_eval_NI": np.eye(10),
                        "y_eval_NO": hot[1][:10],
                    },
                    {
                        "gate_NK": FIT,
                        "expert_mean_NKO": FIT,
                        "cov_KOO": FIT,
                        "history": FIT,
                        "score_eval": FIT,
                    },
                ),
                Case(
                    "K=1 is linear regression with Gaussian noise",
                    "moe_single_expert",
                    {"x_NI": cont[0], "y_NO": cont[1], "reg_covar": 1e-2},
                    {
                        "max_predict_error": Within(0.0, 1e-8),
                        "max_cov_error": Within(0.0, 1e-8),
                        "score_error": Within(0.0, 1e-8),
                    },
                ),
            ],
            "MixtureOfExpertsRegressor.fit: EM from given initial responsibilities",
            timeout=90,
        ),
    ]


def _dcgmm_tests(digits):
    x_tr, x_te, y_tr, y_te = digits
    cont = _xy(80, 30, 2, 2)
    hot = _xy(81, 60, 10, 4, one_hot=True)
    params = _joint(82, 2, 2, 2)
    params_hot = _joint(83, 3, 10, 4, one_hot=True)
    with np.errstate(divide="ignore"):
        params_hot["log_pi_K"] = np.log(np.array([0.5, 0.3, 0.2]))
    loss_out = {"loss": TIGHT, "grad_norm_per_param": LOOSE, "pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT}
    sub = slice(0, 300)
    return [
        Test(
            "DiscriminativeConditionalGMMRegressor.calc_loss and transforms",
            8,
            [
                Case(
                    "K=2, I=2, O=2, reg_covar=0.01",
                    "dcgmm_loss",
                    {"x_NI": cont[0], "y_NO": cont[1], "params": params, "reg_covar": 0.01},
                    loss_out,
                    public=True,
                ),
                Case(
                    "one-hot inputs (I=10, O=4, K=3), reg_covar=0.3",
                    "dcgmm_loss",
                    {"x_NI": hot[0], "y_NO": hot[1], "params": params_hot, "reg_covar": 0.3},
                    loss_out,
                ),
                Case(
                    "autograd gradient against central differences",
                    "dcgmm_grad_check",
                    {"x_NI": cont[0], "y_NO": cont[1], "params": params, "reg_covar": 0.01, "seed": 0},
                    {"max_directional_error": Within(0.0, 1e-5)},
                ),
            ],
            "calc_loss (negative mean conditional log likelihood) at the student's own packing, its "
            "gradient, and the round trip to_common_parameters(to_flat_array(...))",
        ),
        Test(
            "DiscriminativeConditionalGMMRegressor.fit",
            6,
            [
                Case(
                    "digits: K=3 on 300 training images, 20 L-BFGS iterations",
                    "dcgmm_fit",
                    {
                        "x_NI": x_tr[sub],
                        "y_NO": y_tr[sub],
                        "n_components": 3,
                        "reg_covar": 1e-2,
                        "max_iter": 20,
                        "em_max_iter": 30,
                        "x_eval_NI": x_te,
                        "y_eval_NO": y_te,
                    },
                    {
                        "loss_decrease": Within(1e-3, np.inf),
                        "final_loss_error": Within(0.0, 1e-8),
                        "score_eval": Within(-30.0, 0.0),
                    },
                ),
            ],
            "fit: lowers the loss from its EM start, stores the parameters of the final loss, and "
            "generalizes (held-out score above a floor)",
            timeout=90,
        ),
    ]


def build_tests():
    digits = _digits()
    return [
        *_gaussian_math_tests(),
        *_cgmm_tests(digits),
        *_use_tests(digits),
        *_moe_tests(),
        *_dcgmm_tests(digits),
    ]
