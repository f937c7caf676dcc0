"""Unit 4's model answer against naive scipy versions of the same quantities, and its invariants.

Everything runs on small random problems (a second or two in total, apart from the doctests)."""

import doctest
import importlib
import sys
import warnings

import autograd
import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gmmcourse import paths

SRC = paths.SOLUTIONS_DIR / "unit4_conditional_gmm" / "src"
MODULES = (
    "gaussian_math",
    "conditional_mixture",
    "ConditionalGMMRegressor",
    "MixtureOfExpertsRegressor",
    "DiscriminativeConditionalGMMRegressor",
)


@pytest.fixture(scope="module")
def src():
    sys.path.insert(0, str(SRC))
    try:
        yield {name: importlib.import_module(name) for name in MODULES}
    finally:
        sys.path.remove(str(SRC))
        for name in MODULES:
            sys.modules.pop(name, None)


def _spd(rng, K, D):
    A = rng.randn(K, D, D) / np.sqrt(D)
    return A @ np.swapaxes(A, 1, 2) + 0.3 * np.eye(D)


def _joint(seed, K=3, I=2, O=2):
    rng = np.random.RandomState(seed)
    return np.log(rng.dirichlet(np.ones(K))), rng.randn(K, I + O), _spd(rng, K, I + O)


def _data(seed, N=60, I=2, O=2):
    rng = np.random.RandomState(seed)
    x = rng.randn(N, I)
    k = rng.randint(3, size=N)
    W = rng.randn(3, I, O)
    return x, np.einsum("ni,nio->no", x, W[k]) + 2 * rng.randn(3, O)[k] + 0.3 * rng.randn(N, O)


def test_doctests(src):
    for name in ("gaussian_math", "ConditionalGMMRegressor"):
        result = doctest.testmod(src[name])
        assert result.attempted > 0 and result.failed == 0, name


def test_log_pdf_matches_scipy(src):
    rng = np.random.RandomState(0)
    cov = _spd(rng, 3, 4)
    diff = rng.randn(7, 3, 4)
    got = src["gaussian_math"].calc_log_pdf_NK(diff, np.linalg.cholesky(cov))
    want = np.array(
        [[multivariate_normal(np.zeros(4), cov[k]).logpdf(diff[n, k]) for k in range(3)] for n in range(7)]
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_conditioning_matches_the_textbook_formulas(src):
    log_pi, mu, cov = _joint(1)
    x = np.random.RandomState(2).randn(5, 2)
    log_w, mean, chol = src["ConditionalGMMRegressor"].condition_joint_gmm(x, log_pi, mu, cov)
    log_px = np.array(
        [log_pi[k] + multivariate_normal(mu[k, :2], cov[k, :2, :2]).logpdf(x) for k in range(3)]
    ).T
    np.testing.assert_allclose(log_w, log_px - logsumexp(log_px, axis=1, keepdims=True), atol=1e-12)
    for k in range(3):
        S = cov[k]
        gain = S[2:, :2] @ np.linalg.inv(S[:2, :2])  # the naive way, on purpose
        np.testing.assert_allclose(mean[:, k], mu[k, 2:] + (x - mu[k, :2]) @ gain.T, atol=1e-12)
        np.testing.assert_allclose(chol[k] @ chol[k].T, S[2:, 2:] - gain @ S[:2, 2:], atol=1e-12)


def test_score_samples_is_joint_over_marginal(src):
    log_pi, mu, cov = _joint(3)
    x, y = _data(4, N=9)
    model = src["ConditionalGMMRegressor"].ConditionalGMMRegressor(n_components=3)
    model.log_pi_K, model.mu_KD, model.cov_KDD = log_pi, mu, cov
    xy = np.hstack([x, y])
    joint = logsumexp([log_pi[k] + multivariate_normal(mu[k], cov[k]).logpdf(xy) for k in range(3)], axis=0)
    marginal = logsumexp(
        [log_pi[k] + multivariate_normal(mu[k, :2], cov[k, :2, :2]).logpdf(x) for k in range(3)], axis=0
    )
    np.testing.assert_allclose(model.score_samples(x, y), joint - marginal, atol=1e-10)
    assert model.score(x, y) == pytest.approx(np.mean(joint - marginal), abs=1e-10)


def test_cgmm_em_never_decreases_the_joint_likelihood(src):
    x, y = _data(5)
    model = src["ConditionalGMMRegressor"].ConditionalGMMRegressor(
        n_components=3, max_iter=40, tol=0.0, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    # reg_covar makes the M-step a slightly different maximizer, so allow a tiny decrease at the end
    assert np.all(np.diff(model.history) >= -1e-6)
    r, _ = model.estep__calc_r_NK(x, y)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)


def test_n_init_keeps_the_best_of_its_runs(src):
    # fit's given loop: n_init k-means starts from one generator, the best final objective kept,
    # with the parameters of that run (not of the last one)
    x, y = _data(5)
    cls = src["ConditionalGMMRegressor"].ConditionalGMMRegressor
    finals = []
    rng = np.random.RandomState(1)
    probe = cls(n_components=4, tol=1e-6, max_iter=200)
    for _ in range(4):  # the four starts that n_init=4 with random_state=1 makes (best: the third)
        probe.run_em(x, y, probe.init_responsibilities(x, y, rng))
        finals.append(probe.history[-1])
    assert len(set(np.round(finals, 6))) > 1, "the starts should differ on this problem"
    one = cls(n_components=4, tol=1e-6, max_iter=200, random_state=1).fit(x, y)
    best = cls(n_components=4, tol=1e-6, max_iter=200, random_state=1, n_init=4).fit(x, y)
    assert one.history[-1] == finals[0]
    assert best.history[-1] == max(finals)
    # the kept parameters are those of the kept history: their objective is its last entry
    assert best.estep__calc_r_NK(x, y)[1] == pytest.approx(best.history[-1], rel=1e-12)
    with pytest.raises(ValueError, match="n_init"):
        cls(n_init=0)


def test_empty_component_keeps_its_parameters(src):
    x, y = _data(6, N=20)
    log_pi, mu, cov = _joint(7, K=3)
    model = src["ConditionalGMMRegressor"].ConditionalGMMRegressor(n_components=3)
    model.log_pi_K, model.mu_KD, model.cov_KDD = log_pi, mu.copy(), cov.copy()
    r = np.random.RandomState(8).dirichlet(np.ones(3), size=20)
    r[:, 1] = 0
    r /= r.sum(axis=1, keepdims=True)
    model.mstep__update_params(x, y, r)
    assert np.exp(model.log_pi_K[1]) == 0.0
    np.testing.assert_array_equal(model.mu_KD[1], mu[1])
    np.testing.assert_array_equal(model.cov_KDD[1], cov[1])


def test_singular_covariance_without_reg_covar_is_a_clear_error(src):
    rng = np.random.RandomState(9)
    x = np.eye(4)[rng.randint(4, size=30)]
    model = src["ConditionalGMMRegressor"].ConditionalGMMRegressor(
        n_components=2, reg_covar=0.0, random_state=0
    )
    with pytest.raises(ValueError, match="reg_covar"):
        model.fit(x, rng.randn(30, 2))


def test_single_expert_is_least_squares(src):
    from sklearn.linear_model import LinearRegression

    x, y = _data(10)
    model = (
        src["MixtureOfExpertsRegressor"]
        .MixtureOfExpertsRegressor(n_components=1, reg_covar=0.0, random_state=0)
        .fit(x, y)
    )
    ols = LinearRegression().fit(x, y)
    np.testing.assert_allclose(model.predict(x), ols.predict(x), atol=1e-10)
    resid = y - ols.predict(x)
    np.testing.assert_allclose(model.cov_KOO[0], resid.T @ resid / len(x), atol=1e-10)


def test_gate_gradient_and_fit(src):
    moe = src["MixtureOfExpertsRegressor"].MixtureOfExpertsRegressor(n_components=3, gate_penalty=0.1)
    rng = np.random.RandomState(11)
    x, r = rng.randn(25, 2), rng.dirichlet(np.ones(3), size=25)
    flat = rng.randn(2 * 3 + 3)
    grad = autograd.grad(moe.calc_gate_loss)
    assert check_grad(moe.calc_gate_loss, grad, flat, x, r) < 1e-6
    moe.gate_coef_IK, moe.gate_intercept_K = np.zeros((2, 3)), np.zeros(3)
    coef, intercept = moe.mstep__update_gate(x, r)
    assert np.linalg.norm(grad(np.concatenate([coef.ravel(), intercept]), x, r)) < 1e-6


def test_dcgmm_round_trip_gradient_and_fit(src):
    cls = src["DiscriminativeConditionalGMMRegressor"].DiscriminativeConditionalGMMRegressor
    model = cls(n_components=3, reg_covar=0.05, max_iter=15, random_state=0)
    log_pi, mu, cov = _joint(12)
    flat = model.to_flat_array(log_pi, mu, cov)
    back = model.to_common_parameters(flat)
    for got, want in zip(back, (log_pi, mu, cov), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-10)
    x, y = _data(13, N=40)
    assert check_grad(model.calc_loss, autograd.grad(model.calc_loss), flat, x, y) < 1e-5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    assert model.history[-1] < model.history[0]
    assert -model.score(x, y) == pytest.approx(model.history[-1], abs=1e-10)


def test_samples_have_the_conditional_moments(src):
    log_pi, mu, cov = _joint(14, K=2)
    model = src["ConditionalGMMRegressor"].ConditionalGMMRegressor(n_components=2)
    model.log_pi_K, model.mu_KD, model.cov_KDD = log_pi, mu, cov
    x = np.array([[0.3, -0.2]])
    draws = model.sample(x, n_samples=20000, random_state=0)
    assert draws.shape == (1, 20000, 2)
    log_w, mean, chol = src["ConditionalGMMRegressor"].condition_joint_gmm(x, log_pi, mu, cov)
    w = np.exp(log_w[0])
    cond_cov = chol @ np.swapaxes(chol, 1, 2)
    m = w @ mean[0]
    second = np.einsum("k,kij->ij", w, cond_cov) + np.einsum("k,ki,kj->ij", w, mean[0], mean[0])
    total = second - np.outer(m, m)
    np.testing.assert_allclose(draws[0].mean(axis=0), m, atol=5 * np.sqrt(np.diag(total) / 20000).max())
    np.testing.assert_allclose(np.cov(draws[0].T), total, rtol=0.08, atol=0.03)
    np.testing.assert_allclose(model.predict(x)[0], m, atol=1e-12)
    np.testing.assert_array_equal(draws, model.sample(x, n_samples=20000, random_state=0))
