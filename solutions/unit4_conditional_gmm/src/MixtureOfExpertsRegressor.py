"""Mixture of experts: a softmax gate linear in x chooses among K linear-Gaussian experts,

    p(y | x) = sum_k g_k(x) Normal(y | W_k^T x + b_k, Sigma_k),   g(x) = softmax(V^T x + c).

EM alternates responsibilities r_nk = p(k | x_n, y_n) with two weighted fits: each expert by
weighted least squares (weights r_nk), the gate by a weighted multinomial logistic regression whose
targets are the responsibilities, minimized with L-BFGS and an autograd gradient.
"""

import autograd
import autograd.numpy as np
from conditional_mixture import ConditionalMixtureRegressor
from gaussian_math import calc_log_pdf_NK, logsumexp_rows
from scipy.optimize import minimize


def calc_log_gate_NK(x_NI, gate_coef_IK, gate_intercept_K):
    """log g_k(x_n) = log softmax_k(x_n @ V + c).

    Parameters
    ----------
    x_NI : array of shape (N, I)
    gate_coef_IK : array of shape (I, K)
    gate_intercept_K : array of shape (K,)

    Returns
    -------
    log_gate_NK : array of shape (N, K)
        Each row's logsumexp is 0.
    """
    ### BEGIN SOLUTION
    logits_NK = np.dot(x_NI, gate_coef_IK) + gate_intercept_K
    return logits_NK - logsumexp_rows(logits_NK)[:, np.newaxis]
    ### END SOLUTION


class MixtureOfExpertsRegressor(ConditionalMixtureRegressor):
    """Mixture of linear-Gaussian experts with a softmax gate, fit by EM.

    Parameters
    ----------
    gate_penalty : float, default=1e-3
        Strength alpha of the penalty (alpha / 2) ||V||^2 on the gate's coefficients (not its
        intercepts), which keeps the gate's fit well posed.
    gate_max_iter : int, default=100
        L-BFGS iterations per gate fit.
    Other parameters are those of ConditionalMixtureRegressor.

    Fitted attributes: ``gate_coef_IK`` (I, K), ``gate_intercept_K`` (K,), ``coef_KIO`` (K, I, O),
    ``intercept_KO`` (K, O), ``cov_KOO`` (K, O, O), ``n_inputs_`` = I.
    """

    def __init__(
        self,
        n_components=3,
        reg_covar=1e-2,
        max_iter=100,
        tol=1e-4,
        random_state=None,
        n_init=1,
        gate_penalty=1e-3,
        gate_max_iter=100,
    ):
        super().__init__(n_components, reg_covar, max_iter, tol, random_state, n_init)
        self.gate_penalty = float(gate_penalty)
        self.gate_max_iter = int(gate_max_iter)

    def calc_conditional_mixture(self, x_NI):
        """(log_w_NK, mean_NKO, chol_KOO): gate, each expert's mean at x_n, Cholesky of Sigma_k."""
        ### BEGIN SOLUTION
        log_w_NK = calc_log_gate_NK(x_NI, self.gate_coef_IK, self.gate_intercept_K)
        mean_NKO = np.einsum("ni,kio->nko", x_NI, self.coef_KIO) + self.intercept_KO
        return log_w_NK, mean_NKO, np.linalg.cholesky(self.cov_KOO)
        ### END SOLUTION

    def init_params(self, x_NI, y_NO, r_NK):
        """Start from a uniform gate and standard-normal experts, then one M-step."""
        I, O, K = x_NI.shape[1], y_NO.shape[1], self.n_components
        self.gate_coef_IK, self.gate_intercept_K = np.zeros((I, K)), np.zeros(K)
        self.coef_KIO, self.intercept_KO = np.zeros((K, I, O)), np.zeros((K, O))
        self.cov_KOO = np.tile(np.eye(O), (K, 1, 1))
        self.mstep__update_params(x_NI, y_NO, r_NK)

    def estep__calc_r_NK(self, x_NI, y_NO):
        """Responsibilities p(k | x_n, y_n) and the mean conditional log likelihood.

        Returns
        -------
        r_NK : np.ndarray of shape (N, K)
            Rows sum to one.
        mean_log_lik : float
            (1/N) sum_n log p(y_n | x_n) at the current parameters.
        """
        ### BEGIN SOLUTION
        log_w_NK, mean_NKO, chol_KOO = self.calc_conditional_mixture(x_NI)
        log_joint_NK = log_w_NK + calc_log_pdf_NK(y_NO[:, np.newaxis, :] - mean_NKO, chol_KOO)
        log_lik_N = logsumexp_rows(log_joint_NK)
        return np.exp(log_joint_NK - log_lik_N[:, np.newaxis]), float(np.mean(log_lik_N))
        ### END SOLUTION

    def mstep__update_experts(self, x_NI, y_NO, r_NK):
        """Each expert by weighted least squares, then its residual covariance.

        Expert k regresses y on [x, 1] with weight r_nk on row n (any least-squares solution: with
        one-hot inputs the design has dependent columns, and only the predictions are unique). Its
        covariance is the r-weighted mean of the residuals' outer products plus reg_covar * I.
        An expert with sum_n r_nk = 0 keeps its parameters.

        Returns
        -------
        coef_KIO : np.ndarray of shape (K, I, O)
        intercept_KO : np.ndarray of shape (K, O)
        cov_KOO : np.ndarray of shape (K, O, O)
        """
        ### BEGIN SOLUTION
        N, I = x_NI.shape
        O = y_NO.shape[1]
        design_NJ = np.hstack([x_NI, np.ones((N, 1))])
        count_K = np.sum(r_NK, axis=0)
        coef_KIO, intercept_KO, cov_KOO = self.coef_KIO.copy(), self.intercept_KO.copy(), self.cov_KOO.copy()
        for k in np.flatnonzero(count_K > 0):
            sqrt_r_N1 = np.sqrt(r_NK[:, k])[:, np.newaxis]
            beta_JO = np.linalg.lstsq(sqrt_r_N1 * design_NJ, sqrt_r_N1 * y_NO, rcond=None)[0]
            coef_KIO[k], intercept_KO[k] = beta_JO[:I], beta_JO[I]
            resid_NO = y_NO - design_NJ @ beta_JO
            cov_KOO[k] = (r_NK[:, k, np.newaxis] * resid_NO).T @ resid_NO / count_K[k]
            cov_KOO[k] += self.reg_covar * np.eye(O)
        return coef_KIO, intercept_KO, cov_KOO
        ### END SOLUTION

    def calc_gate_loss(self, flat, x_NI, r_NK):
        """Weighted multinomial logistic loss of the gate, for a flat parameter vector.

        flat holds gate_coef_IK (row-major) followed by gate_intercept_K. The loss is
        -(1/N) sum_n sum_k r_nk log g_k(x_n) + (gate_penalty / 2) ||gate_coef_IK||^2; autograd
        must be able to differentiate it with respect to flat.
        """
        ### BEGIN SOLUTION
        N, I = x_NI.shape
        K = r_NK.shape[1]
        coef_IK = np.reshape(flat[: I * K], (I, K))
        log_gate_NK = calc_log_gate_NK(x_NI, coef_IK, flat[I * K :])
        return -np.sum(r_NK * log_gate_NK) / N + 0.5 * self.gate_penalty * np.sum(coef_IK**2)
        ### END SOLUTION

    def mstep__update_gate(self, x_NI, r_NK):
        """Fit the gate to the responsibilities: minimize calc_gate_loss with L-BFGS (autograd
        gradient), starting from the current gate.

        Returns
        -------
        gate_coef_IK : np.ndarray of shape (I, K)
        gate_intercept_K : np.ndarray of shape (K,)
        """
        ### BEGIN SOLUTION
        I, K = self.gate_coef_IK.shape
        start = np.concatenate([self.gate_coef_IK.ravel(), self.gate_intercept_K])
        result = minimize(
            autograd.value_and_grad(self.calc_gate_loss),
            start,
            args=(x_NI, r_NK),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.gate_max_iter, "gtol": 1e-6},
        )
        return result.x[: I * K].reshape(I, K), result.x[I * K :]
        ### END SOLUTION

    def mstep__update_params(self, x_NI, y_NO, r_NK):
        """The M-step: experts, then the gate."""
        self.coef_KIO, self.intercept_KO, self.cov_KOO = self.mstep__update_experts(x_NI, y_NO, r_NK)
        self.gate_coef_IK, self.gate_intercept_K = self.mstep__update_gate(x_NI, r_NK)
