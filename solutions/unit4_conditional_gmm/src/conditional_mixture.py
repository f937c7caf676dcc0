"""What the three conditional models of unit 4 share: input checks, the EM loop, and the methods
that only need the model's conditional mixture p(y | x) (predict, score, sample).

A subclass says what its mixture is for given inputs by writing ``calc_conditional_mixture``; an EM
model also writes ``init_params``, ``estep__calc_r_NK`` and ``mstep__update_params``, which the loop
in ``fit`` calls.
"""

import warnings

import numpy as np
from gaussian_math import calc_mixture_log_lik_N, sample_mixture


def as_random_state(random_state):
    """A numpy RandomState from an int, a RandomState or None: the same integer gives the same
    stream, as with scikit-learn's ``check_random_state``.

    Written out because importing scikit-learn for this one helper takes about two seconds, and
    the autograder pays them again in every fresh sandboxed worker.
    """
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)


def check_xy(X, y=None):
    """X (and y) as float arrays of shape (N, I) and (N, O); a ValueError names a bad argument."""
    x_NI = np.asarray(X, dtype=np.float64)
    if x_NI.ndim != 2 or not np.all(np.isfinite(x_NI)):
        raise ValueError(f"X should be a finite 2-d array (n_samples, n_inputs), got shape {x_NI.shape}")
    if y is None:
        return x_NI
    y_NO = np.asarray(y, dtype=np.float64)
    if y_NO.ndim != 2 or y_NO.shape[0] != x_NI.shape[0] or not np.all(np.isfinite(y_NO)):
        raise ValueError(
            f"y should be a finite 2-d array with one row per row of X "
            f"({x_NI.shape[0]}), got shape {y_NO.shape}"
        )
    return x_NI, y_NO


class ConditionalMixtureRegressor:
    """Base class of the unit's estimators (scikit-learn style).

    Parameters
    ----------
    n_components : int, default=3
        Number of mixture components K.
    reg_covar : float, default=1e-2
        Added to the diagonal of every covariance the model estimates.
    max_iter : int, default=100
        Most EM iterations (or optimizer iterations) in ``fit``.
    tol : float, default=1e-4
        EM stops when the training objective per example improves by less than tol.
    random_state : int, RandomState or None
        Seed of the initialization.
    n_init : int, default=1
        Number of EM runs from different k-means starts; ``fit`` keeps the run with the best final
        training objective (as scikit-learn's GaussianMixture does).
    """

    def __init__(self, n_components=3, reg_covar=1e-2, max_iter=100, tol=1e-4, random_state=None, n_init=1):
        if int(n_components) != n_components or n_components < 1:
            raise ValueError(f"n_components should be a positive integer, got {n_components!r}")
        if not reg_covar >= 0:
            raise ValueError(f"reg_covar should be >= 0, got {reg_covar!r}")
        self.n_components = int(n_components)
        self.reg_covar = float(reg_covar)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.random_state = random_state
        if int(n_init) != n_init or n_init < 1:
            raise ValueError(f"n_init should be a positive integer, got {n_init!r}")
        self.n_init = int(n_init)

    # ---------------------------------------------------------------- written by subclasses

    def calc_conditional_mixture(self, x_NI):
        """(log_w_NK, mean_NKO, chol_KOO) of p(y | x) for every row of x_NI."""
        raise NotImplementedError

    def init_params(self, x_NI, y_NO, r_NK):
        """Set the parameters from initial responsibilities (an M-step from scratch)."""
        self.mstep__update_params(x_NI, y_NO, r_NK)

    # ---------------------------------------------------------------- the EM loop

    def init_responsibilities(self, x_NI, y_NO, rng, n_rounds=10):
        """Hard initial responsibilities from k-means on the joint rows [x, y].

        The centres start at K distinct random rows; each of the n_rounds (>= 1) assigns every row to
        its nearest centre (squared Euclidean distance) and then moves each centre to the mean of its
        rows (a centre with no rows stays). The last round's assignment gives r_nk = 1 for the row's
        cluster.
        """
        xy_ND = np.hstack([x_NI, y_NO])
        K = self.n_components
        centres_KD = xy_ND[rng.choice(xy_ND.shape[0], size=K, replace=xy_ND.shape[0] < K)]
        for _ in range(n_rounds):
            # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, and |x|^2 does not change which centre is nearest
            z_N = np.argmin(np.sum(centres_KD**2, axis=1) - 2 * xy_ND @ centres_KD.T, axis=1)
            for k in np.unique(z_N):
                centres_KD[k] = np.mean(xy_ND[z_N == k], axis=0)
        return np.eye(K)[z_N]

    def fit(self, X, y):
        """Fit by EM: n_init times, initialize by k-means, then alternate E- and M-steps until the
        objective stalls; keep the run whose final objective is best.

        ``history`` records the kept run's training objective (mean log likelihood per example) at
        the start of every iteration. A covariance that is not positive definite raises a ValueError.
        """
        x_NI, y_NO = check_xy(X, y)
        self.n_inputs_ = x_NI.shape[1]
        rng = as_random_state(self.random_state)  # one generator: each run starts elsewhere
        best_state = None
        for _ in range(self.n_init):
            self.run_em(x_NI, y_NO, self.init_responsibilities(x_NI, y_NO, rng))
            if best_state is None or self.history[-1] > best_state["history"][-1]:
                best_state = dict(vars(self))  # the fitted attributes of this run (no array is reused)
        vars(self).update(best_state)
        return self

    def run_em(self, x_NI, y_NO, r_NK):
        """One EM run from the responsibilities r_NK; sets the parameters and ``history``."""
        self.history = []
        try:
            self.init_params(x_NI, y_NO, r_NK)
            for _ in range(self.max_iter):
                r_NK, objective = self.estep__calc_r_NK(x_NI, y_NO)
                self.history.append(float(objective))
                if len(self.history) > 1 and self.history[-1] - self.history[-2] < self.tol:
                    break
                self.mstep__update_params(x_NI, y_NO, r_NK)
            else:
                warnings.warn(f"EM did not converge in {self.max_iter} iterations", stacklevel=3)
        except np.linalg.LinAlgError as err:
            raise ValueError(
                f"a covariance is not positive definite ({err}); "
                f"use a larger reg_covar (now {self.reg_covar:g})"
            ) from None

    # ---------------------------------------------------------------- using p(y | x)

    def score_samples(self, X, y):
        """Conditional log density of each target given its input.

        Parameters
        ----------
        X : array-like of shape (N, I)
        y : array-like of shape (N, O)

        Returns
        -------
        log_lik_N : np.ndarray of shape (N,)
            log p(y_n | x_n) under the fitted model.
        """
        x_NI, y_NO = check_xy(X, y)
        ### BEGIN SOLUTION
        log_w_NK, mean_NKO, chol_KOO = self.calc_conditional_mixture(x_NI)
        diff_NKO = y_NO[:, np.newaxis, :] - mean_NKO
        return np.asarray(calc_mixture_log_lik_N(log_w_NK, diff_NKO, chol_KOO))
        ### END SOLUTION

    def score(self, X, y):
        """Mean conditional log likelihood per example (a float)."""
        ### BEGIN SOLUTION
        return float(np.mean(self.score_samples(X, y)))
        ### END SOLUTION

    def predict(self, X):
        """Conditional mean E[y | x] for every row of X.

        Parameters
        ----------
        X : array-like of shape (N, I)

        Returns
        -------
        mean_NO : np.ndarray of shape (N, O)
            sum_k w_nk m_nk.
        """
        x_NI = check_xy(X)
        ### BEGIN SOLUTION
        log_w_NK, mean_NKO, _ = self.calc_conditional_mixture(x_NI)
        return np.einsum("nk,nko->no", np.exp(log_w_NK), mean_NKO)
        ### END SOLUTION

    def sample(self, X, n_samples=1, random_state=None):
        """Draw targets from p(y | x) for every row of X.

        Parameters
        ----------
        X : array-like of shape (N, I)
        n_samples : int, default=1
            Draws per row of X (S).
        random_state : int, RandomState or None
            The same integer gives the same draws.

        Returns
        -------
        y_NSO : np.ndarray of shape (N, S, O)
        """
        x_NI = check_xy(X)
        if int(n_samples) != n_samples or n_samples < 1:
            raise ValueError(f"n_samples should be a positive integer, got {n_samples!r}")
        ### BEGIN SOLUTION
        log_w_NK, mean_NKO, chol_KOO = self.calc_conditional_mixture(x_NI)
        return sample_mixture(log_w_NK, mean_NKO, chol_KOO, int(n_samples), as_random_state(random_state))
        ### END SOLUTION
