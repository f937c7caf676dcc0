"""Discriminative conditional GMM: the joint-GMM parameters of ConditionalGMMRegressor, trained to
maximize the conditional likelihood sum_n log p(y_n | x_n) itself rather than the joint one.

The optimizer works on one unconstrained vector: logits u_K with log pi = log softmax(u), the means
as they are, and for each component a real D x D matrix A_k with

    Sigma_k = A_k A_k^T + reg_covar * I,

which is a valid covariance for every A_k. The gradient comes from autograd; the start is an EM fit.
"""

import autograd
import autograd.numpy as np
from conditional_mixture import check_xy
from ConditionalGMMRegressor import ConditionalGMMRegressor, condition_joint_gmm
from gaussian_math import calc_mixture_log_lik_N, logsumexp_rows
from scipy.optimize import minimize

MIN_START_LOG_PI = -50.0  # an empty EM component starts the optimizer with weight e^-50


class DiscriminativeConditionalGMMRegressor(ConditionalGMMRegressor):
    """Joint GMM parameters fit by L-BFGS on the mean conditional log likelihood.

    Parameters
    ----------
    max_iter : int, default=100
        L-BFGS iterations.
    em_max_iter : int, default=100
        EM iterations of the ConditionalGMMRegressor fit that gives the start (``n_init`` and
        ``tol`` are that fit's too).
    Other parameters are those of ConditionalMixtureRegressor; fitted attributes are those of
    ConditionalGMMRegressor, plus ``history`` (the loss after each L-BFGS iteration).
    """

    def __init__(
        self,
        n_components=3,
        reg_covar=1e-2,
        max_iter=100,
        tol=1e-4,
        random_state=None,
        n_init=1,
        em_max_iter=100,
    ):
        super().__init__(n_components, reg_covar, max_iter, tol, random_state, n_init)
        self.em_max_iter = int(em_max_iter)

    def to_flat_array(self, log_pi_K, mu_KD, cov_KDD):
        """Pack parameters into one vector [u_K, mu_KD, A_KDD] (each flattened row-major).

        u_K = log_pi_K (with -inf raised to MIN_START_LOG_PI); A_k is the symmetric square root of
        Sigma_k - reg_covar * I (eigenvalues below zero taken as zero).

        Returns
        -------
        flat : np.ndarray of shape (K + K*D + K*D*D,)
        """
        ### BEGIN SOLUTION
        D = mu_KD.shape[1]
        eigval_KD, eigvec_KDD = np.linalg.eigh(cov_KDD - self.reg_covar * np.eye(D))
        root_KD = np.sqrt(np.maximum(eigval_KD, 0.0))
        A_KDD = np.matmul(eigvec_KDD * root_KD[:, np.newaxis, :], np.swapaxes(eigvec_KDD, 1, 2))
        u_K = np.maximum(log_pi_K, MIN_START_LOG_PI)
        return np.concatenate([u_K, mu_KD.ravel(), A_KDD.ravel()])
        ### END SOLUTION

    def to_common_parameters(self, flat):
        """Unpack a flat vector into (log_pi_K, mu_KD, cov_KDD); autograd-safe.

        Returns
        -------
        log_pi_K : array of shape (K,)
            log softmax(u_K).
        mu_KD : array of shape (K, D)
        cov_KDD : array of shape (K, D, D)
            A_k A_k^T + reg_covar * I.
        """
        ### BEGIN SOLUTION
        K = self.n_components
        D = int(round(np.sqrt(len(flat) / K + 0.25) - 0.5))
        u_K = flat[:K]
        mu_KD = np.reshape(flat[K : K + K * D], (K, D))
        A_KDD = np.reshape(flat[K + K * D :], (K, D, D))
        cov_KDD = np.matmul(A_KDD, np.swapaxes(A_KDD, 1, 2)) + self.reg_covar * np.eye(D)
        return u_K - logsumexp_rows(u_K[np.newaxis, :])[0], mu_KD, cov_KDD
        ### END SOLUTION

    def calc_loss(self, flat, x_NI, y_NO):
        """Negative mean conditional log likelihood -(1/N) sum_n log p(y_n | x_n) at flat."""
        ### BEGIN SOLUTION
        log_pi_K, mu_KD, cov_KDD = self.to_common_parameters(flat)
        log_w_NK, mean_NKO, chol_KOO = condition_joint_gmm(x_NI, log_pi_K, mu_KD, cov_KDD)
        diff_NKO = y_NO[:, np.newaxis, :] - mean_NKO
        return -np.mean(calc_mixture_log_lik_N(log_w_NK, diff_NKO, chol_KOO))
        ### END SOLUTION

    def fit(self, X, y):
        """Start from an EM fit of the joint GMM, then run L-BFGS on calc_loss.

        Sets log_pi_K, mu_KD, cov_KDD, n_inputs_ and history.
        """
        x_NI, y_NO = check_xy(X, y)
        ### BEGIN SOLUTION
        start = ConditionalGMMRegressor(
            self.n_components, self.reg_covar, self.em_max_iter, self.tol, self.random_state, self.n_init
        ).fit(x_NI, y_NO)
        flat = self.to_flat_array(start.log_pi_K, start.mu_KD, start.cov_KDD)
        self.history = [float(self.calc_loss(flat, x_NI, y_NO))]

        def record(intermediate_result):
            self.history.append(float(intermediate_result.fun))

        result = minimize(
            autograd.value_and_grad(self.calc_loss),
            flat,
            args=(x_NI, y_NO),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter},
            callback=record,
        )
        self.log_pi_K, self.mu_KD, self.cov_KDD = self.to_common_parameters(result.x)
        self.n_inputs_ = x_NI.shape[1]
        return self
        ### END SOLUTION
