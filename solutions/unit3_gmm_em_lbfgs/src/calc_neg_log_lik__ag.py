"""Log likelihood of a diagonal Gaussian mixture, written so that autograd can differentiate it.

Same quantities and same values as calc_neg_log_lik__np, but every operation on the parameters uses
``autograd.numpy`` and nothing is assigned in place (autograd cannot trace ``a[i] = b``), so
``autograd.grad`` works with respect to log_pi_K, mu_KD and stddev_KD.  The data are constants:
gradients with respect to x_ND are not supported.

Examples
--------
>>> import numpy as np
>>> from autograd import grad
>>> x_ND = np.array([[0.0], [1.0]])
>>> log_pi_K = np.log([0.5, 0.5])
>>> stddev_KD = np.ones((2, 1))
>>> round(float(calc_neg_log_lik(x_ND, log_pi_K, np.array([[0.0], [1.0]]), stddev_KD)), 4)
2.276
>>> # each mean is pulled towards the example it only partly explains
>>> grad(calc_neg_log_lik, 2)(x_ND, log_pi_K, np.array([[0.0], [1.0]]), stddev_KD).round(4).tolist()
[[-0.3775], [0.3775]]
"""

import autograd.numpy as ag_np
from autograd.scipy.special import logsumexp


def calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Log of weight times density for every example and component (autograd-safe).

    Parameters
    ----------
    x_ND : array-like, shape (N, D)
        Data, one example per row (constant: not differentiated).
    log_pi_K : array-like, shape (K,)
        Log mixture weights; -inf for a component with weight zero.
    mu_KD : array-like, shape (K, D)
        Means.
    stddev_KD : array-like, shape (K, D)
        Standard deviations, all positive.

    Returns
    -------
    log_joint_NK : array, shape (N, K)
        log pi_k + sum_d log Normal(x_nd | mu_kd, stddev_kd**2).
    """
    ### BEGIN SOLUTION
    x_ND = ag_np.asarray(x_ND, dtype=ag_np.float64)
    D = x_ND.shape[1]
    prec_KD = 1.0 / ag_np.square(stddev_KD)
    # the same two matrix products as in calc_neg_log_lik__np, written with autograd.numpy
    quad_NK = (
        ag_np.dot(ag_np.square(x_ND), ag_np.transpose(prec_KD))
        - 2.0 * ag_np.dot(x_ND, ag_np.transpose(mu_KD * prec_KD))
        + ag_np.sum(ag_np.square(mu_KD) * prec_KD, axis=1)
    )
    log_norm_K = -ag_np.sum(ag_np.log(stddev_KD), axis=1) - 0.5 * D * ag_np.log(2.0 * ag_np.pi)
    return log_pi_K + log_norm_K - 0.5 * quad_NK
    ### END SOLUTION


def calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Negative log likelihood summed over examples (autograd-safe).

    Parameters
    ----------
    x_ND : array-like, shape (N, D)
        Data, one example per row.
    log_pi_K : array-like, shape (K,)
        Log mixture weights.
    mu_KD : array-like, shape (K, D)
        Means.
    stddev_KD : array-like, shape (K, D)
        Standard deviations, all positive.

    Returns
    -------
    neg_log_lik : float (or an autograd box while being differentiated)
        -sum_n log p(x_n); 0.0 when N = 0.
    """
    ### BEGIN SOLUTION
    log_joint_NK = calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD)
    return -ag_np.sum(logsumexp(log_joint_NK, axis=1))
    ### END SOLUTION
