"""Fit the penalized diagonal Gaussian mixture by expectation-maximization (EM).

EM alternates two steps, each of which can only lower the same surrogate loss:

- E-step: responsibilities r_nk = p(component k | x_n) under the current parameters.
- M-step: with r fixed, the weights, the means and then the standard deviations each get their
  best value in closed form.

The surrogate ("EM loss") is the penalty minus the evidence lower bound,

    L(r, params) = penalty - sum_n sum_k r_nk [log pi_k + log N(x_n | mu_k, stddev_k)]
                           + sum_n sum_k r_nk log r_nk,

which is never below the penalized negative log likelihood and equals it right after an E-step.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> prng = np.random.RandomState(0)
>>> x_ND = np.vstack([prng.randn(50, 1) - 3, prng.randn(50, 1) + 3])
>>> model = GMM_PenalizedMLEstimator_EM(K=2, D=1, seed=1, max_iter=50)
>>> model = model.fit(x_ND, verbose=False)
>>> np.sort(model.mu_KD[:, 0]).round(1)
array([-2.9,  3. ])
>>> np.exp(model.log_pi_K).round(2)
array([0.5, 0.5])
"""

import numpy as np
from calc_neg_log_lik__np import calc_log_joint_NK
from GMM_PenalizedMLEstimator import GMM_PenalizedMLEstimator
from scipy.special import logsumexp


class GMM_PenalizedMLEstimator_EM(GMM_PenalizedMLEstimator):
    """Penalized diagonal Gaussian mixture fit by EM (constructor arguments as in the base class)."""

    def calc_EM_loss(self, r_NK, x_ND):
        """EM surrogate loss for responsibilities r_NK and the current parameters.

        Parameters
        ----------
        r_NK : array-like, shape (N, K)
            Responsibilities: non-negative, each row sums to 1.
        x_ND : array-like, shape (N, D)
            Data.

        Returns
        -------
        loss : float
            penalty - sum_nk r_nk (log pi_k + log N(x_n | k)) + sum_nk r_nk log r_nk.  Entries
            with r_nk = 0 add nothing, even where log pi_k = -inf.  Right after the E-step this
            equals the penalized negative log likelihood.
        """
        ### BEGIN SOLUTION
        r_NK = np.asarray(r_NK, dtype=np.float64)
        log_joint_NK = calc_log_joint_NK(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD)
        # 0 * log(0) counts as 0: only entries with r_nk > 0 enter the sums
        used = r_NK > 0
        expected_log_joint = np.sum(r_NK[used] * log_joint_NK[used])
        neg_entropy = np.sum(r_NK[used] * np.log(r_NK[used]))
        return float(self.calc_penalty_stddev() - expected_log_joint + neg_entropy)
        ### END SOLUTION

    def estep__calc_r_NK(self, x_ND, return_log_lik=False, x_sq_ND=None):
        """E-step: responsibility of every component for every example.

        Parameters
        ----------
        x_ND : array-like, shape (N, D)
        return_log_lik : bool
            Also return log p(x_n) for every example.  The E-step computes these numbers anyway
            (they normalise the rows of r), and ``fit`` needs their sum as the training score.
        x_sq_ND : array-like, shape (N, D), optional
            ``np.square(x_ND)`` if the caller has it (passed on to ``calc_log_joint_NK``).

        Returns
        -------
        r_NK : np.ndarray, shape (N, K)
            r_nk = pi_k N(x_n | k) / sum_j pi_j N(x_n | j); rows sum to 1.  A component with
            log pi_k = -inf gets exactly 0.
        log_lik_N : np.ndarray, shape (N,)
            Only when ``return_log_lik`` is true: log p(x_n) = logsumexp_k log_joint_NK[n, k].
        """
        ### BEGIN SOLUTION
        log_joint_NK = calc_log_joint_NK(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD, x_sq_ND)
        log_lik_N = logsumexp(log_joint_NK, axis=1)
        r_NK = np.exp(log_joint_NK - log_lik_N[:, np.newaxis])
        if return_log_lik:
            return r_NK, log_lik_N
        return r_NK
        ### END SOLUTION

    def mstep__update_log_pi_K(self, r_NK):
        """M-step for the weights: pi_k proportional to sum_n r_nk.

        Parameters
        ----------
        r_NK : array-like, shape (N, K)

        Returns
        -------
        log_pi_K : np.ndarray, shape (K,)
            log(sum_n r_nk) - log(N).  A component with no responsibility at all gets -inf
            (weight exactly 0).  With no data (N = 0) the current weights are kept.
        """
        ### BEGIN SOLUTION
        r_NK = np.asarray(r_NK, dtype=np.float64)
        N = r_NK.shape[0]
        if N == 0:
            return self.log_pi_K.copy()
        with np.errstate(divide="ignore"):  # log(0) = -inf for an empty component
            return np.log(np.sum(r_NK, axis=0)) - np.log(N)
        ### END SOLUTION

    def mstep__update_mu_KD(self, r_NK, x_ND):
        """M-step for the means: the responsibility-weighted average of the data.

        The penalty involves only the standard deviations, so the means have the usual update.

        Parameters
        ----------
        r_NK : array-like, shape (N, K)
        x_ND : array-like, shape (N, D)

        Returns
        -------
        mu_KD : np.ndarray, shape (K, D)
            sum_n r_nk x_n / sum_n r_nk.  A component with sum_n r_nk = 0 may get any finite
            mean (its weight is 0, so the mean changes no likelihood); keeping the current one
            is natural.
        """
        ### BEGIN SOLUTION
        r_NK = np.asarray(r_NK, dtype=np.float64)
        count_K = np.sum(r_NK, axis=0)
        mu_KD = self.mu_KD.copy()
        has_data = count_K > 0
        mu_KD[has_data] = (r_NK.T @ x_ND)[has_data] / count_K[has_data, np.newaxis]
        return mu_KD
        ### END SOLUTION

    def mstep__update_stddev_KD(self, r_NK, x_ND, x_sq_ND=None):
        """M-step for the standard deviations, given the new means in ``self.mu_KD``.

        Call it after ``mstep__update_mu_KD``, once ``self.mu_KD`` holds the responsibility-weighted
        means for this r_NK.  With the penalty (mode m, spread s) the best variance is

            stddev_kd**2 = (1/(s m) + sum_n r_nk (x_nd - mu_kd)**2) / (1/(s m**2) + sum_n r_nk),

        which is never zero, and is exactly m for a component that owns no data.

        Parameters
        ----------
        r_NK : array-like, shape (N, K)
        x_ND : array-like, shape (N, D)
        x_sq_ND : array-like, shape (N, D), optional
            ``np.square(x_ND)`` if the caller has it (``fit`` squares its data once).

        Returns
        -------
        stddev_KD : np.ndarray, shape (K, D)
        """
        ### BEGIN SOLUTION
        r_NK = np.asarray(r_NK, dtype=np.float64)
        m, s = self.variance_penalty_mode, self.variance_penalty_spread
        if x_sq_ND is None:
            x_sq_ND = np.square(x_ND)
        count_K1 = np.sum(r_NK, axis=0)[:, np.newaxis]
        # mu is the weighted mean, so sum_n r (x - mu)^2 = sum_n r x^2 - (sum_n r) mu^2
        sq_dev_KD = r_NK.T @ x_sq_ND - count_K1 * np.square(self.mu_KD)
        var_KD = (1.0 / (s * m) + sq_dev_KD) / (1.0 / (s * m * m) + count_K1)
        return np.sqrt(var_KD)
        ### END SOLUTION

    def fit(self, x_ND, x_valid_ND=None, verbose=True):
        """Fit by EM, starting from ``generate_initial_parameters(x_ND)``.

        Every pass through the loop takes one E-step at the current parameters,
        ``r_NK, log_lik_N = self.estep__calc_r_NK(x_ND, return_log_lik=True)``, whose log_lik_N
        also gives the training score of those parameters; it scores them and adds one entry to
        ``self.history`` with ``record_iteration``; then, unless that reports convergence or this
        was the last pass, it runs one M-step (``mstep__update_log_pi_K``, ``mstep__update_mu_KD``,
        then ``mstep__update_stddev_KD`` around the new means) with that r_NK.  So entry t scores
        the parameters after t M-steps, there are at most ``max_iter + 1`` entries, and the
        parameters left in the model are exactly those the last entry scores.

        With ``do_double_check_correctness`` it also checks, at every step, that the EM loss right
        after the E-step equals the penalized negative log likelihood and that the M-step did not
        raise it (``_check_estep`` and ``_check_mstep`` raise AssertionError otherwise).

        What to write: the loop.  Per pass, compute ``train_score`` (the training log
        likelihood, the sum of log_lik_N), ``train_loss`` (penalty minus train_score) and
        ``valid_score`` (``self.score(x_valid_ND)``, or None), then call
        ``self.record_iteration(train_loss, train_score, valid_score, N, N_valid, verbose=verbose,
        label="EM")`` and stop as soon as it returns True; otherwise take the M-step.

        Parameters
        ----------
        x_ND : array-like, shape (N, D)
            Training data (N = 0 is allowed).
        x_valid_ND : array-like, shape (M, D), optional
            Validation data, scored after every iteration.
        verbose : bool
            Print one line per iteration.

        Returns
        -------
        self
        """
        x_ND, x_valid_ND, N, N_valid = self.start_fit(x_ND, x_valid_ND)
        ### BEGIN SOLUTION
        x_sq_ND = np.square(x_ND)  # once per fit: every E-step and every stddev update needs it
        for iter_id in range(self.max_iter + 1):
            # E-step first: its normalisers log p(x_n) are the training score of these parameters
            r_NK, log_lik_N = self.estep__calc_r_NK(x_ND, return_log_lik=True, x_sq_ND=x_sq_ND)
            train_score = np.sum(log_lik_N)
            train_loss = self.calc_penalty_stddev() - train_score
            valid_score = None if x_valid_ND is None else self.score(x_valid_ND)
            converged = self.record_iteration(
                train_loss, train_score, valid_score, N, N_valid, verbose=verbose, label="EM"
            )
            if converged or iter_id == self.max_iter:
                break
            if self.do_double_check_correctness:
                loss_after_estep = self.calc_EM_loss(r_NK, x_ND)
                self._check_estep(train_loss, loss_after_estep, iter_id)
            self.log_pi_K = self.mstep__update_log_pi_K(r_NK)
            self.mu_KD = self.mstep__update_mu_KD(r_NK, x_ND)
            self.stddev_KD = self.mstep__update_stddev_KD(r_NK, x_ND, x_sq_ND)
            if self.do_double_check_correctness:
                self._check_mstep(loss_after_estep, self.calc_EM_loss(r_NK, x_ND), iter_id)
        ### END SOLUTION
        return self

    @staticmethod
    def _check_estep(neg_log_lik, em_loss, iter_id):
        """Raise AssertionError unless the EM loss after an E-step equals the penalized NLL."""
        if not np.isclose(em_loss, neg_log_lik, rtol=1e-8, atol=1e-8):
            raise AssertionError(
                f"iteration {iter_id}: after the E-step the EM loss should equal the "
                f"penalized negative log likelihood {neg_log_lik!r}, got {em_loss!r}"
            )

    @staticmethod
    def _check_mstep(loss_before, loss_after, iter_id):
        """Raise AssertionError if the M-step raised the EM loss (beyond rounding)."""
        if not loss_after <= loss_before + 1e-10 * max(1.0, abs(loss_before)):
            raise AssertionError(
                f"iteration {iter_id}: the M-step increased the EM loss from "
                f"{loss_before!r} to {loss_after!r}"
            )
