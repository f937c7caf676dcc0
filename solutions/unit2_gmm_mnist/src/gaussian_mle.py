"""One Gaussian for a whole data set: maximum-likelihood mean, unbiased covariance, and sampling.

The sampler takes an explicit ``numpy.random.Generator``, so a run is repeatable from its seed and
never touches NumPy's global random state.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=3, suppress=True)
>>> x_ND = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
>>> estimate_mean_D(x_ND)
array([2., 2.])
>>> estimate_cov_DD(x_ND)
array([[4., 3.],
       [3., 3.]])
>>> draw_gaussian_samples(np.zeros(2), np.eye(2), 4, np.random.default_rng(0)).shape
(4, 2)
"""

import numpy as np


def estimate_mean_D(x_ND):
    """Maximum-likelihood mean of the rows of x_ND.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
        N examples with D features, N >= 1.

    Returns
    -------
    mu_D : ndarray of shape (D,)
        (1 / N) sum_n x_n.

    Raises
    ------
    ValueError
        If x_ND is not two-dimensional or has no rows.
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    if x_ND.ndim != 2 or x_ND.shape[0] == 0:
        raise ValueError(f"x_ND must have shape (N, D) with N >= 1, got shape {x_ND.shape}")
    return np.mean(x_ND, axis=0)
    ### END SOLUTION


def estimate_cov_DD(x_ND):
    """Unbiased sample covariance of the rows of x_ND.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
        N examples with D features, N >= 1.

    Returns
    -------
    cov_DD : ndarray of shape (D, D)
        (1 / (N - 1)) sum_n (x_n - mu)(x_n - mu)^T with mu the mean of the rows. With a single
        example (N = 1) every entry is 0.

    Raises
    ------
    ValueError
        If x_ND is not two-dimensional or has no rows.
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    if x_ND.ndim != 2 or x_ND.shape[0] == 0:
        raise ValueError(f"x_ND must have shape (N, D) with N >= 1, got shape {x_ND.shape}")
    N = x_ND.shape[0]
    diff_ND = x_ND - np.mean(x_ND, axis=0)
    return diff_ND.T @ diff_ND / max(N - 1, 1)
    ### END SOLUTION


def draw_gaussian_samples(mu_D, cov_DD, n_samples, rng):
    """Draw n_samples points from N(mu_D, cov_DD).

    The covariance may be singular (positive semi-definite), as the covariance of images with
    pixels that never change is: along a direction of zero variance every sample equals the mean.

    Parameters
    ----------
    mu_D : ndarray of shape (D,)
    cov_DD : ndarray of shape (D, D)
        Symmetric positive semi-definite.
    n_samples : int
        Number of samples S >= 0.
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    x_SD : ndarray of shape (S, D)

    Raises
    ------
    ValueError
        If rng is not a numpy.random.Generator, n_samples is negative, or the shapes disagree.
    """
    ### BEGIN SOLUTION
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    mu_D = np.asarray(mu_D, dtype=np.float64)
    cov_DD = np.asarray(cov_DD, dtype=np.float64)
    D = mu_D.shape[0]
    if cov_DD.shape != (D, D):
        raise ValueError(f"cov_DD must have shape ({D}, {D}) to match mu_D, got {cov_DD.shape}")
    # cov = U diag(lam) U^T = A A^T with A = U diag(sqrt(lam)); rounding can make tiny
    # eigenvalues of a singular covariance slightly negative, so they are raised to 0.
    lam_D, U_DD = np.linalg.eigh(cov_DD)
    A_DD = U_DD * np.sqrt(np.maximum(lam_D, 0.0))
    z_SD = rng.standard_normal((n_samples, D))
    return mu_D + z_SD @ A_DD.T
    ### END SOLUTION
