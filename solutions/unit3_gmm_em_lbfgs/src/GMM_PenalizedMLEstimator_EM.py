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
from calc_penalty_stddev import calc_penalty_stddev
from GMM_PenalizedMLEstimator import GMM_PenalizedMLEstimator
from prepared_data import PreparedData
from scipy.special import logsumexp, xlogy

# Responsibilities below this are set to exactly 0. That changes no sum by more than 1e-300 relative,
# and it keeps subnormal numbers (below about 2e-308) out of the matrix products of the M-step, where
# the CPU handles them up to a hundred times more slowly than ordinary numbers.
RESPONSIBILITY_FLOOR = 1e-300


class GMM_PenalizedMLEstimator_EM(GMM_PenalizedMLEstimator):
    """Penalized diagonal Gaussian mixture fit by EM (constructor arguments as in the base class).

    Methods that take data accept a float array of shape (N, D) or a PreparedData made from one.
    """

    def calc_EM_loss(self, r_NK, x_ND):
        """EM surrogate loss for responsibilities r_NK and the current parameters.

        Args
        ----
        r_NK : array-like, shape (N, K)
            Responsibilities: non-negative, each row sums to 1.
        x_ND : array-like, shape (N, D)
            Data.

        Returns
        -------
        loss : float
            penalty - sum_nk r_nk (log pi_k + log N(x_n | k)) + sum_nk r_nk log r_nk.  Entries
            with r_nk = 0 add nothing, even where log pi_k = -inf. Right after the E-step this
            equals the penalized negative log likelihood.
        """
        ### BEGIN SOLUTION
        r_NK = np.asarray(r_NK, dtype=np.float64)
        log_joint_NK = calc_log_joint_NK(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD)
        weighted_NK = np.multiply(r_NK, log_joint_NK, out=np.zeros_like(r_NK), where=r_NK > 0)
        return float(self.calc_penalty_stddev() - np.sum(weighted_NK) + np.sum(xlogy(r_NK, r_NK)))
        ### END SOLUTION

    def estep__calc_r_NK(self, x_ND):
        """E-step: responsibility of every component for every example.

        Args
        ----
        x_ND : array-like, shape (N, D)

        Returns
        -------
        r_NK : np.ndarray, shape (N, K)
            r_nk = pi_k N(x_n | k) / sum_j pi_j N(x_n | j), computed in log space; rows sum to 1.
            Values below RESPONSIBILITY_FLOOR (1e-300) are set to 0, so a component with
            log pi_k = -inf, or one that explains no example at all, gets exactly 0.
        """
        ### BEGIN SOLUTION
        log_joint_NK = calc_log_joint_NK(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD)
        r_NK = np.exp(log_joint_NK - logsumexp(log_joint_NK, axis=1, keepdims=True))
        r_NK[r_NK < RESPONSIBILITY_FLOOR] = 0.0
        return r_NK
        ### END SOLUTION

    def mstep__update_log_pi_K(self, r_NK):
        """M-step for the weights: pi_k proportional to sum_n r_nk.

        Args
        ----
        r_NK : array-like, shape (N, K)

        Returns
        -------
        log_pi_K : np.ndarray, shape (K,)
            log(sum_n r_nk) - log(sum_n sum_k r_nk).  A component with no responsibility at all
            gets -inf (weight exactly 0).  With no data (N = 0) the current weights are kept.
        """
        ### BEGIN SOLUTION
        count_K = np.sum(np.asarray(r_NK, dtype=np.float64), axis=0)
        total = np.sum(count_K)
        if total <= 0:
            return self.log_pi_K.copy()
        with np.errstate(divide="ignore"):
            return np.log(count_K) - np.log(total)
        ### END SOLUTION

    def mstep__update_mu_KD(self, r_NK, x_ND):
        """M-step for the means: the responsibility-weighted average of the data.

        The penalty involves only the standard deviations, so the means have the usual update.

        Args
        ----
        r_NK : array-like, shape (N, K)
        x_ND : array-like, shape (N, D)

        Returns
        -------
        mu_KD : np.ndarray, shape (K, D)
            sum_n r_nk x_n / sum_n r_nk; a component with sum_n r_nk = 0 keeps its current mean.
        """
        ### BEGIN SOLUTION
        data = PreparedData.of(x_ND)
        r_NK = np.asarray(r_NK, dtype=np.float64)
        count_K = np.sum(r_NK, axis=0)
        alive_K = count_K > 0
        mu_KD = self.mu_KD.copy()
        if r_NK.flags.writeable:
            sum_KD = r_NK.T @ data.xc_ND
        else:
            # r cannot change any more, so mstep__update_stddev_KD may reuse a matrix product:
            # one product gives the weighted sums of the squares too (see prepared_data.py)
            sumsq_sum_K2D = r_NK.T @ data.xcsq_xc_N2D
            sum_KD = sumsq_sum_K2D[:, data.shape[1]:]
            self._weighted_sum_memo = (r_NK, data, sumsq_sum_K2D, count_K)
        # weighted average of the centred data, shifted back
        mu_KD[alive_K] = sum_KD[alive_K] / count_K[alive_K, np.newaxis] + data.center_D
        return mu_KD
        ### END SOLUTION

    def mstep__update_stddev_KD(self, r_NK, x_ND):
        """M-step for the standard deviations, around the CURRENT means ``self.mu_KD``.

        Call it after ``mstep__update_mu_KD`` has set the new means: it uses whatever self.mu_KD
        holds.  With the penalty (mode m, spread s) the best variance is

            stddev_kd**2 = (1/(s m) + sum_n r_nk (x_nd - mu_kd)**2) / (1/(s m**2) + sum_n r_nk),

        which is never zero, and is exactly m for a component that owns no data.

        Args
        ----
        r_NK : array-like, shape (N, K)
        x_ND : array-like, shape (N, D)

        Returns
        -------
        stddev_KD : np.ndarray, shape (K, D)
        """
        ### BEGIN SOLUTION
        data = PreparedData.of(x_ND)
        r_NK = np.asarray(r_NK, dtype=np.float64)
        m, s = self.variance_penalty_mode, self.variance_penalty_spread
        muc_KD = self.mu_KD - data.center_D
        # sum_n r (xc - muc)^2 = sum_n r xc^2 - 2 muc sum_n r xc + muc^2 sum_n r
        memo = getattr(self, "_weighted_sum_memo", None)
        self._weighted_sum_memo = None
        if memo is not None and memo[0] is r_NK and memo[1] is data:
            # computed by mstep__update_mu_KD from the same read-only r
            sumsq_sum_K2D, count_K = memo[2], memo[3]
        else:
            sumsq_sum_K2D = r_NK.T @ data.xcsq_xc_N2D
            count_K = np.sum(r_NK, axis=0)
        sumsq_KD, sum_KD = np.split(sumsq_sum_K2D, 2, axis=1)
        spread_KD = sumsq_KD - 2.0 * muc_KD * sum_KD + np.square(muc_KD) * count_K[:, np.newaxis]
        spread_KD = np.maximum(spread_KD, 0.0)
        var_KD = (1.0 / (s * m) + spread_KD) / (1.0 / (s * m * m) + count_K[:, np.newaxis])
        return np.sqrt(var_KD)
        ### END SOLUTION

    def fit(self, x_ND, x_valid_ND=None, verbose=True):
        """Fit by EM, starting from ``generate_initial_parameters(x_ND)``.

        Each pass through the loop first runs an M-step (except on the first pass), then an E-step
        on the new parameters; that E-step's log-sum-exp is also the log likelihood of every
        training example, so the training score comes for free.  Every pass ends with a call to
        ``record_iteration``: entry t of ``self.history`` scores the parameters after t M-steps,
        and the parameters left in the model are exactly those the last entry scores.  The loop
        stops after ``max_iter`` M-steps or when ``record_iteration`` reports convergence.

        With ``do_double_check_correctness`` it also checks that the EM loss equals the penalized
        negative log likelihood after every E-step (relative tolerance 1e-8) and that no M-step
        raises the EM loss, and raises AssertionError otherwise (``_check_estep`` and
        ``_check_mstep`` do the comparing).

        What to write: the loop.  Per pass, compute ``train_loss`` (penalty minus the training log
        likelihood), ``train_score`` (the training log likelihood) and ``valid_score`` (the
        validation log likelihood, or None), then call ``self.record_iteration(train_loss,
        train_score, valid_score, N, N_valid, verbose=verbose, label="EM")`` and stop as soon as it
        returns True.

        Args
        ----
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
        def calc_log_lik_N_and_r_NK(data, need_r=True):
            """E-step that also returns log p(x_n) for every example, running exp only where needed.

            Weights below RESPONSIBILITY_FLOOR times the row's largest weight are set to exactly 0
            without calling exp on them (exp is slow, more so where it would produce subnormal
            numbers); they change no sum by more than K * 1e-300 relative.
            """
            log_joint_NK = calc_log_joint_NK(data, self.log_pi_K, self.mu_KD, self.stddev_KD)
            top_N1 = np.max(log_joint_NK, axis=1, keepdims=True)
            top_N1[~np.isfinite(top_N1)] = 0.0  # a row without any finite entry stays -inf below
            shifted_NK = np.subtract(log_joint_NK, top_N1, out=log_joint_NK)
            keep_NK = shifted_NK >= np.log(RESPONSIBILITY_FLOOR)
            weight_NK = np.zeros_like(shifted_NK)
            weight_NK[keep_NK] = np.exp(shifted_NK[keep_NK])
            total_N1 = np.sum(weight_NK, axis=1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_lik_N = (top_N1 + np.log(total_N1))[:, 0]
                if need_r:
                    weight_NK *= 1.0 / total_N1
            weight_NK.flags.writeable = False  # lets the M-step share one matrix product
            return log_lik_N, weight_NK

        # centre and square the data once, not in every iteration
        train = PreparedData(x_ND)
        valid = None if x_valid_ND is None else PreparedData(x_valid_ND)
        r_NK, train_loss = None, None
        for iter_id in range(self.max_iter + 1):
            if iter_id > 0:
                # M-step: weights, means, then standard deviations around the new means.
                self.log_pi_K = self.mstep__update_log_pi_K(r_NK)
                self.mu_KD = self.mstep__update_mu_KD(r_NK, train)
                self.stddev_KD = self.mstep__update_stddev_KD(r_NK, train)
                if self.do_double_check_correctness:
                    self._check_mstep(train_loss, self.calc_EM_loss(r_NK, train), iter_id)
            # E-step; its log-sum-exp gives the log likelihood of every example
            log_lik_N, r_NK = calc_log_lik_N_and_r_NK(train)
            train_score = float(np.sum(log_lik_N))
            train_loss = float(calc_penalty_stddev(self.stddev_KD, self.variance_penalty_mode,
                                                   self.variance_penalty_spread)) - train_score
            if self.do_double_check_correctness:
                self._check_estep(train_loss, self.calc_EM_loss(r_NK, train), iter_id)
            valid_score = None
            if valid is not None:
                valid_score = float(np.sum(calc_log_lik_N_and_r_NK(valid, need_r=False)[0]))
            if self.record_iteration(train_loss, train_score, valid_score, N, N_valid,
                                     verbose=verbose, label="EM"):
                break
        ### END SOLUTION
        return self

    @staticmethod
    def _check_estep(neg_log_lik, em_loss, iter_id):
        """Raise AssertionError unless the EM loss after an E-step equals the penalized NLL."""
        if not np.isclose(em_loss, neg_log_lik, rtol=1e-8, atol=1e-8):
            raise AssertionError(f"iteration {iter_id}: after the E-step the EM loss should equal the "
                                 f"penalized negative log likelihood {neg_log_lik!r}, got {em_loss!r}")

    @staticmethod
    def _check_mstep(loss_before, loss_after, iter_id):
        """Raise AssertionError if the M-step raised the EM loss (beyond rounding)."""
        if not loss_after <= loss_before + 1e-10 * max(1.0, abs(loss_before)):
            raise AssertionError(f"iteration {iter_id}: the M-step increased the EM loss from "
                                 f"{loss_before!r} to {loss_after!r}")
