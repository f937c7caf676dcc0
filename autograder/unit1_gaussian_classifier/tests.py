"""Hidden tests for unit 1 (Gaussian generative classifier).

The graded functions live in the student's notebook; the grader keeps only its imports and
definitions, so no experiment re-runs while grading. Inputs are small synthetic problems built here
from fixed seeds (raw-pixel-like scales, singular covariances where the unit's point needs them);
references come from ``references.npz`` (``gmmcourse refs unit1``).
"""

import numpy as np

from gmmcourse.grading.spec import Case, Close, Exact, Limits, Submission, Test

UNIT = "unit1_gaussian_classifier"
SUBMISSION = Submission(kind="notebook", files=("unit1_gaussian_classifier.ipynb",))
LIMITS = Limits(cpu_seconds=240, memory_bytes=4 * 1024**3)

TIGHT = Close(rtol=1e-7, atol=1e-7)


def _digits(seed, N, D, K, scale=60.0, dead_pixels=0):
    """Labelled data on a 0..255-like scale; the first ``dead_pixels`` features are constant 0."""
    rng = np.random.RandomState(seed)
    y = np.arange(N) % K
    rng.shuffle(y)
    centres = rng.uniform(40, 215, size=(K, D))
    mix = rng.randn(K, D, D) * 0.4 + np.eye(D)
    x = centres[y] + scale * np.einsum("nd,nde->ne", rng.randn(N, D), mix[y])
    x[:, :dead_pixels] = 0.0
    return x, y


def _model(seed, N, D, K, dead_pixels=0, n_query=15):
    """(x, y, pi, mu, sigma, x_query, y_query): sigma is the biased class covariance (singular when
    n_k <= D); the queries come from the same classes."""
    x_all, y_all = _digits(seed, N + n_query, D, K, dead_pixels=dead_pixels)
    x, y, xq, yq = x_all[:N], y_all[:N], x_all[N:], y_all[N:]
    pi = np.bincount(y, minlength=K) / N
    mu = np.stack([x[y == k].mean(axis=0) for k in range(K)])
    sigma = np.stack([np.cov(x[y == k], rowvar=False, bias=True) for k in range(K)])
    return x, y, pi, mu, sigma, xq, yq


def _lj_args(seed, N, D, K, c, dead_pixels=0, with_labels=False):
    _, _, pi, mu, sigma, xq, yq = _model(seed, N, D, K, dead_pixels)
    args = {"x_ND": xq, "pi_K": pi, "mu_KD": mu, "sigma_KDD": sigma}
    args = args if c is None else {**args, "c": c}
    return {**args, "y_N": yq} if with_labels else args


def build_tests():
    small = _digits(1, 30, 5, 3)
    uneven_x, uneven_y = _digits(2, 61, 12, 4)
    singular = _digits(3, 40, 25, 4, dead_pixels=3)
    sweep_args = _lj_args(20, 60, 8, 3, None)
    grid = np.array([0.1, 10.0, 100.0, 4000.0, 1e6])
    chooser_x, chooser_y = _digits(30, 300, 30, 4, scale=250.0)
    hard_x, hard_y = _digits(30, 300, 40, 4, scale=300.0)
    return [
        Test("fit_generative_model", 15, [
            Case("3 classes, D=5", "fit", {"x_ND": small[0], "y_N": small[1]},
                 {"pi_K": TIGHT, "mu_KD": TIGHT, "sigma_KDD": TIGHT}, public=True),
            Case("4 classes of unequal size, D=12", "fit", {"x_ND": uneven_x, "y_N": uneven_y},
                 {"pi_K": TIGHT, "mu_KD": TIGHT, "sigma_KDD": TIGHT}),
            Case("fewer examples per class than pixels, constant pixels", "fit",
                 {"x_ND": singular[0], "y_N": singular[1]},
                 {"pi_K": TIGHT, "mu_KD": TIGHT, "sigma_KDD": TIGHT}),
        ], "fit_generative_model: class frequencies, means and (maximum-likelihood) covariances"),
        Test("class_log_joint", 15, [
            Case("3 classes, D=5, c=10", "log_joint", _lj_args(4, 60, 5, 3, 10.0), {"log_joint_NK": TIGHT},
                 public=True),
            Case("singular covariances with constant pixels, c=4000", "log_joint",
                 _lj_args(5, 40, 25, 4, 4000.0, dead_pixels=3), {"log_joint_NK": TIGHT}),
            Case("one c per class", "log_joint", _lj_args(6, 60, 6, 3, np.array([1.0, 50.0, 2500.0])),
                 {"log_joint_NK": TIGHT}),
            Case("huge c = 1e9", "log_joint", _lj_args(7, 60, 6, 3, 1e9), {"log_joint_NK": TIGHT}),
        ], "class_log_joint: log pi_k + log N(x | mu_k, sigma_k + c I) for every example and class"),
        Test("decompose_and_log_joint_from_eig", 10, [
            Case("3 classes, D=6, several c from one decomposition", "log_joint_eig",
                 {**_lj_args(8, 60, 6, 3, None), "c_list": [0.5, 30.0, 4000.0]},
                 {"c0": TIGHT, "c1": TIGHT, "c2": TIGHT}, public=True),
            Case("singular covariances with constant pixels", "log_joint_eig",
                 {**_lj_args(9, 40, 25, 4, None, dead_pixels=3), "c_list": [10.0, 4000.0]},
                 {"c0": TIGHT, "c1": TIGHT}),
        ], "decompose / log_joint_from_eig: the eigen route gives the same log joint for any c"),
        Test("log_joint_sweep", 10, [
            Case("grid of 5 values", "sweep", {**sweep_args, "c_C": grid},
                 {"log_joint_CNK": TIGHT}, public=True),
            Case("grid of per-class values (C, K)", "sweep",
                 {**sweep_args, "c_C": np.array([[1.0, 10.0, 100.0], [4000.0, 20.0, 3.0]])},
                 {"log_joint_CNK": TIGHT}),
        ], "log_joint_sweep: log joint for a whole grid of c from one decomposition"),
        Test("predict_and_count_errors", 10, [
            Case("3 classes, c=50", "predict_and_count",
                 _lj_args(10, 60, 6, 3, 50.0, with_labels=True),
                 {"yhat_N": Exact(), "n_errors": Exact()}, public=True),
            Case("singular covariances, c=4000", "predict_and_count",
                 _lj_args(11, 40, 25, 4, 4000.0, dead_pixels=3, with_labels=True),
                 {"yhat_N": Exact(), "n_errors": Exact()}),
        ], "predict / count_errors: most probable class and the number of mistakes"),
        Test("split_train_valid", 5, [
            Case("n=20, n_valid=5, seed=0", "split", {"n": 20, "n_valid": 5, "seed": 0},
                 {"fit_idx": Exact(), "valid_idx": Exact()}, public=True),
            Case("n=1000, n_valid=200, seed=7", "split", {"n": 1000, "n_valid": 200, "seed": 7},
                 {"fit_idx": Exact(), "valid_idx": Exact()}),
        ], "split_train_valid: the documented random split"),
        Test("select_c", 15, [
            Case("4 classes, D=30, 11 candidates", "choose_c",
                 {"x_ND": chooser_x, "y_N": chooser_y, "candidates_C": np.geomspace(1, 1e5, 11),
                  "seed": 3, "n_valid": 150}, {"best_c": TIGHT, "valid_errors_C": Exact()}, public=True),
            Case("4 classes, D=40, the best c is large", "choose_c",
                 {"x_ND": hard_x, "y_N": hard_y, "candidates_C": np.geomspace(1, 1e5, 11),
                  "seed": 3, "n_valid": 150}, {"best_c": TIGHT, "valid_errors_C": Exact()}),
        ], "select_c: validation errors of each candidate on a split of the training data only"),
    ]
