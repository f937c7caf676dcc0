"""Gaussian building blocks shared by the three conditional models of unit 4.

Every model in this unit describes p(y | x) as a mixture whose pieces depend on the input x:

    p(y_n | x_n) = sum_k w_nk Normal(y_n | m_nk, L_k L_k^T),

with input-dependent weights w_nk (rows summing to one), means m_nk and a covariance per component
given by its lower Cholesky factor L_k. The functions below evaluate and sample such a mixture. They
are written with ``autograd.numpy`` so that autograd can differentiate through them (the
discriminative model needs that); called with ordinary arrays they behave like plain numpy.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> diff_NKD = np.array([[[0.0], [1.0]]])          # one point, two components, D = 1
>>> chol_KDD = np.array([[[1.0]], [[2.0]]])
>>> calc_log_pdf_NK(diff_NKD, chol_KDD)
array([[-0.9189, -1.7371]])
>>> log_w_NK = np.log(np.array([[0.5, 0.5]]))
>>> calc_mixture_log_lik_N(log_w_NK, diff_NKD, chol_KDD)
array([-1.2466])
"""

import autograd.numpy as np


def logsumexp_rows(a_NK):
    """log sum_k exp(a_NK[n, k]) for every row, shifted by the row maximum so nothing overflows.

    (scipy.special.logsumexp computes the same; this short version is much faster on the small
    arrays of this unit and autograd differentiates it as written.)
    """
    max_N1 = np.max(a_NK, axis=1, keepdims=True)
    return max_N1[:, 0] + np.log(np.sum(np.exp(a_NK - max_N1), axis=1))


def whiten_KND(diff_NKD, chol_KDD):
    """Residuals in each component's whitened coordinates: z_nk = L_k^{-1} diff_nk.

    Parameters
    ----------
    diff_NKD : array of shape (N, K, D)
        Residuals: diff_NKD[n, k] = value of example n minus the mean of component k for it.
    chol_KDD : array of shape (K, D, D)
        Lower Cholesky factor L_k of each component's covariance (positive diagonal).

    Returns
    -------
    z_KND : array of shape (K, N, D)
        z_KND[k, n] = L_k^{-1} diff_NKD[n, k], so that ||z_nk||^2 is the Mahalanobis distance.
    """
    ### BEGIN SOLUTION
    D = diff_NKD.shape[2]
    chol_inv_KDD = np.linalg.solve(chol_KDD, np.eye(D))  # one small solve per component
    return np.matmul(np.transpose(diff_NKD, (1, 0, 2)), np.swapaxes(chol_inv_KDD, 1, 2))
    ### END SOLUTION


def calc_log_pdf_NK(diff_NKD, chol_KDD):
    """Gaussian log densities of residuals, for every example and every component.

    Parameters
    ----------
    diff_NKD : array of shape (N, K, D)
        Residuals: diff_NKD[n, k] = value of example n minus the mean of component k for it.
    chol_KDD : array of shape (K, D, D)
        Lower Cholesky factor L_k of each component's covariance (positive diagonal).

    Returns
    -------
    log_pdf_NK : array of shape (N, K)
        log Normal(diff_NKD[n, k] | 0, L_k L_k^T).
    """
    ### BEGIN SOLUTION
    D = diff_NKD.shape[2]
    maha_NK = np.sum(whiten_KND(diff_NKD, chol_KDD) ** 2, axis=2).T
    log_det_K = 2.0 * np.sum(np.log(np.diagonal(chol_KDD, axis1=-1, axis2=-2)), axis=-1)
    return -0.5 * (maha_NK + log_det_K + D * np.log(2.0 * np.pi))
    ### END SOLUTION


def calc_mixture_log_lik_N(log_w_NK, diff_NKD, chol_KDD):
    """Per-example log likelihood of an input-dependent Gaussian mixture.

    Parameters
    ----------
    log_w_NK : array of shape (N, K)
        Log weights; each row's logsumexp is 0. A weight of zero is -inf.
    diff_NKD : array of shape (N, K, D)
        Residuals y_n - m_nk.
    chol_KDD : array of shape (K, D, D)
        Lower Cholesky factors of the component covariances.

    Returns
    -------
    log_lik_N : array of shape (N,)
        log sum_k w_nk Normal(y_n | m_nk, L_k L_k^T).
    """
    ### BEGIN SOLUTION
    return logsumexp_rows(log_w_NK + calc_log_pdf_NK(diff_NKD, chol_KDD))
    ### END SOLUTION


def sample_mixture(log_w_NK, mean_NKD, chol_KDD, n_samples, rng):
    """Draw n_samples values from each example's mixture.

    Parameters
    ----------
    log_w_NK : array of shape (N, K)
        Log weights of the mixture of each example (rows' logsumexp is 0).
    mean_NKD : array of shape (N, K, D)
        Mean of component k for example n.
    chol_KDD : array of shape (K, D, D)
        Lower Cholesky factors of the component covariances.
    n_samples : int
        Draws per example (S).
    rng : numpy.random.RandomState
        The only source of randomness.

    Returns
    -------
    y_NSD : np.ndarray of shape (N, S, D)
        y_NSD[n, s] is a draw from example n's mixture: a component k with probability w_nk, then
        Normal(mean_NKD[n, k], L_k L_k^T).
    """
    ### BEGIN SOLUTION
    N, K, D = mean_NKD.shape
    cdf_NK = np.cumsum(np.exp(log_w_NK), axis=1)
    u_NS = rng.uniform(size=(N, n_samples)) * cdf_NK[:, -1:]
    k_NS = np.minimum(np.sum(cdf_NK[:, np.newaxis, :] <= u_NS[:, :, np.newaxis], axis=2), K - 1)
    eps_NSD = rng.standard_normal(size=(N, n_samples, D))
    noise_NSD = np.einsum("nsij,nsj->nsi", chol_KDD[k_NS], eps_NSD)
    return mean_NKD[np.arange(N)[:, np.newaxis], k_NS] + noise_NSD
    ### END SOLUTION
