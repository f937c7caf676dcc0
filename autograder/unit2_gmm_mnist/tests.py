"""Hidden tests for unit 2 (Gaussians and full-covariance Gaussian mixtures on MNIST 16 x 16).

A table of cases per graded function. Small inputs are built here from fixed seeds; the real-data
cases use the first 400 MNIST training images at 16 x 16 (``mnist16_subset.npz`` beside this file,
the bytes of ``gmmcourse.data.load_mnist("train", size=16)``, checked by tests/test_unit2_math.py),
scaled to [0, 1]. References come from ``references.npz`` (``gmmcourse refs unit2``); the samplers
are graded by properties the probes measure (``Within``). Cases marked public ship with the release.
"""

from pathlib import Path

import numpy as np

from gmmcourse.grading.spec import Case, Close, Exact, Limits, Submission, Test, Within

UNIT = "unit2_gmm_mnist"
SUBMISSION = Submission(
    kind="py", files=("gaussian_mle.py", "class_conditional.py", "gmm_em.py"), given=("plotting.py",)
)
LIMITS = Limits(cpu_seconds=120, memory_bytes=3 * 1024**3, grading_seconds=300.0)

TIGHT = Close(rtol=1e-7, atol=1e-9)
FIT = Close(rtol=1e-6, atol=1e-8)  # several EM iterations amplify rounding differences
ONE = Within(1.0, 1.0)
ZERO = Within(0.0, 0.0)
Z_MAX = Within(0.0, 5.0)  # largest |z| of a correct sampler stays far below 5 for these sizes


# --------------------------------------------------------------------------- input builders


def _mnist(n, offset=0):
    """n MNIST 16 x 16 training images as (n, 256) floats in [0, 1], and their labels."""
    data = np.load(Path(__file__).with_name("mnist16_subset.npz"))
    images = data["images"][offset : offset + n].reshape(n, 256) / 255.0
    return images, data["labels"][offset : offset + n].astype(np.int64)


def _blobs(seed, N, D, K=3, scale=0.5):
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-3, 3, size=(K, D))
    return centres[rng.randint(K, size=N)] + scale * rng.randn(N, D)


def _cov(seed, D, rank=None, scale=1.0):
    """A random symmetric positive (semi-)definite D x D matrix of the given rank."""
    rng = np.random.RandomState(seed)
    A = rng.randn(D, rank or D) * scale
    return A @ A.T / (rank or D) + (0.0 if rank else 0.1 * scale**2) * np.eye(D)


def _singular_cov(seed, D, rank):
    """Rank-``rank`` covariance whose first pixel is constant (zero row and column)."""
    cov = _cov(seed, D, rank)
    cov[0, :] = cov[:, 0] = 0.0
    return cov


def _gmm(seed, K, D, rank=None, scale=1.0):
    rng = np.random.RandomState(seed)
    return {
        "log_pi_K": np.log(rng.dirichlet(np.ones(K) * 3)),
        "mu_KD": rng.uniform(-2, 2, size=(K, D)),
        "cov_KDD": np.stack([_cov(seed + 100 + k, D, rank, scale) for k in range(K)]),
    }


def _resp(seed, N, K, zero_column=None):
    r = np.random.RandomState(seed).dirichlet(np.ones(K), size=N)
    if zero_column is not None:
        r[:, zero_column] = 0.0
        r /= r.sum(axis=1, keepdims=True)
    return r


def _mnist_classes(n, K=10):
    x, y = _mnist(n)
    pi = np.bincount(y, minlength=K) / n
    mu = np.stack([x[y == k].mean(axis=0) for k in range(K)])
    cov = np.stack([np.cov(x[y == k], rowvar=False) for k in range(K)])
    return x, {"log_pi_K": np.log(pi), "mu_KD": mu, "cov_KDD": cov}


def _no_args(params):
    return {k: v for k, v in params.items() if k != "log_pi_K"}


def _sampler_expect():
    return {
        "shape": Exact(),
        "advanced": ONE,
        "same_seed_same_draws": ONE,
        "other_seed_other_draws": ONE,
        "mean_max_abs_z": Z_MAX,
        "cov_max_abs_z": Z_MAX,
    }


def _mixture_expect():
    return {
        "x_shape": Exact(),
        "z_shape": Exact(),
        "advanced": ONE,
        "same_seed_same_draws": ONE,
        "labels_are_components": ONE,
        "count_max_abs_z": Z_MAX,
        "mean_max_abs_z": Z_MAX,
        "cov_max_abs_z": Z_MAX,
    }


def _params_expect(tol=TIGHT):
    return {"pi_K": tol, "mu_KD": tol, "cov_KDD": tol}


def _init_expect():
    return {**_params_expect(), "advanced": ONE, "raises_value_error": ZERO}


def _fit_args(x, init, n_iter, eps, **extra):
    return {"x_ND": x, "init": init, "n_iter": n_iter, "eps": eps, **extra}


def _fit_expect(eval_set=False):
    out = {**_params_expect(FIT), "log_lik_T": FIT}
    if eval_set:
        out["eval_log_lik_T"] = FIT
    return out


def _kmeans_start(x, K, seed):
    return x[np.random.RandomState(seed).choice(len(x), K, replace=False)]


# --------------------------------------------------------------------------- the tests


def build_tests():
    x_mnist, classes = _mnist_classes(300)
    x_small = _blobs(1, 60, 4)
    init_small = {**_gmm(2, 3, 4), "mu_KD": x_small[[0, 1, 2]]}
    init_dead = {**_gmm(3, 3, 4)}
    with np.errstate(divide="ignore"):
        init_dead["log_pi_K"] = np.log(np.array([0.5, 0.5, 0.0]))
    mnist_init = {
        "log_pi_K": np.full(3, -np.log(3)),
        "mu_KD": x_mnist[[0, 1, 2]],
        "cov_KDD": np.repeat(np.cov(x_mnist, rowvar=False)[None], 3, axis=0),
    }
    far_away = np.vstack([_blobs(40, 40, 3), [[50.0, 50.0, 50.0]]])
    return [
        Test(
            "estimate_mean_D / estimate_cov_DD",
            8,
            [
                Case(
                    "small data, N=5, D=3",
                    "mle",
                    {"x_ND": _blobs(10, 5, 3)},
                    {"mu_D": TIGHT, "cov_DD": TIGHT},
                    public=True,
                ),
                Case(
                    "300 MNIST images (constant pixels: singular covariance)",
                    "mle",
                    {"x_ND": x_mnist},
                    {"mu_D": TIGHT, "cov_DD": TIGHT},
                ),
                Case("unbiased: N=2", "mle", {"x_ND": _blobs(11, 2, 4)}, {"mu_D": TIGHT, "cov_DD": TIGHT}),
                Case(
                    "one example: zero covariance",
                    "mle",
                    {"x_ND": _blobs(12, 1, 3)},
                    {"mu_D": TIGHT, "cov_DD": TIGHT},
                ),
                Case(
                    "large offset (+1e4) with a small spread",
                    "mle",
                    {"x_ND": 1e4 + _blobs(13, 50, 3)},
                    {"mu_D": TIGHT, "cov_DD": Close(rtol=1e-6, atol=1e-8)},
                ),
            ],
            "gaussian_mle: maximum-likelihood mean and unbiased (1 / (N - 1)) covariance",
        ),
        Test(
            "draw_gaussian_samples",
            8,
            [
                Case(
                    "D=3, full-rank covariance, 20000 samples",
                    "gaussian_sampler",
                    {
                        "mu_D": np.array([1.0, -2.0, 0.5]),
                        "cov_DD": _cov(20, 3),
                        "n_samples": 20000,
                        "seed": 1,
                    },
                    _sampler_expect(),
                    public=True,
                ),
                Case(
                    "D=6, correlated, 20000 samples",
                    "gaussian_sampler",
                    {
                        "mu_D": np.linspace(-1, 1, 6),
                        "cov_DD": _cov(21, 6, scale=2.0),
                        "n_samples": 20000,
                        "seed": 2,
                    },
                    _sampler_expect(),
                ),
                Case(
                    "singular covariance (rank 2 of 5) and a constant pixel",
                    "gaussian_sampler",
                    {
                        "mu_D": np.arange(5.0),
                        "cov_DD": _singular_cov(22, 5, rank=2),
                        "n_samples": 20000,
                        "seed": 3,
                    },
                    _sampler_expect(),
                ),
                Case(
                    "D=1",
                    "gaussian_sampler",
                    {"mu_D": np.array([3.0]), "cov_DD": np.array([[0.25]]), "n_samples": 5000, "seed": 4},
                    _sampler_expect(),
                ),
            ],
            "gaussian_mle.draw_gaussian_samples: shape, sample moments (z-scores), the generator used",
        ),
        Test(
            "fit_class_conditional",
            8,
            [
                Case(
                    "3 classes, D=2",
                    "class_conditional",
                    {"x_ND": _blobs(30, 30, 2), "y_N": np.arange(30) % 3, "K": 3},
                    _params_expect(),
                    public=True,
                ),
                Case(
                    "300 MNIST images, 10 digit classes",
                    "class_conditional",
                    {"x_ND": x_mnist, "y_N": _mnist(300)[1], "K": 10},
                    _params_expect(),
                ),
                Case(
                    "an empty class and a class with one example",
                    "class_conditional",
                    {"x_ND": _blobs(31, 12, 3), "y_N": np.array([0] * 6 + [1] * 5 + [3]), "K": 4},
                    _params_expect(),
                ),
                Case(
                    "K=1",
                    "class_conditional",
                    {"x_ND": _blobs(32, 10, 2), "y_N": np.zeros(10, int), "K": 1},
                    _params_expect(),
                ),
            ],
            "class_conditional.fit_class_conditional: weights n_k / N, class means, unbiased covariances",
        ),
        Test(
            "draw_mixture_samples",
            8,
            [
                Case(
                    "K=3, D=2, 30000 samples",
                    "mixture_sampler",
                    {**_gmm(40, 3, 2), "n_samples": 30000, "seed": 5},
                    _mixture_expect(),
                    public=True,
                ),
                Case(
                    "K=4, D=3, unequal weights, 40000 samples",
                    "mixture_sampler",
                    {
                        **_gmm(41, 4, 3),
                        "log_pi_K": np.log([0.6, 0.25, 0.1, 0.05]),
                        "n_samples": 40000,
                        "seed": 6,
                    },
                    _mixture_expect(),
                ),
                Case(
                    "a component of weight 0 is never drawn",
                    "mixture_sampler",
                    {
                        **_gmm(42, 3, 2),
                        "log_pi_K": np.array([np.log(0.5), -np.inf, np.log(0.5)]),
                        "n_samples": 20000,
                        "seed": 7,
                    },
                    _mixture_expect(),
                ),
                Case(
                    "K=1",
                    "mixture_sampler",
                    {**_gmm(43, 1, 3), "n_samples": 10000, "seed": 8},
                    _mixture_expect(),
                ),
            ],
            "class_conditional.draw_mixture_samples: shapes, component counts, each component's moments, "
            "the generator used",
        ),
        Test(
            "calc_log_pdf_NK",
            12,
            [
                Case(
                    "K=2, D=3, full-rank covariances",
                    "log_pdf",
                    {"x_ND": _blobs(50, 8, 3), **_no_args(_gmm(51, 2, 3)), "eps": 1e-6},
                    {"log_pdf_NK": TIGHT},
                    public=True,
                ),
                Case(
                    "singular covariances (rank 2 of 6), eps=1e-3",
                    "log_pdf",
                    {"x_ND": _blobs(52, 20, 6), **_no_args(_gmm(53, 3, 6, rank=2)), "eps": 1e-3},
                    {"log_pdf_NK": TIGHT},
                ),
                Case(
                    "eps larger than every eigenvalue",
                    "log_pdf",
                    {"x_ND": _blobs(54, 15, 4), **_no_args(_gmm(55, 2, 4, scale=0.1)), "eps": 10.0},
                    {"log_pdf_NK": TIGHT},
                ),
                Case(
                    "eps added to the diagonal instead (add_eps_to_diag=True)",
                    "log_pdf",
                    {
                        "x_ND": _blobs(56, 15, 5),
                        **_no_args(_gmm(57, 3, 5, rank=3)),
                        "eps": 0.05,
                        "add_eps_to_diag": True,
                    },
                    {"log_pdf_NK": TIGHT},
                ),
                Case(
                    "MNIST digit classes on 300 images, eps=1e-3",
                    "log_pdf",
                    {"x_ND": x_mnist[:100], **_no_args(classes), "eps": 1e-3},
                    {"log_pdf_NK": TIGHT},
                ),
                Case(
                    "K=1, D=1",
                    "log_pdf",
                    {
                        "x_ND": _blobs(58, 6, 1, 1),
                        "mu_KD": np.array([[0.3]]),
                        "cov_KDD": np.array([[[2.0]]]),
                        "eps": 1e-6,
                    },
                    {"log_pdf_NK": TIGHT},
                ),
                Case(
                    "an all-zero covariance (every eigenvalue clipped)",
                    "log_pdf",
                    {
                        "x_ND": _blobs(59, 6, 3),
                        "mu_KD": np.zeros((1, 3)),
                        "cov_KDD": np.zeros((1, 3, 3)),
                        "eps": 0.5,
                    },
                    {"log_pdf_NK": TIGHT},
                ),
            ],
            "gmm_em.calc_log_pdf_NK: Gaussian log-densities from eigenvalues clipped at eps",
        ),
        Test(
            "estep__calc_r_NK",
            10,
            [
                Case(
                    "K=3, D=4",
                    "estep",
                    {"x_ND": x_small, **init_small, "eps": 1e-6},
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                    public=True,
                ),
                Case(
                    "MNIST digit classes, eps=1e-3",
                    "estep",
                    {"x_ND": x_mnist[:100], **classes, "eps": 1e-3},
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                ),
                Case(
                    "a component of weight 0 (log_pi = -inf)",
                    "estep",
                    {"x_ND": _blobs(60, 30, 4), **init_dead, "eps": 1e-6},
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                ),
                Case(
                    "points far from every mean (needs log-sum-exp)",
                    "estep",
                    {"x_ND": 40.0 + _blobs(61, 20, 4), **_gmm(62, 3, 4, scale=0.3), "eps": 1e-6},
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                ),
                Case(
                    "K=1 gives all ones",
                    "estep",
                    {"x_ND": _blobs(63, 10, 2), **_gmm(64, 1, 2), "eps": 1e-6},
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                ),
                Case(
                    "fewer examples than components (N=2, K=4)",
                    "estep",
                    {"x_ND": _blobs(65, 2, 3), **_gmm(66, 4, 3), "eps": 1e-6},
                    {"r_NK": TIGHT, "log_lik_N": TIGHT},
                ),
            ],
            "gmm_em.estep__calc_r_NK: responsibilities (rows sum to one) and per-example log-likelihoods",
        ),
        Test(
            "mstep__update_params",
            10,
            [
                Case(
                    "K=3, D=4, random responsibilities",
                    "mstep",
                    {"x_ND": x_small, "r_NK": _resp(70, 60, 3)},
                    _params_expect(),
                    public=True,
                ),
                Case(
                    "300 MNIST images, K=4",
                    "mstep",
                    {"x_ND": x_mnist, "r_NK": _resp(71, 300, 4)},
                    _params_expect(),
                ),
                Case(
                    "a component with no responsibility",
                    "mstep",
                    {"x_ND": _blobs(72, 40, 3), "r_NK": _resp(73, 40, 4, zero_column=2)},
                    _params_expect(),
                ),
                Case("K=1", "mstep", {"x_ND": _blobs(74, 20, 3), "r_NK": np.ones((20, 1))}, _params_expect()),
                Case(
                    "fewer examples than components (N=2, K=5)",
                    "mstep",
                    {"x_ND": _blobs(75, 2, 3), "r_NK": _resp(76, 2, 5)},
                    _params_expect(),
                ),
            ],
            "gmm_em.mstep__update_params: weights, weighted means and weighted (1 / n_k) covariances",
        ),
        Test(
            "run_kmeans",
            8,
            [
                Case(
                    "three blobs, D=2, 10 rounds",
                    "kmeans",
                    {
                        "x_ND": _blobs(80, 60, 2),
                        "centres_KD": _kmeans_start(_blobs(80, 60, 2), 3, 1),
                        "n_iter": 10,
                    },
                    {"centres_KD": TIGHT, "z_N": Exact(), "start_not_modified": ONE},
                    public=True,
                ),
                Case(
                    "300 MNIST images, K=10, 5 rounds",
                    "kmeans",
                    {"x_ND": x_mnist, "centres_KD": x_mnist[:10], "n_iter": 5},
                    {"centres_KD": TIGHT, "z_N": Exact(), "start_not_modified": ONE},
                ),
                Case(
                    "one round only",
                    "kmeans",
                    {"x_ND": _blobs(81, 40, 3), "centres_KD": _blobs(82, 4, 3), "n_iter": 1},
                    {"centres_KD": TIGHT, "z_N": Exact(), "start_not_modified": ONE},
                ),
                Case(
                    "a centre that gets no example stays",
                    "kmeans",
                    {
                        "x_ND": _blobs(83, 30, 3),
                        "centres_KD": np.vstack([_blobs(83, 30, 3)[:2], [[99.0] * 3]]),
                        "n_iter": 6,
                    },
                    {"centres_KD": TIGHT, "z_N": Exact(), "start_not_modified": ONE},
                ),
                Case(
                    "K=1",
                    "kmeans",
                    {"x_ND": _blobs(84, 20, 2), "centres_KD": np.zeros((1, 2)), "n_iter": 3},
                    {"centres_KD": TIGHT, "z_N": Exact(), "start_not_modified": ONE},
                ),
            ],
            "gmm_em.run_kmeans: centres and nearest-centre assignments (squared Euclidean distance)",
        ),
        Test(
            "init_gmm_kmeans / init_gmm_random",
            8,
            [
                Case(
                    "k-means init, K=3, D=2",
                    "init_kmeans",
                    {"x_ND": _blobs(90, 50, 2), "K": 3, "n_iter": 10, "seed": 1},
                    _init_expect(),
                    public=True,
                ),
                Case(
                    "k-means init on 300 MNIST images, K=5",
                    "init_kmeans",
                    {"x_ND": x_mnist, "K": 5, "n_iter": 5, "seed": 2},
                    _init_expect(),
                ),
                Case(
                    "k-means init, K=1",
                    "init_kmeans",
                    {"x_ND": _blobs(91, 20, 3), "K": 1, "n_iter": 3, "seed": 3},
                    _init_expect(),
                ),
                Case(
                    "k-means init with a cluster that ends with one example",
                    "init_kmeans",
                    {"x_ND": far_away, "K": 4, "n_iter": 10, "seed": 4},
                    _init_expect(),
                ),
                Case(
                    "k-means init with fewer examples than components raises ValueError",
                    "init_kmeans",
                    {"x_ND": _blobs(92, 3, 2), "K": 5, "n_iter": 3, "seed": 5},
                    {"raises_value_error": ONE},
                ),
                Case(
                    "random init, K=3, D=2",
                    "init_random",
                    {"x_ND": _blobs(93, 50, 2), "K": 3, "seed": 6},
                    _init_expect(),
                    public=True,
                ),
                Case(
                    "random init on 300 MNIST images, K=4",
                    "init_random",
                    {"x_ND": x_mnist, "K": 4, "seed": 7},
                    _init_expect(),
                ),
                Case(
                    "random init with fewer examples than components raises ValueError",
                    "init_random",
                    {"x_ND": _blobs(94, 2, 2), "K": 3, "seed": 8},
                    {"raises_value_error": ONE},
                ),
            ],
            "gmm_em.init_gmm_kmeans and init_gmm_random: initial weights, means and covariances",
        ),
        Test(
            "fit_gmm_em",
            14,
            [
                Case(
                    "K=3, D=4, 10 iterations, held-out set",
                    "fit_em",
                    _fit_args(x_small, init_small, 10, 1e-6, x_eval_ND=_blobs(100, 20, 4)),
                    _fit_expect(True),
                    public=True,
                ),
                Case(
                    "300 MNIST images, K=3, 5 iterations, eps=1e-3",
                    "fit_em",
                    _fit_args(x_mnist, mnist_init, 5, 1e-3, x_eval_ND=_mnist(50, offset=300)[0]),
                    _fit_expect(True),
                ),
                Case(
                    "eps added to the diagonal (add_eps_to_diag=True)",
                    "fit_em",
                    _fit_args(x_small, init_small, 6, 0.01, add_eps_to_diag=True),
                    _fit_expect(),
                ),
                Case(
                    "eps larger than every eigenvalue",
                    "fit_em",
                    _fit_args(x_small, init_small, 4, 50.0),
                    _fit_expect(),
                ),
                Case(
                    "a component starting with weight 0",
                    "fit_em",
                    _fit_args(_blobs(101, 40, 4), init_dead, 5, 1e-6),
                    _fit_expect(),
                ),
                Case(
                    "K=1 (one M-step gives the single Gaussian)",
                    "fit_em",
                    _fit_args(_blobs(102, 30, 3), _gmm(103, 1, 3), 2, 1e-6),
                    _fit_expect(),
                ),
                Case(
                    "fewer examples than components (N=3, K=4)",
                    "fit_em",
                    _fit_args(_blobs(104, 3, 2), _gmm(105, 4, 2), 3, 1e-3),
                    _fit_expect(),
                ),
                Case(
                    "n_iter=0 scores the initial parameters",
                    "fit_em",
                    _fit_args(x_small, init_small, 0, 1e-6),
                    _fit_expect(),
                ),
                Case(
                    "dtype=float32 (rounding-level differences accepted)",
                    "fit_em",
                    _fit_args(x_mnist, mnist_init, 3, 1e-3, dtype="float32"),
                    {"log_lik_T": Close(rtol=1e-5), "pi_K": Close(rtol=1e-3, atol=1e-5)},
                ),
            ],
            "gmm_em.fit_gmm_em: parameters after n_iter EM iterations and the log-likelihood trace",
            timeout=120,
        ),
        Test(
            "bad input",
            4,
            [
                Case(
                    "fit_gmm_em with eps=0",
                    "raises_value_error",
                    {
                        "function": "gmm_em:fit_gmm_em",
                        "kwargs": {"x_ND": x_small, **init_small, "n_iter": 2, "eps": 0.0},
                    },
                    {"raises_value_error": ONE},
                    public=True,
                ),
                Case(
                    "fit_gmm_em with a negative eps",
                    "raises_value_error",
                    {
                        "function": "gmm_em:fit_gmm_em",
                        "kwargs": {"x_ND": x_small, **init_small, "n_iter": 2, "eps": -1e-3},
                    },
                    {"raises_value_error": ONE},
                ),
                Case(
                    "fit_gmm_em with eps=0 and add_eps_to_diag=True",
                    "raises_value_error",
                    {
                        "function": "gmm_em:fit_gmm_em",
                        "kwargs": {
                            "x_ND": x_small,
                            **init_small,
                            "n_iter": 2,
                            "eps": 0.0,
                            "add_eps_to_diag": True,
                        },
                    },
                    {"raises_value_error": ONE},
                ),
                Case(
                    "fit_gmm_em with cov_KDD of the wrong shape",
                    "raises_value_error",
                    {
                        "function": "gmm_em:fit_gmm_em",
                        "kwargs": {
                            "x_ND": x_small,
                            **init_small,
                            "cov_KDD": init_small["cov_KDD"][:, :3, :3],
                            "n_iter": 2,
                            "eps": 1e-3,
                        },
                    },
                    {"raises_value_error": ONE},
                ),
                Case(
                    "estimate_mean_D of no examples",
                    "raises_value_error",
                    {"function": "gaussian_mle:estimate_mean_D", "kwargs": {"x_ND": np.zeros((0, 3))}},
                    {"raises_value_error": ONE},
                ),
                Case(
                    "fit_class_conditional with a label out of range",
                    "raises_value_error",
                    {
                        "function": "class_conditional:fit_class_conditional",
                        "kwargs": {"x_ND": _blobs(110, 5, 2), "y_N": np.array([0, 1, 2, 1, 0]), "K": 2},
                    },
                    {"raises_value_error": ONE},
                ),
            ],
            "one ValueError for bad input at the public boundary",
        ),
    ]
