"""Hidden tests for unit 3 (penalized diagonal GMM by EM and by L-BFGS).

A table of cases per graded function. Inputs are built here from fixed seeds; reference values come
from ``references.npz`` (``gmmcourse refs unit3``). Cases marked public ship with the release.
"""

import numpy as np

from gmmcourse.grading.spec import Case, Close, Exact, Limits, Submission, Test

UNIT = "unit3_gmm_em_lbfgs"
SUBMISSION = Submission(kind="py", files=(
    "calc_neg_log_lik__np.py", "calc_neg_log_lik__ag.py", "calc_penalty_stddev.py",
    "GMM_PenalizedMLEstimator.py", "GMM_PenalizedMLEstimator_EM.py", "GMM_PenalizedMLEstimator_LBFGS.py",
    "transform_log_softmax.py", "transform_softplus.py",
), given=("prepared_data.py",))
LIMITS = Limits(cpu_seconds=240, memory_bytes=4 * 1024**3)

M, S = 25.0, 100.0  # the experiments' variance-penalty mode and spread
TIGHT = Close(rtol=1e-7, atol=1e-9)
LOOSE = Close(rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- input builders


def _blobs(seed, N, D, K=4, scale=0.3):
    """N rows near K random centres in [-1, 1]^D (tops-like values)."""
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-1, 1, size=(K, D))
    return centres[rng.randint(K, size=N)] + scale * rng.randn(N, D)


def _params(seed, K, D, stddev=(0.2, 1.5)):
    rng = np.random.RandomState(seed)
    w = rng.dirichlet(np.ones(K))
    return {"log_pi_K": np.log(w), "mu_KD": rng.uniform(-1, 1, size=(K, D)),
            "stddev_KD": rng.uniform(*stddev, size=(K, D))}


def _resp(seed, N, K, zero_column=None):
    rng = np.random.RandomState(seed)
    r = rng.dirichlet(np.ones(K), size=N)
    if zero_column is not None:
        r[:, zero_column] = 0.0
        r /= r.sum(axis=1, keepdims=True)
    return r


def _nll_cases(probe):
    tiny = _params(7, 2, 12)
    tiny["stddev_KD"] = np.full((2, 12), 1e-30)
    x_tiny = tiny["mu_KD"][[0, 1, 1]].copy()  # each row sits exactly on a mean
    far = _params(9, 3, 5)
    dead = _params(11, 3, 4)
    with np.errstate(divide="ignore"):
        dead["log_pi_K"] = np.log(np.array([0.5, 0.5, 0.0]))
    return [
        Case("two clusters, K=2, D=3", probe, {"x_ND": _blobs(1, 20, 3, 2), **_params(2, 2, 3)},
             {"nll": TIGHT}, public=True),
        Case("tops-sized rows, K=8, D=400", probe, {"x_ND": _blobs(3, 300, 400), **_params(4, 8, 400)},
             {"nll": TIGHT}),
        Case("stddevs of 1e-30 (densities overflow unless kept in log space)", probe,
             {"x_ND": x_tiny, **tiny}, {"nll": TIGHT}),
        Case("points far from every mean (needs log-sum-exp)", probe,
             {"x_ND": 60.0 + _blobs(10, 30, 5), **far}, {"nll": TIGHT}),
        Case("empty dataset gives 0.0", probe, {"x_ND": np.zeros((0, 3)), **_params(5, 2, 3)},
             {"nll": TIGHT}),
        Case("K=1, D=1", probe, {"x_ND": _blobs(6, 15, 1, 1), **_params(6, 1, 1)}, {"nll": TIGHT}),
        Case("a component with weight 0 (log_pi = -inf)", probe, {"x_ND": _blobs(12, 25, 4), **dead},
             {"nll": TIGHT}),
    ]


def _ag_expect():
    return {"nll": TIGHT, "grad_log_pi_K": LOOSE, "grad_mu_KD": LOOSE, "grad_stddev_KD": LOOSE}


def _ag_cases():
    far = _params(9, 3, 5)
    return [
        Case("two clusters, K=2, D=3", "neg_log_lik_ag", {"x_ND": _blobs(1, 20, 3, 2), **_params(2, 2, 3)},
             _ag_expect(), public=True),
        Case("tops-sized rows, K=4, D=400", "neg_log_lik_ag",
             {"x_ND": _blobs(13, 200, 400), **_params(14, 4, 400)}, _ag_expect()),
        Case("points far from every mean (needs log-sum-exp)", "neg_log_lik_ag",
             {"x_ND": 60.0 + _blobs(10, 30, 5), **far}, _ag_expect()),
        Case("K=1, D=1", "neg_log_lik_ag", {"x_ND": _blobs(6, 15, 1, 1), **_params(6, 1, 1)}, _ag_expect()),
    ]


def _em_args(seed, K, D, N=40, m=M, s=S, **extra):
    return {"K": K, "D": D, "m": m, "s": s, **_params(seed, K, D), **extra,
            **({"x_ND": _blobs(seed + 1, N, D)} if "x_ND" not in extra else {})}


def _fit_args(seed, K, D, N, max_iter, ftol=1e-9, valid=True, m=M, s=S):
    x = _blobs(seed, N, D)
    init = _params(seed + 1, K, D, stddev=(np.sqrt(m), 2 * np.sqrt(m)))
    init["log_pi_K"] = np.full(K, -np.log(K))
    init["mu_KD"] = x[np.random.RandomState(seed + 2).choice(N, K, replace=N < K)] if N else init["mu_KD"]
    return {"K": K, "D": D, "seed": seed, "m": m, "s": s, "max_iter": max_iter, "ftol": ftol, "x_ND": x,
            "x_valid_ND": _blobs(seed + 3, 30, D) if valid else None, "init": init}


def _fit_expect(valid=True):
    keys = ["iter", "train_loss", "train_loss_per_pixel", "train_score_per_pixel"]
    keys += ["valid_score_per_pixel"] if valid else []
    out = {f"history_{k}": LOOSE for k in keys}
    out["history_iter"] = Exact()
    return {**out, "pi_K": Close(rtol=1e-5, atol=1e-9), "mu_KD": LOOSE, "stddev_KD": LOOSE}


# --------------------------------------------------------------------------- the tests


def build_tests():
    return [
        Test("calc_neg_log_lik (numpy)", 12, _nll_cases("neg_log_lik_np"),
             "calc_neg_log_lik__np.calc_neg_log_lik: negative log likelihood of a diagonal GMM"),
        Test("calc_neg_log_lik (autograd)", 10, _ag_cases(),
             "calc_neg_log_lik__ag.calc_neg_log_lik: same value, and autograd can differentiate it"),
        Test("calc_penalty_stddev", 6, [
            Case("small K=2, D=3, m=1, s=100", "penalty",
                 {"stddev_KD": np.array([[0.5, 1.0, 2.0], [1.5, 0.1, 3.0]]), "m": 1.0, "s": 100.0},
                 {"penalty": TIGHT, "grad_stddev_KD": TIGHT}, public=True),
            Case("tops-sized, m=25, s=100", "penalty",
                 {"stddev_KD": _params(20, 8, 400, stddev=(0.05, 9.0))["stddev_KD"], "m": M, "s": S},
                 {"penalty": TIGHT, "grad_stddev_KD": TIGHT}),
            Case("other mode and spread (m=4, s=2)", "penalty",
                 {"stddev_KD": _params(21, 3, 5)["stddev_KD"], "m": 4.0, "s": 2.0},
                 {"penalty": TIGHT, "grad_stddev_KD": TIGHT}),
        ], "calc_penalty_stddev: the variance penalty and its gradient"),
        Test("generate_initial_parameters", 8, [
            Case("K=3, D=4, seed=42", "initial_parameters",
                 {"K": 3, "D": 4, "seed": 42, "m": 1.0, "x_ND": _blobs(30, 25, 4)},
                 {"pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT}, public=True),
            Case("K=8 on tops-sized rows, seed=1001, m=25", "initial_parameters",
                 {"K": 8, "D": 400, "seed": 1001, "m": M, "x_ND": _blobs(31, 100, 400)},
                 {"pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT}),
            Case("fewer rows than components (N=2, K=5)", "initial_parameters",
                 {"K": 5, "D": 3, "seed": 7, "m": M, "x_ND": _blobs(32, 2, 3)},
                 {"pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT}),
            Case("K=1, D=1", "initial_parameters",
                 {"K": 1, "D": 1, "seed": 3, "m": 2.0, "x_ND": _blobs(33, 9, 1)},
                 {"pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT}),
        ], "generate_initial_parameters: uniform weights, K distinct rows as means, random stddevs"),
        Test("estep__calc_r_NK", 10, [
            Case("two clusters, K=2, D=3", "estep", _em_args(40, 2, 3), {"r_NK": TIGHT}, public=True),
            Case("tops-sized rows, K=8, D=400", "estep", _em_args(41, 8, 400, N=120), {"r_NK": TIGHT}),
            Case("points far from every mean (needs log-sum-exp)", "estep",
                 _em_args(42, 3, 5, x_ND=80.0 + _blobs(43, 30, 5)), {"r_NK": TIGHT}),
            Case("K=1 gives all ones", "estep", _em_args(44, 1, 2), {"r_NK": TIGHT}),
            Case("stddevs of 1e-3 (densities underflow unless kept in log space)", "estep",
                 {**_em_args(45, 3, 20), "stddev_KD": np.full((3, 20), 1e-3)}, {"r_NK": TIGHT}),
        ], "estep__calc_r_NK: responsibilities, rows summing to one"),
        Test("calc_EM_loss", 8, [
            Case("random responsibilities, K=3, D=4", "em_loss",
                 _em_args(50, 3, 4, N=30, r_NK=_resp(51, 30, 3)), {"loss": TIGHT}, public=True),
            Case("one-hot responsibilities (0 log 0 = 0)", "em_loss",
                 _em_args(52, 3, 4, N=30, r_NK=np.eye(3)[np.random.RandomState(53).randint(3, size=30)]),
                 {"loss": TIGHT}),
            Case("tops-sized rows, K=4, D=400", "em_loss",
                 _em_args(54, 4, 400, N=80, r_NK=_resp(55, 80, 4)), {"loss": TIGHT}),
            Case("other mode and spread (m=4, s=2)", "em_loss",
                 _em_args(56, 2, 3, N=20, m=4.0, s=2.0, r_NK=_resp(57, 20, 2)), {"loss": TIGHT}),
        ], "calc_EM_loss: penalty minus the expected complete log likelihood minus the entropy of r"),
        Test("mstep__update_log_pi_K", 5, [
            Case("random responsibilities, K=3", "mstep_log_pi", _em_args(60, 3, 2, r_NK=_resp(61, 40, 3)),
                 {"pi_K": TIGHT}, public=True),
            Case("a component with no responsibility", "mstep_log_pi",
                 _em_args(62, 4, 2, r_NK=_resp(63, 40, 4, zero_column=2)), {"pi_K": TIGHT}),
        ], "mstep__update_log_pi_K: new mixture weights (compared as probabilities)"),
        Test("mstep__update_mu_KD", 6, [
            Case("random responsibilities, K=3, D=4", "mstep_mu", _em_args(64, 3, 4, r_NK=_resp(65, 40, 3)),
                 {"mu_KD": TIGHT}, public=True),
            Case("a component with no responsibility keeps its mean", "mstep_mu",
                 _em_args(66, 4, 3, r_NK=_resp(67, 40, 4, zero_column=1)), {"mu_KD": TIGHT}),
            Case("tops-sized rows, K=8, D=400", "mstep_mu", _em_args(68, 8, 400, N=100,
                 r_NK=_resp(69, 100, 8)), {"mu_KD": TIGHT}),
        ], "mstep__update_mu_KD: responsibility-weighted means"),
        Test("mstep__update_stddev_KD", 8, [
            Case("random responsibilities, K=3, D=4, m=1, s=100", "mstep_stddev",
                 _em_args(70, 3, 4, m=1.0, r_NK=_resp(71, 40, 3)), {"stddev_KD": TIGHT}, public=True),
            Case("a component with no responsibility gets stddev sqrt(m)", "mstep_stddev",
                 _em_args(72, 4, 3, r_NK=_resp(73, 40, 4, zero_column=3)), {"stddev_KD": TIGHT}),
            Case("tops-sized rows, K=8, D=400, m=25, s=100", "mstep_stddev",
                 _em_args(74, 8, 400, N=100, r_NK=_resp(75, 100, 8)), {"stddev_KD": TIGHT}),
            Case("other mode and spread (m=4, s=2)", "mstep_stddev",
                 _em_args(76, 2, 3, m=4.0, s=2.0, r_NK=_resp(77, 40, 2)), {"stddev_KD": TIGHT}),
        ], "mstep__update_stddev_KD: penalized variance update, returned as standard deviations"),
        Test("fit (EM)", 12, [
            Case("K=3, D=5, 20 iterations with validation data", "fit_em", _fit_args(80, 3, 5, 60, 20),
                 _fit_expect(), public=True),
            Case("tops-sized rows, K=4, D=400, 8 iterations", "fit_em", _fit_args(81, 4, 400, 150, 8),
                 _fit_expect()),
            Case("K=1", "fit_em", _fit_args(82, 1, 3, 30, 5), _fit_expect()),
            Case("D=1", "fit_em", _fit_args(83, 3, 1, 40, 10), _fit_expect()),
            Case("fewer rows than components (N=3, K=5)", "fit_em", _fit_args(84, 5, 2, 3, 6),
                 _fit_expect()),
            Case("stops early when the relative decrease is at most ftol", "fit_em",
                 _fit_args(85, 2, 3, 50, 200, ftol=1e-4, valid=False), _fit_expect(valid=False)),
        ], "GMM_PenalizedMLEstimator_EM.fit: history entries and fitted parameters", timeout=120),
        Test("transforms", 5, [
            Case("log_softmax and its inverse", "transforms",
                 {"name": "transform_log_softmax:log_softmax:inverse_log_softmax",
                  "values": np.array([0.3, -2.0, 5.0, 0.0])},
                 {"forward": TIGHT, "round_trip": TIGHT}, public=True),
            Case("log_softmax of huge inputs (needs log-sum-exp)", "transforms",
                 {"name": "transform_log_softmax:log_softmax:inverse_log_softmax",
                  "values": np.array([800.0, 790.0, -1000.0])},
                 {"forward": TIGHT, "round_trip": TIGHT}),
            Case("softplus and its inverse", "transforms",
                 {"name": "transform_softplus:softplus:inverse_softplus",
                  "values": np.array([-3.0, -0.5, 0.0, 0.7, 4.0])},
                 {"forward": TIGHT, "round_trip": TIGHT}, public=True),
            Case("softplus far in both tails", "transforms",
                 {"name": "transform_softplus:softplus:inverse_softplus",
                  "values": np.array([-30.0, -700.0, 40.0, 800.0])},
                 {"forward": TIGHT, "round_trip": TIGHT}),
        ], "transform_log_softmax / transform_softplus: values and round trips, stable in the tails"),
        Test("calc_loss (L-BFGS)", 6, [
            Case("K=2, D=3", "lbfgs_loss", {**_em_args(90, 2, 3, N=30)},
                 {"loss": TIGHT, "grad_norm": LOOSE, "pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT},
                 public=True),
            Case("tops-sized rows, K=4, D=400, m=25, s=100", "lbfgs_loss", {**_em_args(91, 4, 400, N=60)},
                 {"loss": TIGHT, "grad_norm": LOOSE, "pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT}),
        ], "GMM_PenalizedMLEstimator_LBFGS.calc_loss: penalized negative log likelihood of a flat "
           "parameter vector, differentiable by autograd"),
        Test("fit (L-BFGS)", 4, [
            Case("K=3, D=4, runs to convergence", "fit_lbfgs",
                 {k: v for k, v in _fit_args(92, 3, 4, 50, 300).items() if k not in ("ftol", "x_valid_ND")},
                 {"initial_loss": TIGHT, "final_loss": Close(rtol=1e-4), "final_loss_matches_params":
                  Close(rtol=1e-4)}),
        ], "GMM_PenalizedMLEstimator_LBFGS.fit: reaches the same optimum from the same start",
            timeout=120),
    ]
