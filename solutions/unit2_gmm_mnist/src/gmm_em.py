"""A K-component Gaussian mixture with full covariances, fit by EM, started by k-means or at random.

Log-densities go through the eigendecomposition of each covariance, Sigma = U diag(lam) U^T
(``numpy.linalg.eigh``: real eigenvalues, orthonormal U), never through ``det`` or ``inv``. Eigenvalues
below eps are raised to eps, so a component whose images never change in some pixels still has a
finite density:

    log N(x | mu, Sigma) = -1/2 [D log(2 pi) + sum_d log lam_d + |(x - mu)^T U diag(lam)^(-1/2)|^2].

With ``add_eps_to_diag=True`` eps is added to every eigenvalue instead, which is the density of
N(mu, Sigma + eps I), the regularization scikit-learn's ``GaussianMixture(reg_covar=eps)`` uses.

The heavy products (N x D times D x D, once per component in the E-step and in the M-step) run in
the precision of the data array: ``fit_gmm_em(..., dtype=np.float32)`` halves their cost. Pixel
values in [0, 1] need no more than float32's seven digits; parameters, eigendecompositions and the
sums of logarithms stay in float64.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=3, suppress=True)
>>> rng = np.random.default_rng(0)
>>> x_ND = np.vstack([rng.normal(-3, 1, (100, 1)), rng.normal(3, 1, (100, 1))])
>>> log_pi_K, mu_KD, cov_KDD = init_gmm_kmeans(x_ND, 2, 10, rng)
>>> log_pi_K, mu_KD, cov_KDD, log_lik_T, _ = fit_gmm_em(x_ND, log_pi_K, mu_KD, cov_KDD, 10, 1e-6)
>>> np.sort(mu_KD[:, 0]).round(1)
array([-2.9,  3. ])
>>> bool(np.all(np.diff(log_lik_T) >= -1e-12))
True
"""

import numpy as np
from class_conditional import fit_class_conditional
from gaussian_mle import estimate_cov_DD
from scipy.special import logsumexp


def calc_log_pdf_NK(x_ND, mu_KD, cov_KDD, eps, add_eps_to_diag=False):
    """Log-density of every example under every component, from clipped eigenvalues.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
        float64 or float32; the N x D products are computed in this precision.
    mu_KD : ndarray of shape (K, D)
    cov_KDD : ndarray of shape (K, D, D)
        Symmetric covariances (possibly singular).
    eps : float
        Eigenvalue floor, > 0.
    add_eps_to_diag : bool, default False
        Add eps to every eigenvalue (the density of N(mu_k, cov_k + eps I)) instead of raising the
        eigenvalues below eps to eps.

    Returns
    -------
    log_pdf_NK : ndarray of shape (N, K), float64
        log N(x_n | mu_k, Sigma_k) with Sigma_k's eigenvalues lam replaced by max(lam, eps)
        (or lam + eps).
    """
    ### BEGIN SOLUTION
    N, D = x_ND.shape
    K = mu_KD.shape[0]
    log_pdf_NK = np.empty((N, K))
    for k in range(K):
        lam_D, U_DD = np.linalg.eigh(cov_KDD[k])
        lam_D = lam_D + eps if add_eps_to_diag else np.maximum(lam_D, eps)
        # Sigma^-1 = W W^T with W = U diag(lam)^(-1/2): the Mahalanobis term is |(x - mu) W|^2
        W_DD = U_DD / np.sqrt(lam_D)
        z_ND = (x_ND - mu_KD[k].astype(x_ND.dtype)) @ W_DD.astype(x_ND.dtype)
        log_pdf_NK[:, k] = -0.5 * (D * np.log(2 * np.pi) + np.sum(np.log(lam_D)) + np.sum(z_ND**2, axis=1))
    return log_pdf_NK
    ### END SOLUTION


def estep__calc_r_NK(x_ND, log_pi_K, mu_KD, cov_KDD, eps, add_eps_to_diag=False):
    """E-step: responsibilities and the log-likelihood of every example.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
    log_pi_K : ndarray of shape (K,)
        Log mixture weights (-inf for a weight of 0).
    mu_KD : ndarray of shape (K, D)
    cov_KDD : ndarray of shape (K, D, D)
    eps, add_eps_to_diag
        As in :func:`calc_log_pdf_NK`.

    Returns
    -------
    r_NK : ndarray of shape (N, K)
        r_nk = pi_k N(x_n | k) / sum_j pi_j N(x_n | j); each row sums to 1, and a component with
        weight 0 gets exactly 0.
    log_lik_N : ndarray of shape (N,)
        log sum_k pi_k N(x_n | k).
    """
    ### BEGIN SOLUTION
    log_joint_NK = log_pi_K + calc_log_pdf_NK(x_ND, mu_KD, cov_KDD, eps, add_eps_to_diag)
    log_lik_N = logsumexp(log_joint_NK, axis=1)
    r_NK = np.exp(log_joint_NK - log_lik_N[:, np.newaxis])
    return r_NK, log_lik_N
    ### END SOLUTION


def mstep__update_params(x_ND, r_NK):
    """M-step: weights, means and covariances that maximize the expected log-likelihood.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
        float64 or float32; the covariance products are computed in this precision.
    r_NK : ndarray of shape (N, K)
        Responsibilities; each row sums to 1.

    Returns
    -------
    log_pi_K : ndarray of shape (K,)
        log(n_k / N) with n_k = sum_n r_nk; -inf for a component with n_k = 0.
    mu_KD : ndarray of shape (K, D)
        (1 / n_k) sum_n r_nk x_n; zeros when n_k = 0.
    cov_KDD : ndarray of shape (K, D, D), float64
        (1 / n_k) sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T (no eps added); zeros when n_k = 0.
    """
    ### BEGIN SOLUTION
    N, D = x_ND.shape
    K = r_NK.shape[1]
    n_K = np.sum(r_NK, axis=0)
    with np.errstate(divide="ignore"):
        log_pi_K = np.log(n_K) - np.log(N)
    n_K = np.where(n_K > 0, n_K, 1.0)  # an empty component divides its zero sums by 1
    mu_KD = (r_NK.T @ x_ND) / n_K[:, np.newaxis]
    cov_KDD = np.empty((K, D, D))
    for k in range(K):
        # sum_n r_nk d_n d_n^T = A^T A with rows a_n = sqrt(r_nk) d_n: one product of A with itself
        A_ND = np.sqrt(r_NK[:, k, np.newaxis]).astype(x_ND.dtype) * (x_ND - mu_KD[k].astype(x_ND.dtype))
        cov_KDD[k] = A_ND.T @ A_ND / n_K[k]
    return log_pi_K, mu_KD, cov_KDD
    ### END SOLUTION


def run_kmeans(x_ND, centres_KD, n_iter):
    """k-means from given centres: assign every example to its nearest centre, move every centre to
    the mean of its examples, repeat.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
    centres_KD : ndarray of shape (K, D)
        Starting centres (not modified).
    n_iter : int
        Number of assign-and-move rounds, >= 1 (stopping early once no assignment changes gives
        the same result).

    Returns
    -------
    centres_KD : ndarray of shape (K, D)
        The centres after the last round; a centre that gets no example stays where it is.
    z_N : ndarray of shape (N,), int
        The assignment made in the last round: the index of the nearest centre in squared
        Euclidean distance (the lowest index on a tie).
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    centres_KD = np.array(centres_KD, dtype=np.float64)
    K = centres_KD.shape[0]
    z_N = None
    for _ in range(n_iter):
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every centre, so it is left out
        dist_NK = -2.0 * x_ND @ centres_KD.T + np.sum(centres_KD**2, axis=1)
        new_z_N = np.argmin(dist_NK, axis=1)
        if z_N is not None and np.array_equal(new_z_N, z_N):
            break
        z_N = new_z_N
        for k in range(K):
            if np.any(z_N == k):
                centres_KD[k] = np.mean(x_ND[z_N == k], axis=0)
    return centres_KD, z_N
    ### END SOLUTION


def init_gmm_kmeans(x_ND, K, n_iter, rng):
    """Initial mixture from k-means started at K distinct random examples.

    The starting centres are ``x_ND[rng.choice(N, size=K, replace=False)]``; after
    :func:`run_kmeans` for n_iter rounds, each cluster gives one component: weight n_k / N, the
    cluster's mean and its unbiased covariance (as :func:`fit_class_conditional` with the cluster
    labels).

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
    K : int
        Number of components, 1 <= K <= N.
    n_iter : int
        k-means rounds, >= 1.
    rng : numpy.random.Generator

    Returns
    -------
    log_pi_K, mu_KD, cov_KDD
        As returned by :func:`fit_class_conditional`.

    Raises
    ------
    ValueError
        If K is not between 1 and N, or rng is not a numpy.random.Generator.
    """
    ### BEGIN SOLUTION
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    N = x_ND.shape[0]
    if not 1 <= K <= N:
        raise ValueError(f"K must be between 1 and the number of examples N = {N}, got K = {K}")
    centres_KD = x_ND[rng.choice(N, size=K, replace=False)]
    _, z_N = run_kmeans(x_ND, centres_KD, n_iter)
    return fit_class_conditional(x_ND, z_N, K)
    ### END SOLUTION


def init_gmm_random(x_ND, K, rng):
    """Initial mixture at random: K distinct random examples as means, the covariance of all the
    data for every component, equal weights.

    The means are ``x_ND[rng.choice(N, size=K, replace=False)]``.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
    K : int
        Number of components, 1 <= K <= N.
    rng : numpy.random.Generator

    Returns
    -------
    log_pi_K : ndarray of shape (K,)
        log(1 / K) everywhere.
    mu_KD : ndarray of shape (K, D)
    cov_KDD : ndarray of shape (K, D, D)
        K copies of the unbiased covariance of x_ND.

    Raises
    ------
    ValueError
        If K is not between 1 and N, or rng is not a numpy.random.Generator.
    """
    ### BEGIN SOLUTION
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    N = x_ND.shape[0]
    if not 1 <= K <= N:
        raise ValueError(f"K must be between 1 and the number of examples N = {N}, got K = {K}")
    mu_KD = x_ND[rng.choice(N, size=K, replace=False)].astype(np.float64)
    cov_KDD = np.repeat(estimate_cov_DD(x_ND)[np.newaxis], K, axis=0)
    return np.full(K, -np.log(K)), mu_KD, cov_KDD
    ### END SOLUTION


def fit_gmm_em(
    x_ND,
    log_pi_K,
    mu_KD,
    cov_KDD,
    n_iter,
    eps,
    add_eps_to_diag=False,
    dtype=np.float64,
    x_eval_ND=None,
    verbose=False,
):
    """Run n_iter EM iterations (E-step, then M-step) from the given parameters.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
        Training data.
    log_pi_K, mu_KD, cov_KDD : ndarrays of shapes (K,), (K, D), (K, D, D)
        Initial parameters (not modified).
    n_iter : int
        Number of iterations, >= 0.
    eps : float
        Eigenvalue floor of :func:`calc_log_pdf_NK`, > 0.
    add_eps_to_diag : bool, default False
        Use Sigma + eps I instead of clipping (see :func:`calc_log_pdf_NK`).
    dtype : {numpy.float64, numpy.float32}, default numpy.float64
        Precision of the N x D products.
    x_eval_ND : ndarray of shape (M, D), optional
        Held-out data scored after every iteration.
    verbose : bool, default False
        Print one line per iteration.

    Returns
    -------
    log_pi_K, mu_KD, cov_KDD : ndarrays of shapes (K,), (K, D), (K, D, D)
        Parameters after n_iter iterations.
    log_lik_T : ndarray of shape (n_iter + 1,)
        Mean log-likelihood per training example of the parameters after t iterations
        (t = 0 is the initial parameters).
    eval_log_lik_T : ndarray of shape (n_iter + 1,) or None
        The same for x_eval_ND (None without x_eval_ND).

    Raises
    ------
    ValueError
        If eps <= 0, n_iter < 0, dtype is not float32 or float64, or the shapes disagree.
    """
    ### BEGIN SOLUTION
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if n_iter < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    K, D = np.shape(mu_KD)
    if np.shape(x_ND)[1:] != (D,) or np.shape(log_pi_K) != (K,) or np.shape(cov_KDD) != (K, D, D):
        raise ValueError(
            f"shapes disagree: x_ND {np.shape(x_ND)}, log_pi_K {np.shape(log_pi_K)}, "
            f"mu_KD {np.shape(mu_KD)}, cov_KDD {np.shape(cov_KDD)}"
        )
    x_ND = np.asarray(x_ND, dtype=dtype)
    if x_eval_ND is not None:
        x_eval_ND = np.asarray(x_eval_ND, dtype=dtype)
    log_lik_T, eval_log_lik_T = [], []
    for t in range(n_iter + 1):
        r_NK, log_lik_N = estep__calc_r_NK(x_ND, log_pi_K, mu_KD, cov_KDD, eps, add_eps_to_diag)
        log_lik_T.append(np.mean(log_lik_N))
        message = f"iteration {t:3d}: train log-lik per image {log_lik_T[-1]:10.3f}"
        if x_eval_ND is not None:
            _, eval_log_lik_N = estep__calc_r_NK(x_eval_ND, log_pi_K, mu_KD, cov_KDD, eps, add_eps_to_diag)
            eval_log_lik_T.append(np.mean(eval_log_lik_N))
            message += f", held-out {eval_log_lik_T[-1]:10.3f}"
        if verbose:
            print(message, flush=True)
        if t < n_iter:
            log_pi_K, mu_KD, cov_KDD = mstep__update_params(x_ND, r_NK)
    eval_out = np.array(eval_log_lik_T) if x_eval_ND is not None else None
    return log_pi_K, mu_KD, cov_KDD, np.array(log_lik_T), eval_out
    ### END SOLUTION
