"""Conditional GMM regressor: a full-covariance Gaussian mixture on the joint vector [x, y], fit by
EM, then conditioned on x.

Conditioning uses the lower Cholesky factor L of each joint covariance, split into blocks

    L = [[L_xx, 0   ],          Sigma_xx = L_xx L_xx^T,
         [L_yx, L_yy]],         y | x, k ~ Normal(mu_y + L_yx L_xx^{-1} (x - mu_x), L_yy L_yy^T),

and the weight of component k at input x is proportional to pi_k Normal(x | mu_x, Sigma_xx).

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> cov_KDD = np.array([[[1.0, 0.8], [0.8, 1.0]]])       # one component, x and y correlated
>>> log_w_NK, mean_NKO, chol_KOO = condition_joint_gmm(np.array([[1.0]]), np.zeros(1),
...                                                    np.zeros((1, 2)), cov_KDD)
>>> mean_NKO[0, 0], chol_KOO[0] @ chol_KOO[0].T            # 0.8 x and 1 - 0.8^2
(array([0.8]), array([[0.36]]))
"""

import autograd.numpy as np
from conditional_mixture import ConditionalMixtureRegressor
from gaussian_math import calc_log_pdf_NK, logsumexp_rows, whiten_KND


def condition_joint_gmm(x_NI, log_pi_K, mu_KD, cov_KDD):
    """The mixture p(y | x) of a joint Gaussian mixture on [x, y], for every row of x_NI.

    Parameters
    ----------
    x_NI : array of shape (N, I)
        Inputs; the first I coordinates of the joint vector.
    log_pi_K : array of shape (K,)
        Log mixture weights (-inf for a component with weight zero).
    mu_KD : array of shape (K, D)
        Joint means, D = I + O.
    cov_KDD : array of shape (K, D, D)
        Joint covariances, positive definite.

    Returns
    -------
    log_w_NK : array of shape (N, K)
        log p(k | x_n); each row's logsumexp is 0.
    mean_NKO : array of shape (N, K, O)
        E[y | x_n, k].
    chol_KOO : array of shape (K, O, O)
        Lower Cholesky factor of Cov[y | x, k] (the same for every x).

    Raises
    ------
    numpy.linalg.LinAlgError
        If a covariance is not positive definite.
    """
    ### BEGIN SOLUTION
    I = x_NI.shape[1]
    chol_KDD = np.linalg.cholesky(cov_KDD)
    chol_xx_KII = chol_KDD[:, :I, :I]
    diff_NKI = x_NI[:, np.newaxis, :] - mu_KD[np.newaxis, :, :I]
    log_joint_NK = log_pi_K + calc_log_pdf_NK(diff_NKI, chol_xx_KII)
    log_w_NK = log_joint_NK - logsumexp_rows(log_joint_NK)[:, np.newaxis]
    shift_KNO = np.matmul(whiten_KND(diff_NKI, chol_xx_KII), np.swapaxes(chol_KDD[:, I:, :I], 1, 2))
    mean_NKO = mu_KD[np.newaxis, :, I:] + np.transpose(shift_KNO, (1, 0, 2))
    return log_w_NK, mean_NKO, chol_KDD[:, I:, I:]
    ### END SOLUTION


class ConditionalGMMRegressor(ConditionalMixtureRegressor):
    """Joint full-covariance GMM on [x, y] (EM), used through p(y | x).

    Parameters are those of ConditionalMixtureRegressor. Fitted attributes: ``log_pi_K`` (K,),
    ``mu_KD`` (K, D) and ``cov_KDD`` (K, D, D) of the joint, D = I + O, and ``n_inputs_`` = I.
    """

    def calc_conditional_mixture(self, x_NI):
        return condition_joint_gmm(x_NI, self.log_pi_K, self.mu_KD, self.cov_KDD)

    def init_params(self, x_NI, y_NO, r_NK):
        """Start from standard-normal components, then one M-step with the given responsibilities."""
        D = x_NI.shape[1] + y_NO.shape[1]
        self.mu_KD = np.zeros((self.n_components, D))
        self.cov_KDD = np.tile(np.eye(D), (self.n_components, 1, 1))
        self.mstep__update_params(x_NI, y_NO, r_NK)

    def estep__calc_r_NK(self, x_NI, y_NO):
        """Responsibilities of the joint mixture for each row of [x, y].

        Parameters
        ----------
        x_NI : array of shape (N, I)
        y_NO : array of shape (N, O)

        Returns
        -------
        r_NK : np.ndarray of shape (N, K)
            p(k | x_n, y_n); rows sum to one.
        mean_log_lik : float
            Mean joint log likelihood (1/N) sum_n log p(x_n, y_n) at the current parameters.
        """
        ### BEGIN SOLUTION
        xy_ND = np.hstack([x_NI, y_NO])
        diff_NKD = xy_ND[:, np.newaxis, :] - self.mu_KD[np.newaxis]
        log_joint_NK = self.log_pi_K + calc_log_pdf_NK(diff_NKD, np.linalg.cholesky(self.cov_KDD))
        log_lik_N = logsumexp_rows(log_joint_NK)
        return np.exp(log_joint_NK - log_lik_N[:, np.newaxis]), float(np.mean(log_lik_N))
        ### END SOLUTION

    def mstep__update_params(self, x_NI, y_NO, r_NK):
        """Weights, means and covariances of the joint mixture from responsibilities.

        Sets ``log_pi_K`` = log(N_k / N), ``mu_KD`` = responsibility-weighted means of [x, y] and
        ``cov_KDD`` = weighted covariances plus reg_covar on the diagonal, where N_k = sum_n r_nk.
        A component with N_k = 0 gets log weight -inf and keeps its mean and covariance.

        Parameters
        ----------
        x_NI : array of shape (N, I)
        y_NO : array of shape (N, O)
        r_NK : array of shape (N, K)
            Responsibilities; rows sum to one.
        """
        ### BEGIN SOLUTION
        xy_ND = np.hstack([x_NI, y_NO])
        N, D = xy_ND.shape
        count_K = np.sum(r_NK, axis=0)
        with np.errstate(divide="ignore"):
            self.log_pi_K = np.log(count_K / N)
        mu_KD = self.mu_KD.copy()
        cov_KDD = self.cov_KDD.copy()
        for k in np.flatnonzero(count_K > 0):
            mu_KD[k] = r_NK[:, k] @ xy_ND / count_K[k]
            diff_ND = xy_ND - mu_KD[k]
            cov_KDD[k] = (r_NK[:, k, np.newaxis] * diff_ND).T @ diff_ND / count_K[k]
            cov_KDD[k] += self.reg_covar * np.eye(D)
        self.mu_KD, self.cov_KDD = mu_KD, cov_KDD
        ### END SOLUTION
