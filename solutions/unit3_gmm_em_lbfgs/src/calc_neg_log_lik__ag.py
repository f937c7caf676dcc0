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
>>> grad(calc_neg_log_lik, 2)(x_ND, log_pi_K, np.array([[0.0], [1.0]]), stddev_KD).round(4)
array([[-0.3775],
       [ 0.3775]])
"""

import autograd.numpy as ag_np
import numpy as np
from autograd.tracer import getval
from prepared_data import PreparedData


def calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Log of weight times density for every example and component (autograd-safe).

    Args
    ----
    x_ND : array-like, shape (N, D), or a PreparedData made from it
        Data, one example per row (constant: not differentiated).
    log_pi_K : array-like, shape (K,)
        Log mixture weights.
    mu_KD : array-like, shape (K, D)
        Means.
    stddev_KD : array-like, shape (K, D)
        Standard deviations, all positive.

    Returns
    -------
    log_joint_NK : array, shape (N, K)
        log pi_k + sum_d log Normal(x_nd | mu_kd, stddev_kd**2).

    Notes
    -----
    Same expansion and same accuracy guard as calc_neg_log_lik__np. Entries whose rounding error
    could matter are replaced (with ``where``, not by assignment) by the direct (N, K, D)
    computation, which is only built when some entry needs it. Values stay exact for standard
    deviations down to about 1e-300; gradients are finite for standard deviations above about 1e-100.
    """
    ### BEGIN SOLUTION
    data = PreparedData.of(x_ND)
    N, D = data.shape
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        prec_KD = 1.0 / ag_np.square(stddev_KD)
        muc_KD = mu_KD - data.center_D
        precmu_KD = prec_KD * muc_KD
        # matmul rather than dot: autograd differentiates matmul with plain matrix products, while
        # its rule for dot goes through tensordot, which copies the data every time
        # one product gives G = -0.5 sq + cross (see calc_neg_log_lik__np)
        weight_K2D = ag_np.concatenate([-0.5 * prec_KD, precmu_KD], axis=1)
        G_NK = ag_np.matmul(data.xcsq_xc_N2D, ag_np.transpose(weight_K2D))
        musq_K = ag_np.sum(precmu_KD * muc_KD, axis=1)
        half_quad_NK = 0.5 * musq_K - G_NK
        const_K = log_pi_K - ag_np.sum(ag_np.log(stddev_KD), axis=1) - 0.5 * D * np.log(2 * np.pi)
        # the accuracy guard of calc_neg_log_lik__np: redo entries whose estimated rounding error,
        # 4 sqrt(D) eps (sq + musq) <= 4 sqrt(D) eps (5 musq - 4 G), is not below
        # 1e-10 * (|log_joint| + D)
        ratio = 1e-10 / (4.0 * np.sqrt(D) * np.finfo(np.float64).eps)
        # (comparisons give plain boolean arrays, even under autograd)
        redo_NK = ~(5.0 * musq_K - 4.0 * G_NK <= ratio * (ag_np.abs(const_K - half_quad_NK) + D))
        if np.any(redo_NK):
            z_NKD = (data.x_ND[:, np.newaxis, :] - mu_KD[np.newaxis, :, :]) / stddev_KD[np.newaxis, :, :]
            direct_NK = 0.5 * ag_np.sum(ag_np.square(z_NKD), axis=2)
            half_quad_NK = ag_np.where(redo_NK, direct_NK, half_quad_NK)
        return const_K - half_quad_NK
    ### END SOLUTION


def calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Negative log likelihood summed over examples (autograd-safe).

    Args
    ----
    x_ND : array-like, shape (N, D), or a PreparedData made from it
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
    data = PreparedData.of(x_ND)
    if data.shape[0] == 0:
        return 0.0
    log_joint_NK = calc_log_joint_NK(data, log_pi_K, mu_KD, stddev_KD)
    # log-sum-exp over the components, shifting each row by its largest value.  The shift is taken
    # from the plain values (getval), so autograd treats it as a constant: the result and its
    # gradient are the same for any constant shift, and this runs faster than scipy's logsumexp.
    top_N1 = np.max(getval(log_joint_NK), axis=1, keepdims=True)
    top_N1[~np.isfinite(top_N1)] = 0.0  # a row without any finite entry stays -inf
    log_lik_N = ag_np.log(ag_np.sum(ag_np.exp(log_joint_NK - top_N1), axis=1)) + top_N1[:, 0]
    return -ag_np.sum(log_lik_N)
    ### END SOLUTION
