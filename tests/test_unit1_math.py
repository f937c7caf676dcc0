"""Unit 1 solution math, checked against deliberately naive versions of the same quantities.

The graded functions live in the solution notebook. They are loaded exactly as the grader sees them:
``gmmcourse.grading.notebook_source.to_module`` keeps the definitions and the constants and imports those
need, and the notebook's tools (otter, matplotlib) are not importable, as in the grading sandbox; so
no data is loaded and nothing slow runs here.
"""

import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gmmcourse.grading.notebook_source import to_module

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "solutions" / "unit1_gaussian_classifier" / "unit1_gaussian_classifier.ipynb"
TOOLS = ("otter", "matplotlib", "course_data")


def load_notebook_definitions(path: Path) -> dict:
    """Namespace of the module the grader builds from a notebook (tools blocked while it loads)."""
    extracted = to_module(path.read_bytes(), path.name)
    assert not extracted.notes, extracted.notes
    namespace: dict = {"__name__": "submission"}
    with mock.patch.dict(sys.modules, {name: None for name in TOOLS}):
        exec(compile(extracted.source, str(path), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def nb():
    return load_notebook_definitions(NOTEBOOK)


def test_grader_module_has_only_definitions(nb):
    """No experiment ran: the data and the figures are absent, every graded function is there."""
    for name in (
        "fit_generative_model",
        "class_log_joint",
        "decompose",
        "log_joint_sweep",
        "log_joint_from_eig",
        "predict",
        "count_errors",
        "split_train_valid",
        "select_c",
        "coordinate_descent_c",
        "select_c_per_class",
    ):
        assert callable(nb[name]), name
    assert "x_train_ND" not in nb and "fig" not in nb and "grader" not in nb


def make_classes(rng, n_per_class=(40, 50, 30), D=5, rank=None, constant_dims=()):
    """Gaussian-ish data with labels 0..K-1; optional low rank and constant (zero-variance) dims."""
    xs, ys = [], []
    for k, n in enumerate(n_per_class):
        r = D if rank is None else rank
        basis = rng.normal(size=(r, D))
        x = rng.normal(size=(n, r)) @ basis + 3.0 * rng.normal(size=D)
        for d in constant_dims:
            x[:, d] = float(k)  # same value for the whole class: zero variance there
        xs.append(x)
        ys.append(np.full(n, k))
    order = rng.permutation(sum(n_per_class))
    return np.concatenate(xs)[order], np.concatenate(ys)[order]


def naive_log_joint(x, pi, mu, sigma, c):
    """log pi_k + log N(x | mu_k, sigma_k + c_k I) with scipy, one class at a time."""
    K, D = mu.shape
    c_K = np.broadcast_to(np.asarray(c, dtype=float), (K,))
    return np.stack(
        [
            np.log(pi[k]) + multivariate_normal(mu[k], sigma[k] + c_K[k] * np.eye(D)).logpdf(x)
            for k in range(K)
        ],
        axis=1,
    ).reshape(len(x), K)


# ----------------------------------------------------------------------------------------- fitting


def test_fit_uses_maximum_likelihood_covariance(nb):
    rng = np.random.default_rng(1)
    x, y = make_classes(rng)
    pi, mu, sigma = nb["fit_generative_model"](x, y)
    assert pi.shape == (3,) and mu.shape == (3, 5) and sigma.shape == (3, 5, 5)
    np.testing.assert_allclose(pi, np.bincount(y) / len(y), rtol=0, atol=1e-15)
    for k in range(3):
        np.testing.assert_allclose(mu[k], x[y == k].mean(axis=0), rtol=1e-13, atol=1e-13)
        mle = np.cov(x[y == k], rowvar=False, bias=True)
        np.testing.assert_allclose(sigma[k], mle, rtol=1e-11, atol=1e-12)
        # and not the unbiased 1/(n_k - 1) estimate
        assert not np.allclose(sigma[k], np.cov(x[y == k], rowvar=False, bias=False), rtol=1e-6, atol=0)


def test_fit_accepts_uint8_labels_and_integer_pixels(nb):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(30, 4)).astype(np.uint8)
    y = np.repeat(np.arange(3, dtype=np.uint8), 10)
    pi, mu, sigma = nb["fit_generative_model"](x, y)
    np.testing.assert_allclose(sigma[1], np.cov(x[10:20].astype(float), rowvar=False, bias=True), atol=1e-9)


@pytest.mark.parametrize(
    ("labels", "n_classes", "needle"),
    [
        ([0, 0, 2, 2], None, "[1]"),  # label 1 absent
        ([0, 1, 1, 0], 3, "[2]"),  # asked for 3 classes, label 2 absent
        ([0, 1, 3, 1], 3, "0..2"),  # label out of range
        ([0.0, 1.0, 1.0, 0.0], None, "integer"),  # float labels
        ([0, -1, 1, 0], None, "non-negative"),
    ],
)
def test_fit_rejects_bad_labels(nb, labels, n_classes, needle):
    x = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match=None) as info:
        nb["fit_generative_model"](x, np.array(labels), n_classes=n_classes)
    assert needle in str(info.value)


def test_fit_rejects_mismatched_shapes(nb):
    with pytest.raises(ValueError, match="shape"):
        nb["fit_generative_model"](np.zeros((4, 2)), np.zeros(5, dtype=int))


# ------------------------------------------------------------------------------ log probabilities


@pytest.mark.parametrize("c", [0.05, 1.0, 30.0, [0.5, 2.0, 8.0]])
def test_class_log_joint_matches_scipy(nb, c):
    rng = np.random.default_rng(3)
    x, y = make_classes(rng, rank=3)  # rank-deficient covariances: only c makes them invertible
    pi, mu, sigma = nb["fit_generative_model"](x, y)
    x_new = rng.normal(size=(7, 5)) * 2
    got = nb["class_log_joint"](x_new, pi, mu, sigma, c)
    assert got.shape == (7, 3)
    np.testing.assert_allclose(got, naive_log_joint(x_new, pi, mu, sigma, c), rtol=1e-10, atol=1e-8)


def test_class_log_joint_explains_singular_covariance(nb):
    rng = np.random.default_rng(4)
    x, y = make_classes(rng, constant_dims=(2,))
    pi, mu, sigma = nb["fit_generative_model"](x, y)
    with pytest.raises(ValueError, match="positive definite"):
        nb["class_log_joint"](x[:3], pi, mu, sigma, 0.0)


@pytest.mark.parametrize("constant_dims", [(), (0, 3)])
def test_eigen_path_equals_direct_path(nb, constant_dims):
    rng = np.random.default_rng(5)
    x, y = make_classes(rng, D=6, rank=4, constant_dims=constant_dims)
    pi, mu, sigma = nb["fit_generative_model"](x, y)
    parts = nb["decompose"](sigma)
    x_new = np.vstack([rng.normal(size=(6, 6)) * 3, x[:4]])
    grid = [1e-3, 0.1, 1.0, 10.0, 1e4]
    sweep = nb["log_joint_sweep"](x_new, pi, mu, parts, grid)
    assert sweep.shape == (len(grid), len(x_new), 3)
    for i, c in enumerate(grid):
        direct = nb["class_log_joint"](x_new, pi, mu, sigma, c)
        np.testing.assert_allclose(
            nb["log_joint_from_eig"](x_new, pi, mu, parts, c), direct, rtol=1e-9, atol=1e-7
        )
        np.testing.assert_allclose(sweep[i], direct, rtol=1e-9, atol=1e-7)
    per_class = np.array([0.3, 7.0, 2.0])
    np.testing.assert_allclose(
        nb["log_joint_from_eig"](x_new, pi, mu, parts, per_class),
        naive_log_joint(x_new, pi, mu, sigma, per_class),
        rtol=1e-9,
        atol=1e-7,
    )
    rows = nb["log_joint_sweep"](x_new, pi, mu, parts, np.stack([per_class, np.full(3, 2.0)]))
    direct = nb["class_log_joint"](x_new, pi, mu, sigma, 2.0)
    np.testing.assert_allclose(rows[1], direct, rtol=1e-9, atol=1e-7)


def test_decompose_restricts_to_varying_pixels_and_reconstructs(nb):
    rng = np.random.default_rng(6)
    x, y = make_classes(rng, D=6, constant_dims=(1, 4))
    _, _, sigma = nb["fit_generative_model"](x, y)
    parts = nb["decompose"](sigma)
    assert len(parts) == 3
    for k, (active, lam, U) in enumerate(parts):
        assert set(active.tolist()) == {0, 2, 3, 5}
        assert np.all(lam >= 0)
        np.testing.assert_allclose(U.T @ U, np.eye(len(active)), atol=1e-12)
        np.testing.assert_allclose((U * lam) @ U.T, sigma[k][np.ix_(active, active)], atol=1e-10)


def test_predict_is_argmax_of_log_joint_in_any_block_size(nb):
    rng = np.random.default_rng(7)
    x, y = make_classes(rng)
    pi, mu, sigma = nb["fit_generative_model"](x, y)
    expected = naive_log_joint(x, pi, mu, sigma, 0.7).argmax(axis=1)
    np.testing.assert_array_equal(nb["predict"](x, pi, mu, sigma, 0.7), expected)
    np.testing.assert_array_equal(nb["predict"](x, pi, mu, sigma, 0.7, block_size=7), expected)
    assert nb["count_errors"](expected, y) == int(np.sum(expected != y))
    with pytest.raises(ValueError, match="shape"):
        nb["count_errors"](expected[:-1], y)


# ---------------------------------------------------------------------------------- choosing c


def synthetic_problem(seed=3):
    """Three classes sharing an anisotropic covariance in 8 dimensions, 108 examples: few enough per
    class that tiny c overfits the covariance estimate and huge c throws it away."""
    rng = np.random.default_rng(seed)
    scale_D = np.geomspace(3.0, 0.3, 8)
    x = np.concatenate([1.5 * rng.normal(size=8) + rng.normal(size=(n, 8)) * scale_D for n in (40, 36, 32)])
    y = np.repeat(np.arange(3), (40, 36, 32))
    order = rng.permutation(len(y))
    return x[order], y[order]


def naive_validation_errors(x, y, candidates, seed, n_valid):
    perm = np.random.default_rng(seed).permutation(len(y))
    valid, fit = perm[:n_valid], perm[n_valid:]
    K = int(y.max()) + 1
    pi = np.bincount(y[fit], minlength=K) / len(fit)
    mu = np.stack([x[fit][y[fit] == k].mean(axis=0) for k in range(K)])
    sigma = np.stack([np.cov(x[fit][y[fit] == k], rowvar=False, bias=True) for k in range(K)])
    return np.array(
        [np.sum(naive_log_joint(x[valid], pi, mu, sigma, c).argmax(axis=1) != y[valid]) for c in candidates]
    )


def test_split_uses_default_rng_permutation(nb):
    fit_idx, valid_idx = nb["split_train_valid"](50, 12, seed=3)
    perm = np.random.default_rng(3).permutation(50)
    np.testing.assert_array_equal(valid_idx, np.sort(perm[:12]))
    np.testing.assert_array_equal(fit_idx, np.sort(perm[12:]))
    with pytest.raises(ValueError, match="n_valid"):
        nb["split_train_valid"](50, 50)


def test_select_c_matches_naive_search(nb):
    x, y = synthetic_problem()
    candidates = [1e-4, 1e-2, 0.1, 0.3, 1.0, 3.0, 30.0, 3e3]
    naive = naive_validation_errors(x, y, candidates, seed=0, n_valid=60)
    assert np.sum(naive == naive.min()) == 1, "test data should have a unique best c"
    best_c, errors = nb["select_c"](x, y, candidates, seed=0, n_valid=60)
    np.testing.assert_array_equal(errors, naive)
    assert best_c == candidates[int(np.argmin(naive))]
    # the extremes are clearly worse than the winner on this problem
    assert naive[0] > naive.min() and naive[-1] > naive.min()


def test_select_c_breaks_ties_by_list_order(nb):
    """Huge values of c all give the same predictions (the most frequent class), so they tie; the
    winner must be the first one listed, which is neither the smallest, the largest nor the last."""
    x, y = synthetic_problem()
    candidates = [1e13, 1e12, 1e14, 1e11]
    naive = naive_validation_errors(x, y, candidates, seed=1, n_valid=60)
    assert len(set(naive.tolist())) == 1, "the test data should make every candidate tie"
    best_c, errors = nb["select_c"](x, y, candidates, seed=1, n_valid=60)
    np.testing.assert_array_equal(errors, naive)
    assert best_c == 1e13


def test_select_c_prefers_the_earlier_of_two_tied_winners(nb):
    """A tie at the minimum between two candidates inside the list, the larger one listed first."""
    x, y = synthetic_problem()
    candidates = [1e-4, 0.3 * (1 + 1e-12), 3.0, 0.3, 3e3]
    naive = naive_validation_errors(x, y, candidates, seed=0, n_valid=60)
    assert naive[1] == naive[3] == naive.min() and naive[0] > naive.min(), naive
    best_c, _ = nb["select_c"](x, y, candidates, seed=0, n_valid=60)
    assert best_c == candidates[1]


@pytest.mark.parametrize("candidates", [[], [1.0, 0.0], [-1.0], [[1.0, 2.0]], [np.inf]])
def test_select_c_rejects_bad_candidates(nb, candidates):
    x, y = synthetic_problem()
    with pytest.raises(ValueError, match="candidates_C"):
        nb["select_c"](x, y, candidates, n_valid=60)


@pytest.mark.parametrize("n_candidates", [2, 12])
def test_sweep_decomposes_each_class_once(nb, monkeypatch, n_candidates):
    """One eigendecomposition per class, however many candidates: the sweep reuses them."""
    x, y = synthetic_problem()
    decomposed = []
    real_eigh = np.linalg.eigh

    def counting_eigh(a, *args, **kwargs):
        decomposed.append(1 if np.ndim(a) == 2 else int(np.prod(np.shape(a)[:-2])))
        return real_eigh(a, *args, **kwargs)

    def no_cholesky(*args, **kwargs):
        raise AssertionError("select_c should not refactorize per candidate")

    monkeypatch.setattr(np.linalg, "eigh", counting_eigh)
    monkeypatch.setattr(np.linalg, "cholesky", no_cholesky)
    nb["select_c"](x, y, np.geomspace(1e-3, 1e3, n_candidates), n_valid=60)
    assert sum(decomposed) == 3


def test_select_c_per_class_counts_its_own_errors(nb):
    x, y = synthetic_problem(seed=4)
    candidates = np.geomspace(1e-2, 1e2, 9)
    c_K, errors = nb["select_c_per_class"](x, y, candidates, seed=2, n_valid=80)
    assert c_K.shape == (3,) and set(c_K.tolist()) <= set(candidates.tolist())
    perm = np.random.default_rng(2).permutation(len(y))
    valid, fit = perm[:80], perm[80:]
    pi, mu, sigma = nb["fit_generative_model"](x[fit], y[fit])
    direct = np.sum(naive_log_joint(x[valid], pi, mu, sigma, c_K).argmax(axis=1) != y[valid])
    assert errors == direct
    assert errors <= naive_validation_errors(x, y, candidates, seed=2, n_valid=80).min()


def test_coordinate_descent_ends_in_a_local_optimum(nb):
    rng = np.random.default_rng(11)
    C, M, K = 6, 200, 4
    log_joint_CMK = rng.normal(size=(C, M, K)) + rng.normal(size=(C, 1, K)) * 2
    y_valid_M = rng.integers(0, K, size=M)
    pick_K, errors = nb["coordinate_descent_c"](log_joint_CMK, y_valid_M)

    def errors_of(pick):
        return int(np.sum(log_joint_CMK[pick, :, np.arange(K)].argmax(axis=0) != y_valid_M))

    assert errors == errors_of(pick_K)
    single = [errors_of(np.full(K, i)) for i in range(C)]
    assert errors <= min(single)
    for k in range(K):
        for i in range(C):
            trial = pick_K.copy()
            trial[k] = i
            assert errors_of(trial) >= errors
