"""Hidden tests for unit 3 (penalized diagonal GMM by EM and by L-BFGS).

A table of cases per graded function. Inputs are built here from fixed seeds; reference values come
from ``references.npz`` (``gmmcourse refs unit3``). Cases marked public ship with the release.
"""

import numpy as np

from gmmcourse.grading.spec import Case, Close, CloseOrOneStepPast, Exact, Limits, Submission, Test

UNIT = "unit3_gmm_em_lbfgs"
SUBMISSION = Submission(
    kind="py",
    files=(
        "calc_neg_log_lik__np.py",
        "calc_neg_log_lik__ag.py",
        "GMM_PenalizedMLEstimator_EM.py",
        "GMM_PenalizedMLEstimator_LBFGS.py",
        "transform_log_softmax.py",
        "transform_softplus.py",
    ),
    given=("GMM_PenalizedMLEstimator.py", "calc_penalty_stddev.py"),
)
LIMITS = Limits(cpu_seconds=240, memory_bytes=4 * 1024**3)

M, S = 25.0, 100.0  # the experiments' variance-penalty mode and spread
TIGHT = Close(rtol=1e-7, atol=1e-9)
LOOSE = Close(rtol=1e-5, atol=1e-7)
# float32 carries about 7 significant digits, so a float32 intermediate cannot meet this
DOUBLE = Close(rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- input builders


def _blobs(seed, N, D, K=4, scale=0.3):
    """N rows near K random centres in [-1, 1]^D (tops-like values)."""
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-1, 1, size=(K, D))
    return centres[rng.randint(K, size=N)] + scale * rng.randn(N, D)


def _params(seed, K, D, stddev=(0.2, 1.5)):
    rng = np.random.RandomState(seed)
    w = rng.dirichlet(np.ones(K))
    return {
        "log_pi_K": np.log(w),
        "mu_KD": rng.uniform(-1, 1, size=(K, D)),
        "stddev_KD": rng.uniform(*stddev, size=(K, D)),
    }


def _dead_params(seed, K, D, dead=-1):
    """Parameters where component ``dead`` has weight exactly 0 (log_pi = -inf)."""
    params = _params(seed, K, D)
    pi_K = np.exp(params["log_pi_K"])
    pi_K[dead] = 0.0
    with np.errstate(divide="ignore"):
        params["log_pi_K"] = np.log(pi_K / pi_K.sum())
    return params


def _tiny(seed, K, D, N):
    """Standard deviations of 1e-30 with data and means of the same scale: each density is about
    1e30 per feature, so a product over the features overflows unless it stays in log space."""
    rng = np.random.RandomState(seed)
    params = _params(seed, K, D)
    params["mu_KD"] = 1e-30 * rng.randn(K, D)
    params["stddev_KD"] = np.full((K, D), 1e-30)
    x_ND = params["mu_KD"][rng.randint(K, size=N)] + 1e-30 * rng.randn(N, D)
    return {"x_ND": x_ND, **params}


def _resp(seed, N, K, zero_column=None):
    rng = np.random.RandomState(seed)
    r = rng.dirichlet(np.ones(K), size=N)
    if zero_column is not None:
        r[:, zero_column] = 0.0
        r /= r.sum(axis=1, keepdims=True)
    return r


def _nll_cases(probe):
    far = _params(9, 3, 5)
    return [
        Case(
            "two clusters, K=2, D=3",
            probe,
            {"x_ND": _blobs(1, 20, 3, 2), **_params(2, 2, 3)},
            {"nll": TIGHT},
            public=True,
        ),
        Case(
            "tops-sized rows, K=8, D=400",
            probe,
            {"x_ND": _blobs(3, 300, 400), **_params(4, 8, 400)},
            {"nll": TIGHT},
        ),
        Case(
            "stddevs of 1e-30 (densities overflow unless kept in log space)",
            probe,
            _tiny(7, 2, 12, 3),
            {"nll": TIGHT},
        ),
        Case(
            "points far from every mean (needs log-sum-exp)",
            probe,
            {"x_ND": 60.0 + _blobs(10, 30, 5), **far},
            {"nll": TIGHT},
        ),
        Case(
            "empty dataset gives 0.0", probe, {"x_ND": np.zeros((0, 3)), **_params(5, 2, 3)}, {"nll": TIGHT}
        ),
        Case("K=1, D=1", probe, {"x_ND": _blobs(6, 15, 1, 1), **_params(6, 1, 1)}, {"nll": TIGHT}),
        Case(
            "a component with weight 0 (log_pi = -inf)",
            probe,
            {"x_ND": _blobs(12, 25, 4), **_dead_params(11, 3, 4)},
            {"nll": TIGHT},
        ),
        Case(
            "double precision throughout (rtol 1e-10)",
            probe,
            {"x_ND": _blobs(14, 200, 50), **_params(15, 5, 50)},
            {"nll": DOUBLE},
        ),
    ]


def _ag_expect(value=TIGHT):
    return {"nll": value, "grad_log_pi_K": LOOSE, "grad_mu_KD": LOOSE, "grad_stddev_KD": LOOSE}


def _ag_cases():
    far = _params(9, 3, 5)
    return [
        Case(
            "two clusters, K=2, D=3",
            "neg_log_lik_ag",
            {"x_ND": _blobs(1, 20, 3, 2), **_params(2, 2, 3)},
            _ag_expect(),
            public=True,
        ),
        Case(
            "tops-sized rows, K=4, D=400",
            "neg_log_lik_ag",
            {"x_ND": _blobs(13, 200, 400), **_params(14, 4, 400)},
            _ag_expect(),
        ),
        Case(
            "points far from every mean (needs log-sum-exp)",
            "neg_log_lik_ag",
            {"x_ND": 60.0 + _blobs(10, 30, 5), **far},
            _ag_expect(),
        ),
        Case("K=1, D=1", "neg_log_lik_ag", {"x_ND": _blobs(6, 15, 1, 1), **_params(6, 1, 1)}, _ag_expect()),
        Case(
            "stddevs of 1e-30 (log space, finite gradients)",
            "neg_log_lik_ag",
            _tiny(16, 2, 6, 4),
            _ag_expect(),
        ),
        Case(
            "a component with weight 0 (no NaN in value or gradients)",
            "neg_log_lik_ag",
            {"x_ND": _blobs(17, 25, 4), **_dead_params(18, 3, 4, dead=1)},
            _ag_expect(),
        ),
        Case(
            "empty dataset: value 0, gradients 0",
            "neg_log_lik_ag",
            {"x_ND": np.zeros((0, 3)), **_params(19, 2, 3)},
            _ag_expect(),
        ),
        Case(
            "double precision throughout (rtol 1e-10)",
            "neg_log_lik_ag",
            {"x_ND": _blobs(20, 100, 30), **_params(21, 3, 30)},
            _ag_expect(DOUBLE),
        ),
    ]


def _em_args(seed, K, D, N=40, m=M, s=S, **extra):
    return {
        "K": K,
        "D": D,
        "m": m,
        "s": s,
        **_params(seed, K, D),
        **extra,
        **({"x_ND": _blobs(seed + 1, N, D)} if "x_ND" not in extra else {}),
    }


def _stddev_args(seed, K, D, N=40, zero_column=None, **extra):
    """Arguments of the stddev update: mu_KD holds the responsibility-weighted means for r_NK (what
    mstep__update_mu_KD just set), or a random mean for a component with no responsibility."""
    args = _em_args(seed, K, D, N=N, r_NK=_resp(seed + 1, N, K, zero_column), **extra)
    r_NK, x_ND = args["r_NK"], args["x_ND"]
    count_K = r_NK.sum(axis=0)
    has = count_K > 0
    args["mu_KD"][has] = (r_NK.T @ x_ND)[has] / count_K[has, None]
    return args


def _fit_args(seed, K, D, N, max_iter, ftol=1e-9, valid=True, m=M, s=S, **extra):
    x = _blobs(seed, N, D)
    init = _params(seed + 1, K, D, stddev=(np.sqrt(m), 2 * np.sqrt(m)))
    init["log_pi_K"] = np.full(K, -np.log(K))
    if N:
        init["mu_KD"] = x[np.random.RandomState(seed + 2).choice(N, K, replace=N < K)]
    return {
        "K": K,
        "D": D,
        "seed": seed,
        "m": m,
        "s": s,
        "max_iter": max_iter,
        "ftol": ftol,
        "x_ND": x,
        "x_valid_ND": _blobs(seed + 3, 30, D) if valid else None,
        "init": init,
        **extra,
    }


def _history_expect(valid=True):
    keys = ["iter", "train_loss", "train_loss_per_pixel", "train_score_per_pixel"]
    keys += ["valid_score_per_pixel"] if valid else []
    out = {f"history_{k}": LOOSE for k in keys}
    out["history_iter"] = Exact()
    return out


FINAL = CloseOrOneStepPast(rtol=1e-5, atol=1e-7)


def _fit_cases():
    """(name, args, has validation data, public) of the EM fit cases; history and final parameters
    are graded as two tests on the same fits."""
    return [
        ("K=3, D=5, 20 iterations with validation data", _fit_args(80, 3, 5, 60, 20), True, True),
        ("tops-sized rows, K=4, D=400, 8 iterations", _fit_args(81, 4, 400, 150, 8), True, False),
        ("K=1", _fit_args(82, 1, 3, 30, 5), True, False),
        ("D=1", _fit_args(83, 3, 1, 40, 10), True, False),
        ("fewer rows than components (N=3, K=5)", _fit_args(84, 5, 2, 3, 6), True, False),
        (
            "stops early when the relative decrease is at most ftol",
            _fit_args(85, 2, 3, 50, 200, ftol=1e-4, valid=False),
            False,
            False,
        ),
        # (the weight M-step with N = 0 is graded here, through fit, and not on its own: a CS136 fit
        # never calls it with fewer than two rows)
        ("no training rows (N=0)", _fit_args(86, 3, 2, 0, 5, valid=False), False, False),
        (
            "do_double_check_correctness=True on a correct fit",
            _fit_args(87, 3, 4, 40, 8, double_check=True),
            True,
            False,
        ),
    ]


# --------------------------------------------------------------------------- the tests


def build_tests():
    fits = _fit_cases()
    raw_log_pi = np.array([0.3, -2.0, 5.0, 0.0])  # not normalized: the inverse must normalize it
    return [
        Test(
            "calc_neg_log_lik (numpy)",
            14,
            _nll_cases("neg_log_lik_np"),
            "calc_neg_log_lik__np.calc_neg_log_lik: negative log likelihood of a diagonal GMM",
        ),
        Test(
            "calc_neg_log_lik (autograd)",
            12,
            _ag_cases(),
            "calc_neg_log_lik__ag.calc_neg_log_lik: same value, and autograd can differentiate it",
        ),
        Test(
            "estep__calc_r_NK",
            12,
            [
                Case("two clusters, K=2, D=3", "estep", _em_args(40, 2, 3), {"r_NK": TIGHT}, public=True),
                Case("tops-sized rows, K=8, D=400", "estep", _em_args(41, 8, 400, N=120), {"r_NK": TIGHT}),
                Case(
                    "points far from every mean (needs log-sum-exp)",
                    "estep",
                    _em_args(42, 3, 5, x_ND=80.0 + _blobs(43, 30, 5)),
                    {"r_NK": TIGHT},
                ),
                Case("K=1 gives all ones", "estep", _em_args(44, 1, 2), {"r_NK": TIGHT}),
                Case(
                    "stddevs of 1e-3 (densities underflow unless kept in log space)",
                    "estep",
                    {**_em_args(45, 3, 20), "stddev_KD": np.full((3, 20), 1e-3)},
                    {"r_NK": TIGHT},
                ),
                Case(
                    "a component with weight 0 gets responsibility 0",
                    "estep",
                    {**_em_args(46, 3, 4), **_dead_params(46, 3, 4, dead=0)},
                    {"r_NK": TIGHT},
                ),
                Case("no rows (N=0) gives shape (0, K)", "estep", _em_args(47, 3, 2, N=0), {"r_NK": TIGHT}),
            ],
            "estep__calc_r_NK: responsibilities, rows summing to one",
        ),
        Test(
            "calc_EM_loss",
            10,
            [
                Case(
                    "random responsibilities, K=3, D=4",
                    "em_loss",
                    _em_args(50, 3, 4, N=30, r_NK=_resp(51, 30, 3)),
                    {"loss": TIGHT},
                    public=True,
                ),
                Case(
                    "one-hot responsibilities (0 log 0 = 0)",
                    "em_loss",
                    _em_args(52, 3, 4, N=30, r_NK=np.eye(3)[np.random.RandomState(53).randint(3, size=30)]),
                    {"loss": TIGHT},
                ),
                Case(
                    "tops-sized rows, K=4, D=400",
                    "em_loss",
                    _em_args(54, 4, 400, N=80, r_NK=_resp(55, 80, 4)),
                    {"loss": TIGHT},
                ),
                Case(
                    "other mode and spread (m=4, s=2)",
                    "em_loss",
                    _em_args(56, 2, 3, N=20, m=4.0, s=2.0, r_NK=_resp(57, 20, 2)),
                    {"loss": TIGHT},
                ),
                Case(
                    "a component with weight 0 and no responsibility (0 * -inf counts as 0)",
                    "em_loss",
                    {
                        **_em_args(58, 3, 4, N=30, r_NK=_resp(59, 30, 3, zero_column=2)),
                        **_dead_params(58, 3, 4, dead=2),
                    },
                    {"loss": TIGHT},
                ),
                Case(
                    "no rows (N=0): the penalty alone",
                    "em_loss",
                    _em_args(48, 2, 3, N=0, r_NK=np.zeros((0, 2))),
                    {"loss": TIGHT},
                ),
            ],
            "calc_EM_loss: penalty minus the expected complete log likelihood minus the entropy of r",
        ),
        Test(
            "mstep__update_log_pi_K",
            6,
            [
                Case(
                    "random responsibilities, K=3",
                    "mstep_log_pi",
                    _em_args(60, 3, 2, r_NK=_resp(61, 40, 3)),
                    {"pi_K": TIGHT},
                    public=True,
                ),
                Case(
                    "random responsibilities, K=6",
                    "mstep_log_pi",
                    _em_args(64, 6, 2, r_NK=_resp(65, 50, 6)),
                    {"pi_K": TIGHT},
                ),
                Case(
                    "a component with no responsibility",
                    "mstep_log_pi",
                    _em_args(62, 4, 2, r_NK=_resp(63, 40, 4, zero_column=2)),
                    {"pi_K": TIGHT},
                ),
            ],
            "mstep__update_log_pi_K: new mixture weights (compared as probabilities)",
        ),
        Test(
            "mstep__update_mu_KD",
            7,
            [
                Case(
                    "random responsibilities, K=3, D=4",
                    "mstep_mu",
                    _em_args(64, 3, 4, r_NK=_resp(65, 40, 3)),
                    {"mu_KD": TIGHT},
                    public=True,
                ),
                Case(
                    "random responsibilities, K=5, D=6",
                    "mstep_mu",
                    _em_args(70, 5, 6, r_NK=_resp(71, 40, 5)),
                    {"mu_KD": TIGHT},
                ),
                Case(
                    "a component with no responsibility (any finite mean)",
                    "mstep_mu",
                    _em_args(66, 4, 3, r_NK=_resp(67, 40, 4, zero_column=1)),
                    {"mu_KD": TIGHT},
                ),
                Case(
                    "tops-sized rows, K=8, D=400",
                    "mstep_mu",
                    _em_args(68, 8, 400, N=100, r_NK=_resp(69, 100, 8)),
                    {"mu_KD": TIGHT},
                ),
                Case(
                    "double precision throughout (rtol 1e-10)",
                    "mstep_mu",
                    _em_args(72, 4, 30, N=200, r_NK=_resp(73, 200, 4)),
                    {"mu_KD": DOUBLE},
                ),
            ],
            "mstep__update_mu_KD: responsibility-weighted means",
        ),
        Test(
            "mstep__update_stddev_KD",
            9,
            [
                Case(
                    "random responsibilities, K=3, D=4, m=1, s=100",
                    "mstep_stddev",
                    _stddev_args(70, 3, 4, m=1.0),
                    {"stddev_KD": TIGHT},
                    public=True,
                ),
                Case(
                    "random responsibilities, K=4, D=5, m=1, s=100",
                    "mstep_stddev",
                    _stddev_args(78, 4, 5, m=1.0),
                    {"stddev_KD": TIGHT},
                ),
                Case(
                    "a component with no responsibility gets stddev sqrt(m)",
                    "mstep_stddev",
                    _stddev_args(72, 4, 3, zero_column=3),
                    {"stddev_KD": TIGHT},
                ),
                Case(
                    "tops-sized rows, K=8, D=400, m=25, s=100",
                    "mstep_stddev",
                    _stddev_args(74, 8, 400, N=100),
                    {"stddev_KD": TIGHT},
                ),
                Case(
                    "other mode and spread (m=4, s=2)",
                    "mstep_stddev",
                    _stddev_args(76, 2, 3, m=4.0, s=2.0),
                    {"stddev_KD": TIGHT},
                ),
                Case(
                    "no rows (N=0) gives sqrt(m) everywhere",
                    "mstep_stddev",
                    _stddev_args(79, 3, 2, N=0),
                    {"stddev_KD": TIGHT},
                ),
                Case(
                    "double precision throughout (rtol 1e-10)",
                    "mstep_stddev",
                    _stddev_args(88, 4, 30, N=200, m=0.1, s=10.0),
                    {"stddev_KD": DOUBLE},
                ),
            ],
            "mstep__update_stddev_KD: penalized variance update around the new means, returned as "
            "standard deviations",
        ),
        Test(
            "fit (EM): history",
            10,
            [
                Case(name, "fit_em", args, _history_expect(valid), public=public)
                for name, args, valid, public in fits
            ]
            + [
                Case(
                    "do_double_check_correctness=True raises AssertionError when an M-step raises the loss",
                    "fit_em_double_check_catches",
                    {k: v for k, v in _fit_args(89, 3, 4, 40, 5).items() if k not in ("ftol", "x_valid_ND")},
                    {"raised": Exact()},
                ),
            ],
            "GMM_PenalizedMLEstimator_EM.fit: one history entry per iteration, entry t scoring the "
            "parameters after t EM steps",
            timeout=120,
        ),
        Test(
            "fit (EM): final parameters",
            4,
            [
                Case(name, "fit_em", args, {"final_params": FINAL}, public=public)
                for name, args, _, public in fits
            ],
            "GMM_PenalizedMLEstimator_EM.fit: the parameters left in the model are the ones the last "
            "history entry scores",
            timeout=120,
        ),
        Test(
            "transforms",
            6,
            [
                Case(
                    "log_softmax and its inverse",
                    "transforms",
                    {
                        "name": "transform_log_softmax:log_softmax:inverse_log_softmax",
                        "values": np.array([0.3, -2.0, 5.0, 0.0]),
                        "raw": raw_log_pi,
                    },
                    {"forward": TIGHT, "round_trip": TIGHT, "inverse_of_raw": TIGHT},
                    public=True,
                ),
                Case(
                    "log_softmax of huge inputs (needs log-sum-exp)",
                    "transforms",
                    {
                        "name": "transform_log_softmax:log_softmax:inverse_log_softmax",
                        "values": np.array([800.0, 790.0, -1000.0]),
                    },
                    {"forward": TIGHT, "round_trip": TIGHT},
                ),
                Case(
                    "inverse_log_softmax of log weights that are not normalized",
                    "transforms",
                    {
                        "name": "transform_log_softmax:log_softmax:inverse_log_softmax",
                        "values": np.array([1.0, 2.0]),
                        "raw": np.array([-0.1, -0.2, 0.4, 1.5, -3.0]),
                    },
                    {"inverse_of_raw": TIGHT},
                ),
                Case(
                    "softplus and its inverse",
                    "transforms",
                    {
                        "name": "transform_softplus:softplus:inverse_softplus",
                        "values": np.array([-3.0, -0.5, 0.0, 0.7, 4.0]),
                        "raw": np.array([0.1, 1.0, 3.0]),
                    },
                    {"forward": TIGHT, "round_trip": TIGHT, "inverse_of_raw": TIGHT},
                    public=True,
                ),
                Case(
                    "softplus far in both tails",
                    "transforms",
                    {
                        "name": "transform_softplus:softplus:inverse_softplus",
                        "values": np.array([-30.0, -700.0, 40.0, 800.0]),
                    },
                    {"forward": TIGHT, "round_trip": TIGHT},
                ),
                Case(
                    "inverse_softplus of tiny and huge standard deviations",
                    "transforms",
                    {
                        "name": "transform_softplus:softplus:inverse_softplus",
                        "values": np.array([0.5]),
                        "raw": np.array([1e-30, 1e-8, 0.3, 50.0, 900.0]),
                    },
                    {"inverse_of_raw": TIGHT},
                ),
            ],
            "transform_log_softmax / transform_softplus: values and round trips, stable in the tails",
        ),
        Test(
            "calc_loss (L-BFGS)",
            6,
            [
                Case(
                    "K=2, D=3",
                    "lbfgs_loss",
                    {**_em_args(90, 2, 3, N=30)},
                    {"loss": TIGHT, "grad_norm": LOOSE, "pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT},
                    public=True,
                ),
                Case(
                    "K=3, D=4",
                    "lbfgs_loss",
                    {**_em_args(93, 3, 4, N=30)},
                    {"loss": TIGHT, "grad_norm": LOOSE, "pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT},
                ),
                Case(
                    "tops-sized rows, K=4, D=400, m=25, s=100",
                    "lbfgs_loss",
                    {**_em_args(91, 4, 400, N=60)},
                    {"loss": TIGHT, "grad_norm": LOOSE, "pi_K": TIGHT, "mu_KD": TIGHT, "stddev_KD": TIGHT},
                ),
            ],
            "GMM_PenalizedMLEstimator_LBFGS.calc_loss: penalized negative log likelihood of a flat "
            "parameter vector, differentiable by autograd",
        ),
        Test(
            "fit (L-BFGS)",
            4,
            [
                Case(
                    "K=3, D=4, runs to convergence",
                    "fit_lbfgs",
                    {
                        k: v
                        for k, v in _fit_args(92, 3, 4, 50, 300).items()
                        if k not in ("ftol", "x_valid_ND")
                    },
                    {
                        "initial_loss_per_pixel": TIGHT,
                        "final_loss_per_pixel": Close(rtol=1e-4),
                        "final_params_loss_per_pixel": Close(rtol=1e-4),
                    },
                ),
            ],
            "GMM_PenalizedMLEstimator_LBFGS.fit: reaches the same optimum from the same start",
            timeout=120,
        ),
    ]
