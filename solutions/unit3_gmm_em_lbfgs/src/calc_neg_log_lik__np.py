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
>>> calc_neg_log_lik(np.zeros((0, 1)), log_pi_K, mu_KD, stddev_KD)
0.0
"""

import numpy as np
from prepared_data import PreparedData
from scipy.special import logsumexp


def calc_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Log of weight times density, for every example and every component.

    Args
    ----
    x_ND : array-like, shape (N, D), or a PreparedData made from it
        Data, one example per row.
    log_pi_K : array-like, shape (K,)
        Log mixture weights (logsumexp is 0). A component with weight zero has -inf.
    mu_KD : array-like, shape (K, D)
        Means.
    stddev_KD : array-like, shape (K, D)
        Standard deviations, all positive.

    Returns
    -------
    log_joint_NK : np.ndarray, shape (N, K)
        log_joint_NK[n, k] = log pi_k + sum_d log Normal(x_nd | mu_kd, stddev_kd**2).

    Notes
    -----
    Computed with two matrix products on centred data (see prepared_data.py). Where the estimated
    rounding error of that expansion is not tiny next to the result (very small standard
    deviations, e.g. 1e-30), those entries are recomputed directly from (x - mu) / stddev, so tiny
    standard deviations give the exact finite answer rather than garbage.
    """
    ### BEGIN SOLUTION
    data = PreparedData.of(x_ND)
    N, D = data.shape
    log_pi_K = np.asarray(log_pi_K, dtype=np.float64)
    mu_KD = np.asarray(mu_KD, dtype=np.float64)
    stddev_KD = np.asarray(stddev_KD, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        prec_KD = 1.0 / np.square(stddev_KD)
        muc_KD = mu_KD - data.center_D
        precmu_KD = prec_KD * muc_KD
        # log N(x_n | k) = const_k - 0.5 * sum_d p (xc - muc)^2, where the square expands into
        #   0.5 * sum_d p xc^2  -  sum_d p muc xc  +  0.5 * sum_d p muc^2
        sq_NK = data.xcsq_ND @ prec_KD.T
        log_joint_NK = data.xc_ND @ precmu_KD.T  # the middle term; the others are added in place
        log_joint_NK -= 0.5 * sq_NK
        musq_K = np.sum(precmu_KD * muc_KD, axis=1)
        const_K = log_pi_K - np.sum(np.log(stddev_KD), axis=1) - 0.5 * D * np.log(2 * np.pi)
        log_joint_NK += const_K - 0.5 * musq_K
        # Accuracy guard. The expansion's rounding error is about 4 sqrt(D) eps (sq + musq) (sums of
        # D terms; errors grow like sqrt(D); 4 is a safety margin). We want it below
        # 1e-10 * (|log_joint| + D), one nat per feature being the floor. That can only fail where
        # sq + musq > ratio * D, a cheap first screen (written so that NaN counts as suspect).
        ratio = 1e-10 / (4.0 * np.sqrt(D) * np.finfo(np.float64).eps)
        suspect_NK = ~(sq_NK <= ratio * D - musq_K)
        if suspect_NK.any():
            redo_NK = suspect_NK & ~(sq_NK + musq_K <= ratio * (np.abs(log_joint_NK) + D))
            for k in np.flatnonzero(redo_NK.any(axis=0)):
                rows = np.flatnonzero(redo_NK[:, k])
                z_RD = (data.x_ND[rows] - mu_KD[k]) / stddev_KD[k]
                log_joint_NK[rows, k] = const_K[k] - 0.5 * np.sum(np.square(z_RD), axis=1)
        return log_joint_NK
    ### END SOLUTION


def calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Negative log likelihood of a data set, summed over its examples.

    Args
    ----
    x_ND : array-like, shape (N, D), or a PreparedData made from it
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
    data = PreparedData.of(x_ND)
    if data.shape[0] == 0:
        return 0.0
    log_joint_NK = calc_log_joint_NK(data, log_pi_K, mu_KD, stddev_KD)
    return float(-np.sum(logsumexp(log_joint_NK, axis=1)))
    ### END SOLUTION
