"""The "naive" mixture: one Gaussian per digit class, weighted by the class frequencies.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=3, suppress=True)
>>> x_ND = np.array([[0.0], [2.0], [10.0], [14.0]])
>>> log_pi_K, mu_KD, cov_KDD = fit_class_conditional(x_ND, np.array([0, 0, 1, 1]), 2)
>>> np.exp(log_pi_K), mu_KD[:, 0], cov_KDD[:, 0, 0]
(array([0.5, 0.5]), array([ 1., 12.]), array([2., 8.]))
"""

import numpy as np
from gaussian_mle import draw_gaussian_samples, estimate_cov_DD, estimate_mean_D


def fit_class_conditional(x_ND, y_N, K):
    """One Gaussian per class: weights n_k / N, class means, unbiased class covariances.

    Parameters
    ----------
    x_ND : ndarray of shape (N, D)
    y_N : ndarray of shape (N,)
        Integer class (or cluster) labels in 0, ..., K - 1.
    K : int
        Number of classes.

    Returns
    -------
    log_pi_K : ndarray of shape (K,)
        log(n_k / N). A class without examples gets -inf (weight 0).
    mu_KD : ndarray of shape (K, D)
        Mean of each class's examples; zeros for a class without examples.
    cov_KDD : ndarray of shape (K, D, D)
        Unbiased covariance (1 / (n_k - 1)) of each class's examples; zeros for a class with fewer
        than two examples.

    Raises
    ------
    ValueError
        If y_N does not hold one label in 0, ..., K - 1 per row of x_ND.
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    y_N = np.asarray(y_N)
    N, D = x_ND.shape
    if y_N.shape != (N,) or (N and (y_N.min() < 0 or y_N.max() >= K)):
        raise ValueError(f"y_N must hold {N} labels in 0..{K - 1}, got shape {y_N.shape}")
    count_K = np.bincount(y_N, minlength=K)
    with np.errstate(divide="ignore"):
        log_pi_K = np.log(count_K) - np.log(N)
    mu_KD = np.zeros((K, D))
    cov_KDD = np.zeros((K, D, D))
    for k in range(K):
        if count_K[k] > 0:
            mu_KD[k] = estimate_mean_D(x_ND[y_N == k])
            cov_KDD[k] = estimate_cov_DD(x_ND[y_N == k])
    return log_pi_K, mu_KD, cov_KDD
    ### END SOLUTION


def draw_mixture_samples(log_pi_K, mu_KD, cov_KDD, n_samples, rng):
    """Draw n_samples points from a Gaussian mixture: first a component, then a point from it.

    Parameters
    ----------
    log_pi_K : ndarray of shape (K,)
        Log mixture weights (their exponentials sum to 1; -inf for a weight of 0).
    mu_KD : ndarray of shape (K, D)
    cov_KDD : ndarray of shape (K, D, D)
        Symmetric positive semi-definite covariances.
    n_samples : int
        Number of samples S >= 0.
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    x_SD : ndarray of shape (S, D)
        The samples.
    z_S : ndarray of shape (S,), int
        The component each sample was drawn from.

    Raises
    ------
    ValueError
        If rng is not a numpy.random.Generator or n_samples is negative.
    """
    ### BEGIN SOLUTION
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    pi_K = np.exp(np.asarray(log_pi_K, dtype=np.float64))
    K, D = np.shape(mu_KD)
    z_S = rng.choice(K, size=n_samples, p=pi_K / pi_K.sum())
    x_SD = np.empty((n_samples, D))
    for k in range(K):
        x_SD[z_S == k] = draw_gaussian_samples(mu_KD[k], cov_KDD[k], np.sum(z_S == k), rng)
    return x_SD, z_S
    ### END SOLUTION
