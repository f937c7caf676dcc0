"""Fit the penalized diagonal Gaussian mixture by gradient descent with L-BFGS.

Instead of EM's closed-form steps, we hand the whole loss

    loss = penalty(stddev_KD) - sum_n log p(x_n)

to ``scipy.optimize.minimize(method='L-BFGS-B')`` together with its gradient from autograd.  L-BFGS
wants one flat vector of unconstrained real numbers, so the parameters are re-expressed:

- weights: an unconstrained K-vector u_K with log_pi_K = log_softmax(u_K);
- means: mu_KD as they are;
- standard deviations: an unconstrained (K, D) array v_KD with stddev_KD = softplus(v_KD);

and the three pieces are flattened and concatenated (length K + 2 K D).

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> model = GMM_PenalizedMLEstimator_LBFGS(K=2, D=1)
>>> flat = model.to_flat_array(np.log([0.25, 0.75]), np.array([[0.0], [1.0]]), np.ones((2, 1)))
>>> flat
array([-1.3863, -0.2877,  0.    ,  1.    ,  0.5413,  0.5413])
>>> [a.round(4) for a in model.to_common_parameters(flat)]
[array([-1.3863, -0.2877]), array([[0.],
       [1.]]), array([[1.],
       [1.]])]
"""

import contextlib

import autograd
import numpy as np
from calc_neg_log_lik__ag import calc_neg_log_lik as calc_neg_log_lik_ag
from calc_neg_log_lik__np import calc_neg_log_lik
from calc_penalty_stddev import calc_penalty_stddev
from GMM_PenalizedMLEstimator import GMM_PenalizedMLEstimator
from scipy.optimize import minimize
from transform_log_softmax import inverse_log_softmax, log_softmax
from transform_softplus import inverse_softplus, softplus


class GMM_PenalizedMLEstimator_LBFGS(GMM_PenalizedMLEstimator):
    """Penalized diagonal Gaussian mixture fit by L-BFGS (constructor arguments as in the base class)."""

    def to_flat_array(self, log_pi_K, mu_KD, stddev_KD):
        """Pack parameters into one unconstrained flat vector.

        Parameters
        ----------
        log_pi_K : array-like, shape (K,)
        mu_KD : array-like, shape (K, D)
        stddev_KD : array-like, shape (K, D)

        Returns
        -------
        flat : np.ndarray, shape (K + 2 K D,)
            [inverse_log_softmax(log_pi_K), mu_KD.ravel(), inverse_softplus(stddev_KD).ravel()].
        """
        return np.concatenate(
            [
                inverse_log_softmax(np.asarray(log_pi_K, dtype=np.float64)),
                np.asarray(mu_KD, dtype=np.float64).ravel(),
                inverse_softplus(np.asarray(stddev_KD, dtype=np.float64)).ravel(),
            ]
        )

    def to_common_parameters(self, flat):
        """Unpack a flat vector into (log_pi_K, mu_KD, stddev_KD); autograd can trace it.

        Parameters
        ----------
        flat : array, shape (K + 2 K D,)

        Returns
        -------
        log_pi_K : array, shape (K,)
        mu_KD : array, shape (K, D)
        stddev_KD : array, shape (K, D)
        """
        K, D = self.K, self.D
        log_pi_K = log_softmax(flat[:K])
        mu_KD = autograd.numpy.reshape(flat[K : K + K * D], (K, D))
        stddev_KD = softplus(autograd.numpy.reshape(flat[K + K * D :], (K, D)))
        return log_pi_K, mu_KD, stddev_KD

    def calc_loss(self, flat, x_ND):
        """Training loss as a function of the flat parameter vector (autograd-safe).

        Parameters
        ----------
        flat : array, shape (K + 2 K D,)
            Unconstrained parameters, as made by ``to_flat_array``.
        x_ND : array, shape (N, D)
            Training data.

        Returns
        -------
        loss : float (or an autograd box while being differentiated)
            penalty(stddev_KD) + negative log likelihood of x_ND, using the autograd-safe functions
            calc_penalty_stddev and calc_neg_log_lik__ag.calc_neg_log_lik.
        """
        ### BEGIN SOLUTION
        log_pi_K, mu_KD, stddev_KD = self.to_common_parameters(flat)
        penalty = calc_penalty_stddev(stddev_KD, self.variance_penalty_mode, self.variance_penalty_spread)
        return penalty + calc_neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD)
        ### END SOLUTION

    def fit(self, x_ND, x_valid_ND=None, verbose=True):
        """Fit by L-BFGS-B, starting from ``generate_initial_parameters(x_ND)``.

        Runs ``scipy.optimize.minimize(method='L-BFGS-B', jac=True)`` on ``calc_loss`` with the
        gradient from ``autograd.value_and_grad``, for at most ``max_iter`` iterations and with
        scipy's own relative-decrease test using ``ftol`` (the same test EM uses).  History entry 0
        scores the initial parameters and entry t the parameters after t L-BFGS iterations (recorded
        by a callback).  Should scipy return a point other than its last iterate, one more entry
        scores that point, so the last entry always scores the parameters left in the model.
        Afterwards ``self.message`` holds scipy's reason for stopping (for instance that the
        iteration limit was reached before convergence).

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

        def loss_and_grad(flat):
            return autograd.value_and_grad(self.calc_loss)(flat, x_ND)

        last = {}

        def record(flat, loss):
            """Adopt ``flat`` as the current parameters and add a history entry scoring them."""
            log_pi_K, mu_KD, stddev_KD = (
                np.asarray(a, dtype=np.float64) for a in self.to_common_parameters(flat)
            )
            self.log_pi_K, self.mu_KD, self.stddev_KD = log_pi_K, mu_KD, stddev_KD
            penalty = float(
                calc_penalty_stddev(stddev_KD, self.variance_penalty_mode, self.variance_penalty_spread)
            )
            valid_score = None
            if x_valid_ND is not None:
                valid_score = -calc_neg_log_lik(x_valid_ND, log_pi_K, mu_KD, stddev_KD)
            self.record_iteration(
                loss, penalty - loss, valid_score, N, N_valid, verbose=verbose, label="LBFGS"
            )
            last["flat"] = np.array(flat, dtype=np.float64)

        def callback(intermediate_result):
            record(intermediate_result.x, float(intermediate_result.fun))

        with _one_blas_thread():
            flat0 = self.to_flat_array(self.log_pi_K, self.mu_KD, self.stddev_KD)
            record(flat0, float(self.calc_loss(flat0, x_ND)))
            self.message = "max_iter is 0: no iterations were run"
            if self.max_iter > 0:
                result = minimize(
                    loss_and_grad,
                    flat0,
                    jac=True,
                    method="L-BFGS-B",
                    callback=callback,
                    options=dict(maxiter=self.max_iter, ftol=self.ftol),
                )
                self.message = str(result.message)
                if not np.array_equal(result.x, last["flat"]):
                    record(result.x, float(result.fun))
        return self


def _one_blas_thread():
    """Context in which BLAS runs on one thread, if threadpoolctl is installed (else no change).

    One L-BFGS fit multiplies small matrices (K columns, interleaved with autograd's bookkeeping);
    handing each product to several BLAS threads costs more than it saves.  Measured on two cores:
    the 16-run L-BFGS sweep takes 16 s on one thread and 25 s on two.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
