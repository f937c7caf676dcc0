"""A Gaussian mixture with full, regularised covariances, fit by EM.

    p(x) = sum_k pi_k Normal(x | mu_k, Sigma_k)

E-step: responsibilities r_nk = pi_k N(x_n | mu_k, Sigma_k) / p(x_n), in log space.
M-step: with N_k = sum_n r_nk,

    pi_k = N_k / N,   mu_k = sum_n r_nk x_n / N_k,
    Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg I.

The ridge ``reg`` keeps every covariance positive definite (MNIST has pixels that are always 0, so an
unregularised covariance is singular and the likelihood unbounded). Log densities use one Cholesky
factor per component: log det Sigma = 2 sum log diag L and the Mahalanobis term is |L^-1 (x - mu)|^2.

Examples
--------
>>> import numpy as np
>>> x_ND = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
>>> r_NK = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
>>> log_pi_K, mu_KD, cov_KDD = mstep__update_params(x_ND, r_NK, reg=0.01)
>>> np.round(mu_KD, 3)
array([[0.05, 0.  ],
       [5.05, 5.  ]])
>>> np.round(estep__calc_r_NK(x_ND, log_pi_K, mu_KD, cov_KDD), 3)
array([[1., 0.],
       [1., 0.],
       [0., 1.],
       [0., 1.]])
"""

import time

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp


def calc_log_joint_NK(x_ND, log_pi_K, mu_KD, cov_KDD):
    """log pi_k + log Normal(x_n | mu_k, Sigma_k) for every example and component.

    Parameters
    ----------
    x_ND : array-like of shape (N, D)
    log_pi_K : array-like of shape (K,)
        Log mixture weights.
    mu_KD : array-like of shape (K, D)
    cov_KDD : array-like of shape (K, D, D)
        Symmetric positive definite covariances.

    Returns
    -------
    log_joint_NK : ndarray of shape (N, K)

    Raises
    ------
    ValueError
        If a covariance is not positive definite (a larger ``reg`` helps).
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    N, D = x_ND.shape
    K = len(log_pi_K)
    log_joint_NK = np.empty((N, K))
    for k in range(K):
        try:
            L_DD = np.linalg.cholesky(cov_KDD[k])
        except np.linalg.LinAlgError:
            raise ValueError(f"covariance {k} is not positive definite; use a larger reg") from None
        a_DN = solve_triangular(L_DD, (x_ND - mu_KD[k]).T, lower=True)
        log_det = 2.0 * np.sum(np.log(np.diag(L_DD)))
        log_joint_NK[:, k] = (
            log_pi_K[k] - 0.5 * (D * np.log(2 * np.pi) + log_det) - 0.5 * np.sum(a_DN**2, axis=0)
        )
    return log_joint_NK
    ### END SOLUTION


def calc_log_lik_N(x_ND, log_pi_K, mu_KD, cov_KDD):
    """Log density log p(x_n) of every row under the mixture.

    Parameters
    ----------
    Same as :func:`calc_log_joint_NK`.

    Returns
    -------
    log_lik_N : ndarray of shape (N,)
    """
    ### BEGIN SOLUTION
    return logsumexp(calc_log_joint_NK(x_ND, log_pi_K, mu_KD, cov_KDD), axis=1)
    ### END SOLUTION


def estep__calc_r_NK(x_ND, log_pi_K, mu_KD, cov_KDD):
    """Responsibilities of every component for every example.

    Parameters
    ----------
    Same as :func:`calc_log_joint_NK`.

    Returns
    -------
    r_NK : ndarray of shape (N, K)
        Non-negative, every row sums to 1.
    """
    ### BEGIN SOLUTION
    log_joint_NK = calc_log_joint_NK(x_ND, log_pi_K, mu_KD, cov_KDD)
    return np.exp(log_joint_NK - logsumexp(log_joint_NK, axis=1, keepdims=True))
    ### END SOLUTION


def mstep__update_params(x_ND, r_NK, reg):
    """Maximum likelihood weights, means and ridge-regularised covariances given responsibilities.

    Parameters
    ----------
    x_ND : array-like of shape (N, D)
    r_NK : array-like of shape (N, K)
        Responsibilities; every component needs a positive total sum_n r_nk.
    reg : float >= 0
        Added to the diagonal of every covariance.

    Returns
    -------
    log_pi_K : ndarray of shape (K,)
    mu_KD : ndarray of shape (K, D)
    cov_KDD : ndarray of shape (K, D, D)
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    r_NK = np.asarray(r_NK, dtype=np.float64)
    N, D = x_ND.shape
    K = r_NK.shape[1]
    count_K = np.sum(r_NK, axis=0)
    log_pi_K = np.log(count_K / N)
    mu_KD = (r_NK.T @ x_ND) / count_K[:, None]
    cov_KDD = np.empty((K, D, D))
    for k in range(K):
        xc_ND = x_ND - mu_KD[k]
        cov_KDD[k] = (r_NK[:, k, None] * xc_ND).T @ xc_ND / count_K[k] + reg * np.eye(D)
    return log_pi_K, mu_KD, cov_KDD
    ### END SOLUTION


def fit_gmm(x_ND, K, reg, n_iter, rng, verbose=False):
    """EM from K distinct random rows as means, the data covariance (plus reg) and equal weights.

    Parameters
    ----------
    x_ND : array-like of shape (N, D), N >= K
    K : int >= 1
    reg : float > 0
    n_iter : int >= 0
        Number of E-step/M-step pairs.
    rng : numpy.random.Generator
        Picks the initial means.
    verbose : bool
        Print one line per iteration (iteration, mean log likelihood, seconds).

    Returns
    -------
    (log_pi_K, mu_KD, cov_KDD) : the fitted parameters
    history : list of float
        Mean training log likelihood per example before each iteration and after the last one
        (n_iter + 1 entries; EM never lets it decrease).

    Raises
    ------
    ValueError
        If K < 1, N < K, reg <= 0 or n_iter < 0.
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    N, D = x_ND.shape
    if K < 1 or N < K or not reg > 0 or n_iter < 0:
        raise ValueError(
            f"need 1 <= K <= N, reg > 0 and n_iter >= 0; got K={K}, N={N}, reg={reg}, n_iter={n_iter}"
        )
    log_pi_K = np.full(K, -np.log(K))
    mu_KD = x_ND[rng.choice(N, size=K, replace=False)]
    cov_KDD = np.repeat((np.cov(x_ND.T, bias=True) + reg * np.eye(D))[None], K, axis=0)
    history = []
    start = time.perf_counter()
    for it in range(n_iter + 1):
        history.append(float(np.mean(calc_log_lik_N(x_ND, log_pi_K, mu_KD, cov_KDD))))
        if verbose:
            print(
                f"GMM iteration {it:3d}  mean log lik {history[-1]:12.2f}  "
                f"{time.perf_counter() - start:6.1f} s",
                flush=True,
            )
        if it == n_iter:
            break
        r_NK = estep__calc_r_NK(x_ND, log_pi_K, mu_KD, cov_KDD)
        log_pi_K, mu_KD, cov_KDD = mstep__update_params(x_ND, r_NK, reg)
    return (log_pi_K, mu_KD, cov_KDD), history
    ### END SOLUTION
