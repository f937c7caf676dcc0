"""Log likelihood of data under a diagonal-covariance Gaussian mixture, in plain numpy.

The mixture has K components.  Component k has weight pi_k = exp(log_pi_K[k]), mean mu_KD[k] and
per-feature standard deviations stddev_KD[k].  For one example x (a row of x_ND),

    log p(x) = logsumexp_k [ log pi_k + sum_d log Normal(x_d | mu_kd, stddev_kd**2) ].

Everything stays in log space: densities of 400-pixel images are far below the smallest positive
float, but their logarithms are ordinary numbers.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> x_ND = np.array([[0.0], [1.0]])
>>> log_pi_K = np.log([0.5, 0.5])
>>> mu_KD = np.array([[0.0], [1.0]])
>>> stddev_KD = np.ones((2, 1))
>>> calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD)
array([[-1.6121, -2.1121],
       [-2.1121, -1.6121]])
>>> round(calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD), 4)
2.276
>>> calc_neg_log_lik(np.zeros((0, 1)), log_pi_K, mu_KD, stddev_KD) == 0.0
True
"""

import numpy as np
from scipy.special import logsumexp


def calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD, x_sq_ND=None):
    """Log of weight times density, for every example and every component.

    Parameters
    ----------
    x_ND : array-like, shape (N, D)
        Data, one example per row (N = 0 is allowed).
    log_pi_K : array-like, shape (K,)
        Log mixture weights (logsumexp is 0). A component with weight zero has -inf.
    mu_KD : array-like, shape (K, D)
        Means.
    stddev_KD : array-like, shape (K, D)
        Standard deviations, all positive.
    x_sq_ND : array-like, shape (N, D), optional
        ``np.square(x_ND)``, when the caller has it already (EM's fit squares its training data
        once, not at every iteration).  Without it, square x_ND here.

    Returns
    -------
    log_joint_NK : np.ndarray, shape (N, K)
        log_joint_NK[n, k] = log pi_k + sum_d log Normal(x_nd | mu_kd, stddev_kd**2);
        a column of -inf for a component with weight zero.
    """
    ### BEGIN SOLUTION
    x_ND = np.asarray(x_ND, dtype=np.float64)
    mu_KD = np.asarray(mu_KD, dtype=np.float64)
    stddev_KD = np.asarray(stddev_KD, dtype=np.float64)
    D = x_ND.shape[1]
    if x_sq_ND is None:
        x_sq_ND = np.square(x_ND)
    prec_KD = 1.0 / np.square(stddev_KD)
    # sum_d (x_nd - mu_kd)^2 / stddev_kd^2, expanded into three terms so that the work over the
    # N x K pairs is two matrix products
    quad_NK = (
        x_sq_ND @ prec_KD.T - 2.0 * (x_ND @ (mu_KD * prec_KD).T) + np.sum(np.square(mu_KD) * prec_KD, axis=1)
    )
    log_norm_K = -np.sum(np.log(stddev_KD), axis=1) - 0.5 * D * np.log(2.0 * np.pi)
    return np.asarray(log_pi_K, dtype=np.float64) + log_norm_K - 0.5 * quad_NK
    ### END SOLUTION


def calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Negative log likelihood of a data set, summed over its examples.

    Parameters
    ----------
    x_ND : array-like, shape (N, D)
        Data, one example per row.
    log_pi_K : array-like, shape (K,)
        Log mixture weights (logsumexp is 0).
    mu_KD : array-like, shape (K, D)
        Means.
    stddev_KD : array-like, shape (K, D)
        Standard deviations, all positive.

    Returns
    -------
    neg_log_lik : float
        -sum_n log p(x_n); 0.0 when there are no examples (N = 0).
    """
    ### BEGIN SOLUTION
    log_joint_NK = calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD)
    return float(-np.sum(logsumexp(log_joint_NK, axis=1)))
    ### END SOLUTION
