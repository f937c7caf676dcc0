"""Probabilistic PCA (Tipping & Bishop, 1999) in closed form.

The model: z ~ Normal(0, I_M), x | z ~ Normal(W z + mu, sigma2 I_D), so that marginally
x ~ Normal(mu, C) with C = W W^T + sigma2 I_D. The maximum likelihood fit from N examples, with
S the sample covariance (divided by N) and lambda_1 >= ... >= lambda_D its eigenvalues with
eigenvectors U:

    mu = sample mean,   sigma2 = mean of the D - M smallest eigenvalues,
    W = U_M (Lambda_M - sigma2 I)^(1/2)      (up to a rotation of the latent space).

With the M x M matrix B = W^T W + sigma2 I the D x D matrix C never needs inverting:
C^-1 = (I - W B^-1 W^T) / sigma2 and log det C = (D - M) log sigma2 + log det B; the posterior
is z | x ~ Normal(B^-1 W^T (x - mu), sigma2 B^-1).

Examples
--------
>>> import numpy as np
>>> rng = np.random.RandomState(0)
>>> x_ND = rng.randn(500, 3) * [3.0, 1.0, 1.0]
>>> mu_D, W_DM, sigma2 = fit_ppca(x_ND, 1)
>>> W_DM.shape, round(float(sigma2), 2)
((3, 1), 1.01)
"""

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigh, solve_triangular


def fit_ppca(x_ND, M):
    """Maximum likelihood PPCA parameters.

    Parameters
    ----------
    x_ND : array-like of shape (N, D)
        Training data, N >= 2.
    M : int, 1 <= M < D
        Latent dimension.

    Returns
    -------
    mu_D : ndarray of shape (D,)
    W_DM : ndarray of shape (D, M)
        Columns are the leading eigenvectors of the sample covariance scaled by
        sqrt(lambda_m - sigma2); any sign (or rotation) of them is an equally good answer.
    sigma2 : float
        Noise variance, > 0 unless the data lie in an M-dimensional subspace.

    Raises
    ------
    ValueError
        If x_ND is not 2-d with N >= 2, or M is not in 1 .. D - 1.
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    if x_ND.ndim != 2 or x_ND.shape[0] < 2:
        raise ValueError(f"x_ND must have shape (N, D) with N >= 2, got {x_ND.shape}")
    N, D = x_ND.shape
    if not 1 <= M < D:
        raise ValueError(f"M must be in 1 .. D - 1 = {D - 1}, got {M}")
    mu_D = np.mean(x_ND, axis=0)
    xc_ND = x_ND - mu_D
    S_DD = xc_ND.T @ xc_ND / N
    lam_D, U_DD = eigh(S_DD)
    lam_D, U_DD = lam_D[::-1], U_DD[:, ::-1]  # largest first
    sigma2 = float(np.mean(lam_D[M:]))
    W_DM = U_DD[:, :M] * np.sqrt(np.maximum(lam_D[:M] - sigma2, 0.0))
    return mu_D, W_DM, sigma2
    ### END SOLUTION


def ppca_log_lik_N(x_ND, mu_D, W_DM, sigma2):
    """Log density of every row under the PPCA marginal Normal(mu, W W^T + sigma2 I).

    Parameters
    ----------
    x_ND : array-like of shape (N, D)
    mu_D : array-like of shape (D,)
    W_DM : array-like of shape (D, M)
    sigma2 : float > 0

    Returns
    -------
    log_lik_N : ndarray of shape (N,)
        log Normal(x_n | mu, W W^T + sigma2 I) in nats (a density: it depends on the pixel scale).
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    W_DM = np.asarray(W_DM, dtype=np.float64)
    D, M = W_DM.shape
    L_MM = np.linalg.cholesky(W_DM.T @ W_DM + sigma2 * np.eye(M))
    xc_ND = x_ND - mu_D
    # x^T C^-1 x = (|x|^2 - |L^-1 W^T x|^2) / sigma2
    a_MN = solve_triangular(L_MM, W_DM.T @ xc_ND.T, lower=True)
    maha_N = (np.sum(xc_ND**2, axis=1) - np.sum(a_MN**2, axis=0)) / sigma2
    log_det = (D - M) * np.log(sigma2) + 2.0 * np.sum(np.log(np.diag(L_MM)))
    return -0.5 * (D * np.log(2 * np.pi) + log_det + maha_N)
    ### END SOLUTION


def ppca_posterior_mean(x_ND, mu_D, W_DM, sigma2):
    """Posterior mean of the latent code of every row.

    Parameters
    ----------
    x_ND : array-like of shape (N, D)
    mu_D : array-like of shape (D,)
    W_DM : array-like of shape (D, M)
    sigma2 : float > 0

    Returns
    -------
    z_NM : ndarray of shape (N, M)
        E[z | x_n] = (W^T W + sigma2 I)^-1 W^T (x_n - mu).
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    W_DM = np.asarray(W_DM, dtype=np.float64)
    M = W_DM.shape[1]
    B_MM = cho_factor(W_DM.T @ W_DM + sigma2 * np.eye(M))
    return cho_solve(B_MM, W_DM.T @ (x_ND - mu_D).T).T
    ### END SOLUTION
