"""Hidden tests for unit 1 (Gaussian generative classifier).

The graded functions live in the student's notebook; the grader keeps only its imports and
definitions, so no experiment re-runs while grading. Inputs are small synthetic problems built here
from fixed seeds (raw-pixel-like scales, singular covariances and pixels that are constant in some
classes only), plus 108 real MNIST training images (``mnist_subset.npz``: digits 3, 5 and 8, the
first 36 of each; indices in the file) for D = 784, where a determinant overflows. Every probe also
checks that the student's functions leave their inputs unchanged. References come from
``references.npz`` (``gmmcourse refs unit1``).
"""

from pathlib import Path

import numpy as np

from gmmcourse.grading.spec import Case, Close, Exact, Limits, Submission, Test, Within

UNIT = "unit1_gaussian_classifier"
SUBMISSION = Submission(kind="notebook", files=("unit1_gaussian_classifier.ipynb",))
LIMITS = Limits(cpu_seconds=240, memory_bytes=4 * 1024**3)

TIGHT = Close(rtol=1e-7, atol=1e-7)
# float64 arithmetic meets this easily; values computed in float32 (about 7 digits) cannot
FLOAT64 = Close(rtol=1e-10, atol=1e-9)
UNCHANGED = {"changed_inputs": Within(0, 0)}


def _digits(seed, N, D, K, scale=60.0, dead_pixels=0, class_dead=0, offset=0.0):
    """Labelled data on a 0..255-like scale. The first ``dead_pixels`` features are 0 in every class;
    class k is also constant (0) on its own ``class_dead`` features, which vary in the other classes."""
    rng = np.random.RandomState(seed)
    y = np.arange(N) % K
    rng.shuffle(y)
    centres = rng.uniform(40, 215, size=(K, D)) + offset
    mix = rng.randn(K, D, D) * 0.4 + np.eye(D)
    x = centres[y] + scale * np.einsum("nd,nde->ne", rng.randn(N, D), mix[y])
    x[:, :dead_pixels] = 0.0
    for k in range(K):
        start = dead_pixels + k * class_dead
        x[np.ix_(y == k, np.arange(start, start + class_dead))] = 0.0
    return x, y


def _model(seed, N, D, K, n_query=15, **kw):
    """(x, y, pi, mu, sigma, x_query, y_query): sigma is the biased class covariance (singular when
    n_k <= D); the queries come from the same classes (so they are inked where another class is dead)."""
    x_all, y_all = _digits(seed, N + n_query, D, K, **kw)
    x, y, xq, yq = x_all[:N], y_all[:N], x_all[N:], y_all[N:]
    pi = np.bincount(y, minlength=K) / N
    mu = np.stack([x[y == k].mean(axis=0) for k in range(K)])
    sigma = np.stack([np.cov(x[y == k], rowvar=False, bias=True) for k in range(K)])
    return x, y, pi, mu, sigma, xq, yq


def _lj_args(seed, N, D, K, c, with_labels=False, **kw):
    _, _, pi, mu, sigma, xq, yq = _model(seed, N, D, K, **kw)
    args = {"x_ND": xq, "pi_K": pi, "mu_KD": mu, "sigma_KDD": sigma}
    args = args if c is None else {**args, "c": c}
    return {**args, "y_N": yq} if with_labels else args


def _mnist(c_key, c, with_labels=False):
    """Real images, D = 784: 30 per digit to fit the model on, the other 6 per digit as queries."""
    with np.load(Path(__file__).with_name("mnist_subset.npz")) as data:
        images, labels = data["images"], data["labels"]
    y = np.searchsorted(np.unique(labels), labels)  # digits 3, 5, 8 -> classes 0, 1, 2
    rank = np.array([np.sum(y[:i] == y[i]) for i in range(len(y))])
    fit, query = rank < 30, rank >= 30
    args = {"images": images[fit], "labels": y[fit], "query": images[query], c_key: c}
    return {**args, "query_labels": y[query]} if with_labels else args


def _with_unchanged(**expect):
    return {**expect, **UNCHANGED}


def build_tests():
    small = _digits(1, 30, 5, 3)
    uneven_x, uneven_y = _digits(2, 61, 12, 4)
    singular = _digits(3, 40, 25, 4, dead_pixels=3, class_dead=2)
    offset = _digits(12, 45, 6, 3, scale=4.0, offset=1e4)
    sweep_args = _lj_args(20, 60, 8, 3, None)
    dead_sweep = _lj_args(21, 40, 20, 3, None, dead_pixels=2, class_dead=3)
    grid = np.array([0.1, 10.0, 100.0, 4000.0, 1e6])
    per_class = np.array([1.0, 50.0, 2500.0])
    chooser_x, chooser_y = _digits(30, 300, 30, 4, scale=250.0)
    hard_x, hard_y = _digits(30, 300, 40, 4, scale=300.0)
    fit_out = _with_unchanged(pi_K=TIGHT, mu_KD=TIGHT, sigma_KDD=TIGHT)
    return [
        Test(
            "fit_generative_model",
            15,
            [
                Case("3 classes, D=5", "fit", {"x_ND": small[0], "y_N": small[1]}, fit_out, public=True),
                Case("4 classes of unequal size, D=12", "fit", {"x_ND": uneven_x, "y_N": uneven_y}, fit_out),
                Case(
                    "fewer examples per class than pixels, constant pixels",
                    "fit",
                    {"x_ND": singular[0], "y_N": singular[1]},
                    fit_out,
                ),
                Case(
                    "pixels near 10 000 with a spread of a few units (float64 precision)",
                    "fit",
                    {"x_ND": offset[0], "y_N": offset[1]},
                    _with_unchanged(pi_K=FLOAT64, mu_KD=FLOAT64, sigma_KDD=FLOAT64),
                ),
            ],
            "fit_generative_model: class frequencies, means and (maximum-likelihood) covariances",
        ),
        Test(
            "class_log_joint",
            15,
            [
                Case(
                    "3 classes, D=5, c=10",
                    "log_joint",
                    _lj_args(4, 60, 5, 3, 10.0),
                    _with_unchanged(log_joint_NK=TIGHT),
                    public=True,
                ),
                Case(
                    "singular covariances, pixels constant in some classes only, c=4000",
                    "log_joint",
                    _lj_args(5, 40, 25, 4, 4000.0, dead_pixels=3, class_dead=2),
                    _with_unchanged(log_joint_NK=TIGHT),
                ),
                Case(
                    "one c per class",
                    "log_joint",
                    _lj_args(6, 60, 6, 3, per_class),
                    _with_unchanged(log_joint_NK=TIGHT),
                ),
                Case(
                    "huge c = 1e9",
                    "log_joint",
                    _lj_args(7, 60, 6, 3, 1e9),
                    _with_unchanged(log_joint_NK=TIGHT),
                ),
                Case(
                    "real digits, D=784, c=4000",
                    "images_log_joint",
                    _mnist("c", 4000.0),
                    _with_unchanged(log_joint_NK=TIGHT),
                ),
                Case(
                    "float64 precision, c=3",
                    "log_joint",
                    _lj_args(13, 45, 6, 3, 3.0, scale=4.0, offset=1e4),
                    _with_unchanged(log_joint_NK=FLOAT64),
                ),
            ],
            "class_log_joint: log pi_k + log N(x | mu_k, sigma_k + c I) for every example and class",
        ),
        Test(
            "decompose_and_log_joint_from_eig",
            10,
            [
                Case(
                    "3 classes, D=6, several c from one decomposition",
                    "log_joint_eig",
                    {**_lj_args(8, 60, 6, 3, None), "c_list": [0.5, 30.0, 4000.0]},
                    _with_unchanged(c0=TIGHT, c1=TIGHT, c2=TIGHT),
                    public=True,
                ),
                Case(
                    "singular covariances, pixels constant in some classes only",
                    "log_joint_eig",
                    {**_lj_args(9, 40, 25, 4, None, dead_pixels=3, class_dead=2), "c_list": [10.0, 4000.0]},
                    _with_unchanged(c0=TIGHT, c1=TIGHT),
                ),
                Case(
                    "one c per class",
                    "log_joint_eig",
                    {**_lj_args(14, 40, 12, 3, None, class_dead=2), "c_list": [per_class, per_class[::-1]]},
                    _with_unchanged(c0=TIGHT, c1=TIGHT),
                ),
                Case(
                    "real digits, D=784, two values of c",
                    "images_log_joint_eig",
                    _mnist("c_list", [4000.0, np.array([2000.0, 4000.0, 8000.0])]),
                    _with_unchanged(c0=TIGHT, c1=TIGHT),
                ),
            ],
            "decompose / log_joint_from_eig: the eigen route gives the same log joint for any c",
        ),
        Test(
            "log_joint_sweep",
            10,
            [
                Case(
                    "grid of 5 values",
                    "sweep",
                    {**sweep_args, "c_C": grid},
                    _with_unchanged(log_joint_CNK=TIGHT),
                    public=True,
                ),
                Case(
                    "grid of per-class values (C, K)",
                    "sweep",
                    {**sweep_args, "c_C": np.array([[1.0, 10.0, 100.0], [4000.0, 20.0, 3.0]])},
                    _with_unchanged(log_joint_CNK=TIGHT),
                ),
                Case(
                    "pixels constant in some classes only",
                    "sweep",
                    {**dead_sweep, "c_C": grid},
                    _with_unchanged(log_joint_CNK=TIGHT),
                ),
            ],
            "log_joint_sweep: log joint for a whole grid of c from one decomposition",
        ),
        Test(
            "predict_and_count_errors",
            10,
            [
                Case(
                    "3 classes, c=50",
                    "predict_and_count",
                    _lj_args(10, 60, 6, 3, 50.0, with_labels=True),
                    _with_unchanged(yhat_N=Exact(), n_errors=Exact()),
                    public=True,
                ),
                Case(
                    "singular covariances, pixels constant in some classes only, c=4000",
                    "predict_and_count",
                    _lj_args(11, 40, 25, 4, 4000.0, with_labels=True, dead_pixels=3, class_dead=2),
                    _with_unchanged(yhat_N=Exact(), n_errors=Exact()),
                ),
                Case(
                    "one c per class",
                    "predict_and_count",
                    _lj_args(15, 30, 10, 3, np.array([3.0, 3000.0, 30.0]), with_labels=True, n_query=40),
                    _with_unchanged(yhat_N=Exact(), n_errors=Exact()),
                ),
                Case(
                    "real digits, D=784, c=4000",
                    "images_predict",
                    _mnist("c", 4000.0, with_labels=True),
                    _with_unchanged(yhat_N=Exact(), n_errors=Exact()),
                ),
            ],
            "predict / count_errors: most probable class and the number of mistakes",
        ),
        Test(
            "split_train_valid",
            5,
            [
                Case(
                    "n=20, n_valid=5, seed=0",
                    "split",
                    {"n": 20, "n_valid": 5, "seed": 0},
                    {"fit_idx": Exact(), "valid_idx": Exact()},
                    public=True,
                ),
                Case(
                    "n=1000, n_valid=200, seed=7",
                    "split",
                    {"n": 1000, "n_valid": 200, "seed": 7},
                    {"fit_idx": Exact(), "valid_idx": Exact()},
                ),
            ],
            "split_train_valid: the documented random split",
        ),
        Test(
            "select_c",
            15,
            [
                Case(
                    "4 classes, D=30, 11 candidates",
                    "choose_c",
                    {
                        "x_ND": chooser_x,
                        "y_N": chooser_y,
                        "candidates_C": np.geomspace(1, 1e5, 11),
                        "seed": 3,
                        "n_valid": 150,
                    },
                    _with_unchanged(best_c=TIGHT, valid_errors_C=Exact()),
                    public=True,
                ),
                Case(
                    "4 classes, D=40, the best c is large",
                    "choose_c",
                    {
                        "x_ND": hard_x,
                        "y_N": hard_y,
                        "candidates_C": np.geomspace(1, 1e5, 11),
                        "seed": 3,
                        "n_valid": 150,
                    },
                    _with_unchanged(best_c=TIGHT, valid_errors_C=Exact()),
                ),
                Case(
                    "several candidates tie for the fewest errors",
                    "choose_c",
                    {
                        "x_ND": chooser_x,
                        "y_N": chooser_y,
                        "candidates_C": np.array([1e12, 1e13, 1e11, 1e14]),
                        "seed": 5,
                        "n_valid": 150,
                    },
                    _with_unchanged(best_c=TIGHT, valid_errors_C=Exact()),
                ),
            ],
            "select_c: validation errors of each candidate on a split of the training data only",
        ),
    ]
