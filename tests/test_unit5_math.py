"""Unit 5's model answers against naive, independent versions of the same quantities.

Convolutions against plain loops, densities against scipy, KL against Monte Carlo, gradients
against finite differences (scipy.optimize.check_grad), PPCA against the dense Gaussian formula,
and the EM invariants (rows of r sum to 1, the log likelihood never decreases).
"""

import sys

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.stats import multivariate_normal

from gmmcourse import paths

sys.path.insert(0, str(paths.SOLUTIONS_DIR / "unit5_density_models" / "src"))

import adam  # noqa: E402
import gmm_full_em  # noqa: E402
import layers  # noqa: E402
import ppca  # noqa: E402
import vae_models  # noqa: E402
import vae_objective  # noqa: E402


def loop_conv2d(x, W, b, stride, padding):
    N, C, H, Wd = x.shape
    O, _, K, _ = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out, W_out = (H + 2 * padding - K) // stride + 1, (Wd + 2 * padding - K) // stride + 1
    y = np.zeros((N, O, H_out, W_out))
    for n in range(N):
        for o in range(O):
            for a in range(H_out):
                for c in range(W_out):
                    patch = xp[n, :, stride * a : stride * a + K, stride * c : stride * c + K]
                    y[n, o, a, c] = b[o] + np.sum(patch * W[o])
    return y


def loop_conv_transpose2d(x, W, b, stride, padding, output_padding):
    N, C, H, Wd = x.shape
    _, O, K, _ = W.shape
    H_out = (H - 1) * stride - 2 * padding + K + output_padding
    W_out = (Wd - 1) * stride - 2 * padding + K + output_padding
    y = np.zeros((N, O, H_out, W_out)) + b[None, :, None, None]
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(Wd):
                    for i in range(K):
                        for j in range(K):
                            u, v = stride * h + i - padding, stride * w + j - padding
                            if 0 <= u < H_out and 0 <= v < W_out:
                                y[n, :, u, v] += x[n, c, h, w] * W[c, :, i, j]
    return y


@pytest.mark.parametrize(
    "H, W, K, stride, padding",
    [(5, 5, 3, 1, 0), (28, 28, 3, 2, 1), (9, 11, 5, 3, 2), (7, 6, 2, 2, 0), (4, 4, 3, 1, 2)],
)
def test_conv2d_matches_a_plain_loop(H, W, K, stride, padding):
    rng = np.random.RandomState(H * 100 + K)
    x, w, b = rng.randn(2, 3, H, W), rng.randn(4, 3, K, K), rng.randn(4)
    np.testing.assert_allclose(
        layers.conv2d(x, w, b, stride, padding), loop_conv2d(x, w, b, stride, padding), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "H, W, K, stride, padding, output_padding",
    [(4, 4, 3, 1, 0, 0), (7, 7, 3, 2, 1, 1), (7, 7, 3, 2, 1, 0), (4, 5, 5, 3, 2, 2), (5, 4, 3, 2, 2, 1)],
)
def test_conv_transpose2d_matches_a_plain_loop(H, W, K, stride, padding, output_padding):
    rng = np.random.RandomState(H * 10 + W)
    x, w, b = rng.randn(2, 3, H, W), rng.randn(3, 2, K, K), rng.randn(2)
    np.testing.assert_allclose(
        layers.conv_transpose2d(x, w, b, stride, padding, output_padding),
        loop_conv_transpose2d(x, w, b, stride, padding, output_padding),
        rtol=1e-12,
        atol=1e-12,
    )


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), y> = <x, conv_transpose(y)> for the same kernel, stride and padding (no bias)."""
    rng = np.random.RandomState(0)
    x, W = rng.randn(2, 3, 14, 14), rng.randn(5, 3, 3, 3)
    y = rng.randn(2, 5, 7, 7)
    lhs = np.sum(layers.conv2d(x, W, np.zeros(5), 2, 1) * y)
    rhs = np.sum(x * layers.conv_transpose2d(y, W, np.zeros(3), 2, 1, 1))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_layer_gradients_match_finite_differences():
    rng = np.random.RandomState(1)
    x, R = rng.randn(1, 2, 5, 5), rng.randn(1, 3, 8, 8)
    shape = (2, 3, 3, 3)

    def f(w_flat):
        return anp.sum(layers.conv_transpose2d(x, anp.reshape(w_flat, shape), np.zeros(3), 2, 2, 1) * R)

    assert check_grad(f, autograd.grad(f), rng.randn(int(np.prod(shape)))) < 1e-5


def test_layer_errors_name_the_argument():
    with pytest.raises(ValueError, match="input channels"):
        layers.conv2d(np.zeros((1, 2, 5, 5)), np.zeros((3, 1, 3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="output_padding"):
        layers.conv_transpose2d(
            np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), np.zeros(1), stride=2, output_padding=2
        )


def test_kl_matches_monte_carlo_and_is_zero_at_the_prior():
    rng = np.random.default_rng(0)
    mu, lv = np.array([[0.7, -1.2]]), np.array([[-0.5, 0.8]])
    z = mu + np.exp(0.5 * lv) * rng.standard_normal((200000, 2))
    log_q = multivariate_normal(mu[0], np.diag(np.exp(lv[0]))).logpdf(z)
    log_p = multivariate_normal(np.zeros(2), np.eye(2)).logpdf(z)
    assert vae_objective.gaussian_kl_N(mu, lv)[0] == pytest.approx(np.mean(log_q - log_p), abs=0.01)
    assert vae_objective.gaussian_kl_N(np.zeros((2, 3)), np.zeros((2, 3))) == pytest.approx([0.0, 0.0])


def test_bernoulli_log_lik_matches_the_naive_formula_and_stays_finite():
    rng = np.random.RandomState(2)
    x, logits = rng.uniform(size=(4, 9)), rng.randn(4, 9) * 3
    p = 1 / (1 + np.exp(-logits))
    naive = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(vae_objective.bernoulli_log_lik_N(x, logits), naive, rtol=1e-12)
    huge = vae_objective.bernoulli_log_lik_N(np.array([[0.0, 1.0]]), np.array([[900.0, -900.0]]))
    assert huge[0] == pytest.approx(-1800.0)


def test_sampler_uses_the_generator_and_keeps_float32():
    mu, lv = np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32)
    a = vae_objective.sample_z_NZ(mu, lv, np.random.default_rng(4))
    b = vae_objective.sample_z_NZ(mu, lv, np.random.default_rng(4))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    with pytest.raises(ValueError, match="rng"):
        vae_objective.sample_z_NZ(mu, lv, 4)


def test_adam_matches_the_paper_update_written_out():
    params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.3, -0.1])}
    m, v = {"w": np.zeros(2)}, {"w": np.zeros(2)}
    for t in (1, 2):
        params, m, v = adam.adam_step(params, grads, m, v, t, lr=0.1)
    # with a constant gradient g, m_hat = g and v_hat = g^2 at every step: each step moves lr * sign(g)
    np.testing.assert_allclose(params["w"], [1.0 - 0.2, -2.0 + 0.2], rtol=1e-6)


def test_ppca_matches_the_dense_gaussian_and_its_closed_form():
    rng = np.random.RandomState(5)
    x = rng.randn(300, 3) @ rng.randn(3, 8) + 0.2 * rng.randn(300, 8)
    mu, W, s2 = ppca.fit_ppca(x, 2)
    lam = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]
    assert s2 == pytest.approx(lam[2:].mean(), rel=1e-10)
    C = W @ W.T + s2 * np.eye(8)
    np.testing.assert_allclose(np.linalg.eigvalsh(C)[-2:][::-1], lam[:2], rtol=1e-9)
    np.testing.assert_allclose(
        ppca.ppca_log_lik_N(x[:20], mu, W, s2), multivariate_normal(mu, C).logpdf(x[:20]), rtol=1e-10
    )
    z = ppca.ppca_posterior_mean(x[:5], mu, W, s2)
    np.testing.assert_allclose(
        z, (np.linalg.solve(W.T @ W + s2 * np.eye(2), W.T @ (x[:5] - mu).T)).T, rtol=1e-10
    )


def test_ppca_on_the_0_255_scale_is_shifted_by_784_log_255():
    rng = np.random.RandomState(6)
    x = rng.uniform(size=(100, 784)) * (rng.uniform(size=784) > 0.3)
    mu, W, s2 = ppca.fit_ppca(x, 2)
    mu2, W2, s22 = ppca.fit_ppca(255.0 * x, 2)
    diff = ppca.ppca_log_lik_N(x, mu, W, s2) - ppca.ppca_log_lik_N(255.0 * x, mu2, W2, s22)
    np.testing.assert_allclose(diff, 784 * np.log(255.0), rtol=1e-9)


def test_gmm_matches_scipy_and_em_never_decreases():
    rng = np.random.RandomState(7)
    x = np.concatenate([rng.randn(40, 3), 5 + rng.randn(40, 3)])
    (log_pi, mu, cov), history = gmm_full_em.fit_gmm(x, 2, 0.01, 10, np.random.default_rng(0))
    assert len(history) == 11 and np.all(np.diff(history) >= -1e-9)
    naive = np.log(sum(np.exp(log_pi[k]) * multivariate_normal(mu[k], cov[k]).pdf(x) for k in range(2)))
    np.testing.assert_allclose(gmm_full_em.calc_log_lik_N(x, log_pi, mu, cov), naive, rtol=1e-10)
    r = gmm_full_em.estep__calc_r_NK(x, log_pi, mu, cov)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="reg"):
        gmm_full_em.calc_log_joint_NK(x, log_pi, mu, np.zeros((2, 3, 3)))


def test_continuous_bernoulli_normaliser_integrates_to_one():
    """C(lambda) * lambda^y (1 - lambda)^(1 - y) integrates to 1 over y in [0, 1]."""
    y = np.linspace(0, 1, 200001)
    for logit in (-30.0, -3.0, -1e-4, 0.0, 0.5, 8.0):
        lam = 1 / (1 + np.exp(-logit))
        log_norm = vae_models.log_continuous_bernoulli_norm(logit)
        log_dens = log_norm + y * np.log(lam) + (1 - y) * np.log1p(-lam)
        assert np.trapezoid(np.exp(log_dens), y) == pytest.approx(1.0, rel=1e-6)


def test_importance_weighted_estimate_is_above_the_elbo_on_average():
    rng = np.random.default_rng(8)
    params = vae_models.init_mlp_vae(rng, hidden=16)
    x = rng.uniform(size=(20, 784)).astype(np.float32)
    elbo = np.mean([vae_models.elbo_N("mlp", params, x, rng).mean() for _ in range(20)])
    iw = vae_models.iw_log_lik_N("mlp", params, x, rng, n_samples=100).mean()
    assert iw >= elbo


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_training_gradients_stay_float32(kind):
    # A float64 gradient anywhere in the backward pass (anp.mean and anp.maximum give one) makes a
    # float32 network train at float64 speed; the final gradients would still look float32, because
    # autograd adds them into float32 arrays, so every intermediate gradient is checked here.
    import autograd.core

    init, encode, decode = vae_models.MODELS[kind]
    rng = np.random.default_rng(0)
    params = init(rng, **({"hidden": 16} if kind == "mlp" else {}))
    x = rng.random((4, 784), dtype=np.float32)
    seen = set()
    original = autograd.core.add_outgrads

    def recording(prev, g):
        seen.add(np.result_type(g) if not isinstance(g, autograd.core.SparseObject) else np.dtype(np.float32))
        return original(prev, g)

    autograd.core.add_outgrads, before = recording, original
    try:
        autograd.grad(lambda p: -vae_objective.batch_elbo(p, x, rng, encode, decode))(params)
    finally:
        autograd.core.add_outgrads = before
    assert seen == {np.dtype(np.float32)}
