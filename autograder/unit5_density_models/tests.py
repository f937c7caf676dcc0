"""Hidden tests for unit 5 (VAE objective, layers, Adam, PPCA, full-covariance GMM EM).

A table of cases per graded function. Inputs are built here from fixed seeds; reference values come
from ``references.npz`` (``gmmcourse refs unit5``). Cases marked public ship with the release.
Samplers are graded by properties the probe measures (z-scores of moments), not by exact draws.
"""

import numpy as np

from gmmcourse.grading.spec import Case, Close, Exact, Limits, Submission, Test, Within

UNIT = "unit5_density_models"
SUBMISSION = Submission(
    kind="py",
    files=(
        "vae_objective.py",
        "layers.py",
        "adam.py",
        "ppca.py",
        "gmm_full_em.py",
    ),
    given=("vae_models.py", "plots.py"),
)
LIMITS = Limits(cpu_seconds=120, memory_bytes=2 * 1024**3, grading_seconds=300)

TIGHT = Close(rtol=1e-7, atol=1e-9)
LOOSE = Close(rtol=1e-5, atol=1e-7)
F32 = Close(rtol=1e-4, atol=1e-5)


def _rs(seed):
    return np.random.RandomState(seed)


# --------------------------------------------------------------------------- input builders


def _posterior(seed, N, Z, spread=1.0):
    rng = _rs(seed)
    return {"mu_NZ": spread * rng.randn(N, Z), "log_var_NZ": rng.uniform(-3, 1.5, size=(N, Z))}


def _pixels(seed, N, D):
    """MNIST-like intensities: mostly exact 0, some exact 1, the rest in between."""
    rng = _rs(seed)
    x = rng.uniform(0, 1, size=(N, D))
    x[rng.uniform(size=(N, D)) < 0.5] = 0.0
    x[rng.uniform(size=(N, D)) < 0.1] = 1.0
    return x


def _linear_params(seed, D, Z, log_var_offset):
    rng = _rs(seed)
    return {
        "A": 0.3 * rng.randn(D, Z),
        "a": 0.1 * rng.randn(Z),
        "B": 0.05 * rng.randn(D, Z),
        "b": np.full(Z, float(log_var_offset)),
        "C": rng.randn(Z, D),
        "c": 0.2 * rng.randn(D),
    }


def _conv_args(seed, N, C, H, W, O, K, stride, padding, output_padding=0, transposed=False):
    rng = _rs(seed)
    if transposed:
        H_out = (H - 1) * stride - 2 * padding + K + output_padding
        W_out = (W - 1) * stride - 2 * padding + K + output_padding
        weight = rng.randn(C, O, K, K)
    else:
        H_out = (H + 2 * padding - K) // stride + 1
        W_out = (W + 2 * padding - K) // stride + 1
        weight = rng.randn(O, C, K, K)
    return {
        "x_NCHW": rng.randn(N, C, H, W),
        "W": weight,
        "b_O": rng.randn(O),
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "weights": rng.randn(N, O, H_out, W_out),
        "transposed": transposed,
    }


def _conv_expect():
    return {"y": TIGHT, "grad_x": LOOSE, "grad_W": LOOSE, "grad_b": LOOSE}


def _adam_args(seed, t, steps=1, fresh=True, **settings):
    rng = _rs(seed)
    shapes = {"W": (3, 4), "b": (4,)}
    params = {k: rng.randn(*s) for k, s in shapes.items()}
    grads = {k: rng.randn(*s) * 10.0 ** rng.uniform(-3, 1) for k, s in shapes.items()}
    m = {k: np.zeros(s) if fresh else 0.1 * rng.randn(*s) for k, s in shapes.items()}
    v = {k: np.zeros(s) if fresh else rng.uniform(0, 0.5, size=s) for k, s in shapes.items()}
    return {"params": params, "grads": grads, "m": m, "v": v, "t": t, "steps": steps, "settings": settings}


def _adam_expect():
    return {f"{kind}_{name}": LOOSE for kind in ("param", "m", "v") for name in ("W", "b")}


def _low_rank(seed, N, D, M, noise=0.3):
    rng = _rs(seed)
    W = rng.randn(D, M) * 2.0
    return rng.randn(N, M) @ W.T + noise * rng.randn(N, D) + rng.uniform(-1, 1, size=D)


def _ppca_params(seed, D, M):
    rng = _rs(seed)
    return {"mu_D": rng.randn(D), "W_DM": rng.randn(D, M), "sigma2": float(rng.uniform(0.05, 0.5))}


def _gmm_params(seed, K, D, N):
    rng = _rs(seed)
    mu = 3.0 * rng.randn(K, D)
    cov = np.empty((K, D, D))
    for k in range(K):
        A = rng.randn(D, D) * 0.5
        cov[k] = A @ A.T + 0.1 * np.eye(D)
    x = mu[rng.randint(K, size=N)] + rng.randn(N, D)
    return {"x_ND": x, "log_pi_K": np.log(rng.dirichlet(np.ones(K))), "mu_KD": mu, "cov_KDD": cov}


def _clusters(seed, N, D, K):
    rng = _rs(seed)
    centres = 4.0 * rng.randn(K, D)
    return centres[rng.randint(K, size=N)] + rng.randn(N, D)


def _resp(seed, N, K):
    return _rs(seed).dirichlet(np.ones(K), size=N)


# --------------------------------------------------------------------------- the tests


def build_tests():
    mild = _posterior(3, 6, 2, spread=0.5)
    mild["log_var_NZ"][:] = -1.0
    return [
        Test(
            "gaussian_kl_N",
            8,
            [
                Case(
                    "N=4, Z=2",
                    "gaussian_kl",
                    _posterior(1, 4, 2),
                    {"kl_N": TIGHT, "grad_mu_NZ": TIGHT, "grad_log_var_NZ": TIGHT},
                    public=True,
                ),
                Case(
                    "N=50, Z=16, wide range of variances",
                    "gaussian_kl",
                    _posterior(2, 50, 16, spread=3.0),
                    {"kl_N": TIGHT, "grad_mu_NZ": TIGHT, "grad_log_var_NZ": TIGHT},
                ),
                Case(
                    "posterior equal to the prior gives 0",
                    "gaussian_kl",
                    {"mu_NZ": np.zeros((3, 5)), "log_var_NZ": np.zeros((3, 5))},
                    {"kl_N": TIGHT, "grad_mu_NZ": TIGHT, "grad_log_var_NZ": TIGHT},
                ),
                Case(
                    "very small and very large variances",
                    "gaussian_kl",
                    {
                        "mu_NZ": np.array([[0.5, -2.0], [0.0, 1.0]]),
                        "log_var_NZ": np.array([[-20.0, 8.0], [5.0, -9.0]]),
                    },
                    {"kl_N": TIGHT, "grad_mu_NZ": TIGHT, "grad_log_var_NZ": TIGHT},
                ),
            ],
            "vae_objective.gaussian_kl_N: KL(q || N(0, I)) per row and its autograd gradient",
        ),
        Test(
            "bernoulli_log_lik_N",
            8,
            [
                Case(
                    "N=3, D=10",
                    "bernoulli_log_lik",
                    {
                        "x_ND": _pixels(4, 3, 10),
                        "logits_ND": _rs(5).randn(3, 10) * 2,
                        "weights_N": np.ones(3),
                    },
                    {"log_lik_N": TIGHT, "grad_logits_ND": TIGHT},
                    public=True,
                ),
                Case(
                    "MNIST-sized rows, N=20, D=784",
                    "bernoulli_log_lik",
                    {
                        "x_ND": _pixels(6, 20, 784),
                        "logits_ND": _rs(7).randn(20, 784) * 4,
                        "weights_N": _rs(8).uniform(0.5, 2, size=20),
                    },
                    {"log_lik_N": TIGHT, "grad_logits_ND": TIGHT},
                ),
                Case(
                    "huge logits of both signs stay finite",
                    "bernoulli_log_lik",
                    {
                        "x_ND": np.array([[0.0, 1.0, 0.3, 1.0, 0.0]]),
                        "logits_ND": np.array([[-800.0, 750.0, 40.0, -60.0, 900.0]]),
                        "weights_N": np.ones(1),
                    },
                    {"log_lik_N": TIGHT, "grad_logits_ND": TIGHT},
                ),
                Case(
                    "logits of exactly zero",
                    "bernoulli_log_lik",
                    {
                        "x_ND": _pixels(9, 2, 6),
                        "logits_ND": np.zeros((2, 6)),
                        "weights_N": np.array([1.0, 3.0]),
                    },
                    {"log_lik_N": TIGHT, "grad_logits_ND": TIGHT},
                ),
            ],
            "vae_objective.bernoulli_log_lik_N: binary cross-entropy form on [0, 1] pixels, stable for "
            "large logits",
        ),
        Test(
            "sample_z_NZ",
            8,
            [
                Case(
                    "moments of 20000 draws, Z=3",
                    "sample_z",
                    {
                        "mu_Z": np.array([0.5, -1.0, 2.0]),
                        "log_var_Z": np.array([0.0, -2.0, 1.0]),
                        "N": 20000,
                        "seed": 11,
                        "dtype": "float64",
                    },
                    {
                        "shape_ok": Within(1, 1),
                        "mean_zscore": Within(0, 5),
                        "var_zscore": Within(0, 5),
                        "generator_advanced": Within(1, 1),
                        "grad_error": Within(0, 1e-6),
                    },
                    public=True,
                ),
                Case(
                    "moments of 50000 draws, Z=4, other variances",
                    "sample_z",
                    {
                        "mu_Z": np.array([3.0, 0.0, -0.2, 1.0]),
                        "log_var_Z": np.array([-4.0, 2.0, 0.5, -0.7]),
                        "N": 50000,
                        "seed": 12,
                        "dtype": "float64",
                    },
                    {
                        "shape_ok": Within(1, 1),
                        "mean_zscore": Within(0, 5),
                        "var_zscore": Within(0, 5),
                        "generator_advanced": Within(1, 1),
                        "grad_error": Within(0, 1e-6),
                    },
                ),
                Case(
                    "float32 in, float32 out",
                    "sample_z",
                    {
                        "mu_Z": np.array([0.1, 0.2]),
                        "log_var_Z": np.array([-1.0, 0.3]),
                        "N": 20000,
                        "seed": 13,
                        "dtype": "float32",
                    },
                    {
                        "shape_ok": Within(1, 1),
                        "dtype_kept": Within(1, 1),
                        "mean_zscore": Within(0, 5),
                        "var_zscore": Within(0, 5),
                        "grad_error": Within(0, 1e-4),
                    },
                ),
            ],
            "vae_objective.sample_z_NZ: reparameterised draws with the right moments from the given "
            "generator, differentiable in mu and log_var",
        ),
        Test(
            "batch_elbo",
            10,
            [
                Case(
                    "linear encoder/decoder, tiny posterior variance, N=5, D=8",
                    "batch_elbo",
                    {"params": _linear_params(14, 8, 2, -40.0), "x_ND": _pixels(15, 5, 8), "seed": 1},
                    {"elbo": LOOSE, **{f"grad_{k}": LOOSE for k in "AaBbCc"}},
                    public=True,
                ),
                Case(
                    "MNIST-sized rows, tiny posterior variance, N=12",
                    "batch_elbo",
                    {"params": _linear_params(16, 784, 3, -40.0), "x_ND": _pixels(17, 12, 784), "seed": 2},
                    {"elbo": LOOSE, **{f"grad_{k}": LOOSE for k in "AaBbCc"}},
                ),
                Case(
                    "a sample is drawn, and the average over seeds is right",
                    "batch_elbo_noise",
                    {"params": _linear_params(18, 8, 2, -1.0), "x_ND": _pixels(19, 6, 8), "n_seeds": 400},
                    {"uses_a_sample": Within(1, 1), "mean_over_seeds": Close(rtol=0.02)},
                ),
            ],
            "vae_objective.batch_elbo: the mean over the batch of log p(x | z) - KL, differentiable",
        ),
        Test(
            "dense",
            3,
            [
                Case(
                    "N=3, 4 -> 2",
                    "dense",
                    {"x_NI": _rs(20).randn(3, 4), "W_IO": _rs(21).randn(4, 2), "b_O": _rs(22).randn(2)},
                    {"y_NO": TIGHT},
                    public=True,
                ),
                Case(
                    "N=7, 784 -> 16",
                    "dense",
                    {"x_NI": _rs(23).randn(7, 784), "W_IO": _rs(24).randn(784, 16), "b_O": _rs(25).randn(16)},
                    {"y_NO": TIGHT},
                ),
            ],
            "layers.dense: affine layer",
        ),
        Test(
            "conv2d",
            12,
            [
                Case(
                    "stride 1, no padding, 1 -> 2 channels",
                    "conv",
                    _conv_args(30, 2, 1, 5, 5, 2, 3, 1, 0),
                    _conv_expect(),
                    public=True,
                ),
                Case(
                    "the encoder's first layer: stride 2, padding 1, 28 -> 14",
                    "conv",
                    _conv_args(31, 2, 1, 28, 28, 4, 3, 2, 1),
                    _conv_expect(),
                ),
                Case(
                    "stride 2, padding 1, 16 -> 8 channels on 7 x 7",
                    "conv",
                    _conv_args(32, 3, 16, 7, 7, 8, 3, 2, 1),
                    _conv_expect(),
                ),
                Case(
                    "kernel 5, stride 3, padding 2, non-square image",
                    "conv",
                    _conv_args(33, 2, 3, 9, 11, 2, 5, 3, 2),
                    _conv_expect(),
                ),
                Case(
                    "kernel 2, stride 2, no padding, odd size (last column dropped)",
                    "conv",
                    _conv_args(34, 1, 2, 7, 6, 3, 2, 2, 0),
                    _conv_expect(),
                ),
            ],
            "layers.conv2d: values and gradients, with stride and padding",
        ),
        Test(
            "conv_transpose2d",
            14,
            [
                Case(
                    "stride 1, no padding",
                    "conv",
                    _conv_args(40, 2, 2, 4, 4, 3, 3, 1, 0, transposed=True),
                    _conv_expect(),
                    public=True,
                ),
                Case(
                    "the decoder's layers: stride 2, padding 1, output padding 1, 7 -> 14",
                    "conv",
                    _conv_args(41, 2, 8, 7, 7, 4, 3, 2, 1, 1, transposed=True),
                    _conv_expect(),
                ),
                Case(
                    "14 -> 28, one output channel",
                    "conv",
                    _conv_args(42, 2, 4, 14, 14, 1, 3, 2, 1, 1, transposed=True),
                    _conv_expect(),
                ),
                Case(
                    "stride 2, padding 1, no output padding (7 -> 13)",
                    "conv",
                    _conv_args(43, 1, 3, 7, 7, 2, 3, 2, 1, 0, transposed=True),
                    _conv_expect(),
                ),
                Case(
                    "kernel 5, stride 3, padding 2, output padding 2, non-square",
                    "conv",
                    _conv_args(44, 2, 2, 4, 5, 3, 5, 3, 2, 2, transposed=True),
                    _conv_expect(),
                ),
            ],
            "layers.conv_transpose2d: values and gradients, with stride, padding and output padding",
        ),
        Test(
            "adam_step",
            9,
            [
                Case("first step from zero moments", "adam", _adam_args(50, 1), _adam_expect(), public=True),
                Case("step 7 with existing moments", "adam", _adam_args(51, 7, fresh=False), _adam_expect()),
                Case(
                    "three steps with other settings",
                    "adam",
                    _adam_args(52, 1, steps=3, lr=0.05, beta1=0.5, beta2=0.9, eps=1e-3),
                    _adam_expect(),
                ),
                Case(
                    "minimises a quadratic",
                    "adam_quadratic",
                    {
                        "theta_D": np.array([3.0, -2.0, 0.5]),
                        "target_D": np.array([1.0, 1.0, 1.0]),
                        "steps": 300,
                        "lr": 0.05,
                    },
                    {"theta": LOOSE},
                ),
            ],
            "adam.adam_step: moments, bias corrections and the update",
        ),
        Test(
            "fit_ppca",
            10,
            [
                Case(
                    "D=5, M=2",
                    "ppca_fit",
                    {"x_ND": _low_rank(60, 200, 5, 2), "M": 2},
                    {"mu_D": TIGHT, "sigma2": TIGHT, "C_DD": LOOSE, "W_shape": Exact()},
                    public=True,
                ),
                Case(
                    "D=30, M=3",
                    "ppca_fit",
                    {"x_ND": _low_rank(61, 400, 30, 3), "M": 3},
                    {"mu_D": TIGHT, "sigma2": TIGHT, "C_DD": LOOSE, "W_shape": Exact()},
                ),
                Case(
                    "M=1, more latent structure than M",
                    "ppca_fit",
                    {"x_ND": _low_rank(62, 300, 8, 4), "M": 1},
                    {"mu_D": TIGHT, "sigma2": TIGHT, "C_DD": LOOSE, "W_shape": Exact()},
                ),
            ],
            "ppca.fit_ppca: closed-form mean, noise variance and covariance W W^T + sigma2 I",
        ),
        Test(
            "ppca_log_lik_N",
            8,
            [
                Case(
                    "D=6, M=2",
                    "ppca_log_lik",
                    {"x_ND": _rs(63).randn(10, 6), **_ppca_params(64, 6, 2)},
                    {"log_lik_N": TIGHT},
                    public=True,
                ),
                Case(
                    "D=100, M=5",
                    "ppca_log_lik",
                    {"x_ND": _rs(65).randn(30, 100), **_ppca_params(66, 100, 5)},
                    {"log_lik_N": TIGHT},
                ),
                Case(
                    "points far from the mean",
                    "ppca_log_lik",
                    {"x_ND": 50.0 + _rs(67).randn(5, 8), **_ppca_params(68, 8, 3)},
                    {"log_lik_N": TIGHT},
                ),
            ],
            "ppca.ppca_log_lik_N: log density of the marginal Normal(mu, W W^T + sigma2 I)",
        ),
        Test(
            "ppca_posterior_mean",
            5,
            [
                Case(
                    "D=6, M=2",
                    "ppca_posterior",
                    {"x_ND": _rs(69).randn(10, 6), **_ppca_params(70, 6, 2)},
                    {"z_NM": TIGHT},
                    public=True,
                ),
                Case(
                    "D=40, M=4",
                    "ppca_posterior",
                    {"x_ND": _rs(71).randn(20, 40), **_ppca_params(72, 40, 4)},
                    {"z_NM": TIGHT},
                ),
            ],
            "ppca.ppca_posterior_mean: E[z | x]",
        ),
        Test(
            "estep__calc_r_NK",
            10,
            [
                Case(
                    "K=2, D=2",
                    "gmm_estep",
                    _gmm_params(80, 2, 2, 15),
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                    public=True,
                ),
                Case(
                    "K=4, D=10", "gmm_estep", _gmm_params(81, 4, 10, 40), {"r_NK": TIGHT, "log_lik_N": TIGHT}
                ),
                Case(
                    "points far from every mean (needs log-sum-exp)",
                    "gmm_estep",
                    {**_gmm_params(82, 3, 3, 10), "x_ND": 200.0 + _rs(83).randn(10, 3)},
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                ),
                Case("K=1", "gmm_estep", _gmm_params(84, 1, 4, 12), {"r_NK": TIGHT, "log_lik_N": TIGHT}),
            ],
            "gmm_full_em.estep__calc_r_NK and calc_log_lik_N: responsibilities and log densities",
        ),
        Test(
            "mstep__update_params",
            10,
            [
                Case(
                    "K=2, D=2",
                    "gmm_mstep",
                    {"x_ND": _clusters(85, 30, 2, 2), "r_NK": _resp(86, 30, 2), "reg": 0.01},
                    {"pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT},
                    public=True,
                ),
                Case(
                    "K=3, D=12, reg 0.1",
                    "gmm_mstep",
                    {"x_ND": _clusters(87, 60, 12, 3), "r_NK": _resp(88, 60, 3), "reg": 0.1},
                    {"pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT},
                ),
                Case(
                    "one-hot responsibilities, no ridge",
                    "gmm_mstep",
                    {"x_ND": _clusters(89, 40, 3, 2), "r_NK": np.eye(2)[np.arange(40) % 2], "reg": 0.0},
                    {"pi_K": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT},
                ),
            ],
            "gmm_full_em.mstep__update_params: weights, means and covariances with the ridge",
        ),
        Test(
            "fit_gmm",
            6,
            [
                Case(
                    "K=1 is the ridge-regularised Gaussian fit",
                    "gmm_fit",
                    {"x_ND": _clusters(90, 50, 3, 2), "K": 1, "reg": 0.05, "n_iter": 2, "seed": 0},
                    {
                        "n_history": Exact(),
                        "min_step": Within(-1e-9),
                        "final_mean_log_lik": TIGHT,
                        "mu_KD": TIGHT,
                        "cov_KDD": TIGHT,
                    },
                    public=True,
                ),
                Case(
                    "K=1 on other data",
                    "gmm_fit",
                    {"x_ND": _clusters(91, 80, 5, 3), "K": 1, "reg": 0.2, "n_iter": 3, "seed": 1},
                    {"n_history": Exact(), "final_mean_log_lik": TIGHT, "mu_KD": TIGHT, "cov_KDD": TIGHT},
                ),
                Case(
                    "K=3: n_iter + 1 history entries that never decrease",
                    "gmm_fit",
                    {"x_ND": _clusters(92, 120, 4, 3), "K": 3, "reg": 0.01, "n_iter": 8, "seed": 2},
                    {"n_history": Exact(), "min_step": Within(-1e-9)},
                ),
            ],
            "gmm_full_em.fit_gmm: EM calls the E- and M-steps; the log likelihood never decreases",
        ),
    ]
