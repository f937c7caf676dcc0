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
        (Stored component by component, i.e. it is the transpose of a C-ordered (K, N) array; code
        that works per component, like the batched fit, uses that layout directly.)

    Notes
    -----
    Computed with one matrix product on centred data (see prepared_data.py). Where the estimated
    rounding error of that expansion is not tiny next to the result (very small standard
    deviations, e.g. 1e-30), those entries are recomputed directly from (x - mu) / stddev, so tiny
    standard deviations give the exact finite answer rather than garbage.
    """
    ### BEGIN SOLUTION
    data = PreparedData.of(x_ND)
    N, D = data.shape
    K = np.shape(stddev_KD)[0]
    log_pi_K = np.asarray(log_pi_K, dtype=np.float64)
    mu_KD = np.asarray(mu_KD, dtype=np.float64)
    stddev_KD = np.asarray(stddev_KD, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        prec_KD = 1.0 / np.square(stddev_KD)
        muc_KD = mu_KD - data.center_D
        # log N(x_n | k) = const_k - 0.5 * Q_nk with the Mahalanobis term
        #   Q_nk = sum_d p (xc - muc)^2 = sq_nk - 2 cross_nk + musq_k,
        # sq = sum_d p xc^2, cross = sum_d p muc xc, musq = sum_d p muc^2.  So
        #   log_joint_nk = -0.5 sq_nk + cross_nk + offset_k,   offset_k = const_k - 0.5 musq_k,
        # which is ONE product of the features [xc^2, xc, 1] with the rows [-0.5 p, p muc, offset].
        weight_KF = np.empty((K, 2 * D + 1))
        np.multiply(prec_KD, -0.5, out=weight_KF[:, :D])
        np.multiply(prec_KD, muc_KD, out=weight_KF[:, D:2 * D])
        musq_K = np.sum(weight_KF[:, D:2 * D] * muc_KD, axis=1)
        const_K = log_pi_K - np.sum(np.log(stddev_KD), axis=1) - 0.5 * D * np.log(2 * np.pi)
        offset_K = const_K - 0.5 * musq_K
        dead_K = offset_K == -np.inf  # weight zero: the whole row is -inf (set after the product)
        weight_KF[:, 2 * D] = np.where(dead_K, 0.0, offset_K)
        log_joint_KN = weight_KF @ data.features_NF.T
        log_joint_KN[dead_K] = -np.inf
        # Accuracy guard. The expansion's rounding error is about 4 sqrt(D) eps (sq + musq) (sums of
        # D terms; errors grow like sqrt(D); 4 is a safety margin). We want it below
        # 1e-10 * (|log_joint| + D), one nat per feature being the floor.  sq itself is not
        # computed, but Cauchy-Schwarz gives sqrt(sq) <= sqrt(musq) + sqrt(Q), so
        #   sq + musq <= 3 musq + 2 Q = 5 musq - 4 (log_joint - offset).
        # Writing L = log_joint, the test  5 musq - 4 (L - offset) <= ratio (|L| + D)  holds exactly
        # when  L >= low_k  or  L <= high_k  (the cases L >= 0 and L < 0 of |L|), so a component
        # whose values all pass needs no further look.
        ratio = 1e-10 / (4.0 * np.sqrt(D) * np.finfo(np.float64).eps)
        excess_K = 5.0 * musq_K + 4.0 * offset_K
        low_K = (excess_K - ratio * D) / (ratio + 4.0)
        high_K = (ratio * D - excess_K) / (ratio - 4.0)
        # Every finite value passes when low_k <= high_k (the usual case); otherwise, or when a
        # component has a NaN or infinite value somewhere (its sum is then not finite), look at
        # its values one by one.
        fine_K = (low_K <= high_K) & np.isfinite(np.sum(log_joint_KN, axis=1))
        if not fine_K.all():
            for k in np.flatnonzero(~fine_K):
                row_N = log_joint_KN[k]
                redo = np.flatnonzero(~((row_N >= low_K[k]) | (row_N <= high_K[k])))
                z_RD = (data.x_ND[redo] - mu_KD[k]) / stddev_KD[k]
                row_N[redo] = const_K[k] - 0.5 * np.sum(np.square(z_RD), axis=1)
        return log_joint_KN.T
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
