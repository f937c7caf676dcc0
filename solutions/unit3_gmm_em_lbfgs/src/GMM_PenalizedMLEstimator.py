"""Base class for a diagonal-covariance Gaussian mixture fit by penalized maximum likelihood.

The model has K components over D features.  It is fit by minimizing

    loss = penalty(stddev_KD) - sum_n log sum_k pi_k prod_d Normal(x_nd | mu_kd, stddev_kd**2)

(see calc_penalty_stddev.py for the penalty).  This class holds the parameters and everything the two
fitting methods share: hyperparameters, initialization, scoring, and the per-iteration history.  The
subclasses GMM_PenalizedMLEstimator_EM and GMM_PenalizedMLEstimator_LBFGS each add a ``fit``.

Parameters are stored as
- ``log_pi_K`` (K,): log mixture weights; logsumexp(log_pi_K) = 0.  A component that owns no data at
  all has weight exactly 0, stored as -inf; every method handles that without NaN.
- ``mu_KD`` (K, D): means.
- ``stddev_KD`` (K, D): standard deviations, all positive.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> model = GMM_PenalizedMLEstimator(K=2, D=1, seed=0)
>>> model.set_params(np.log([0.5, 0.5]), np.array([[0.0], [1.0]]), np.ones((2, 1)))
>>> round(model.score(np.array([[0.0], [1.0]])), 4)
-2.276
>>> model.get_params()["mu_KD"]
array([[0.],
       [1.]])
"""

import csv
import os
from pathlib import Path

import numpy as np
from calc_neg_log_lik__np import calc_neg_log_lik
from calc_penalty_stddev import calc_penalty_stddev
from scipy.special import logsumexp

# Hyperparameter rules, checked once in the constructor: name -> (test, description).
_HYPERPARAMETER_RULES = {
    "K": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "D": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "variance_penalty_mode": (lambda v: _is_real(v) and 0 < v < np.inf, "a finite number > 0"),
    "variance_penalty_spread": (lambda v: _is_real(v) and 0 < v < np.inf, "a finite number > 0"),
    "max_iter": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "ftol": (lambda v: _is_real(v) and 0 <= v < np.inf, "a finite number >= 0"),
    "do_double_check_correctness": (lambda v: isinstance(v, bool | np.bool_), "True or False"),
}

HISTORY_KEYS = ("iter", "train_loss", "train_loss_per_pixel", "train_score_per_pixel")
VALID_KEY = "valid_score_per_pixel"


def _is_int(value):
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_real(value):
    return _is_int(value) or isinstance(value, float | np.floating)


def per_pixel(total, N, D):
    """``total / (N * D)``, where an empty data set (N = 0) counts as one example."""
    return float(total) / (max(N, 1) * D)


class GMM_PenalizedMLEstimator:
    """Diagonal Gaussian mixture with a penalty on the standard deviations.

    Parameters
    ----------
    K : int
        Number of components.
    D : int
        Number of features.
    seed : int
        Seed of the ``numpy.random.RandomState`` used for initialization.
    variance_penalty_mode : float
        m: each standard deviation's penalty is smallest at sqrt(m).
    variance_penalty_spread : float
        s: larger means a weaker penalty.
    max_iter : int
        Most iterations ``fit`` runs.
    ftol : float
        ``fit`` stops early once the relative decrease of the loss,
        (previous - current) / max(|previous|, |current|, 1), is at most ftol.
    do_double_check_correctness : bool
        If True, ``fit`` checks invariants along the way and raises AssertionError when one fails.

    Attributes
    ----------
    log_pi_K, mu_KD, stddev_KD : np.ndarray
        The parameters; they exist once fit or set_params has run (or after assigning them).
    history : dict of lists
        Filled by ``fit``: one entry per iteration, entry 0 for the initial parameters.
    """

    def __init__(
        self,
        K=1,
        D=1,
        seed=42,
        variance_penalty_mode=1.0,
        variance_penalty_spread=100.0,
        max_iter=1000,
        ftol=1e-9,
        do_double_check_correctness=False,
    ):
        values = dict(
            K=K,
            D=D,
            seed=seed,
            variance_penalty_mode=variance_penalty_mode,
            variance_penalty_spread=variance_penalty_spread,
            max_iter=max_iter,
            ftol=ftol,
            do_double_check_correctness=do_double_check_correctness,
        )
        for name, value in values.items():
            is_ok, description = _HYPERPARAMETER_RULES[name]
            if not is_ok(value):
                raise ValueError(f"{name} must be {description}, got {value!r}")
        self.K = int(K)
        self.D = int(D)
        self.seed = int(seed)
        self.variance_penalty_mode = float(variance_penalty_mode)
        self.variance_penalty_spread = float(variance_penalty_spread)
        self.max_iter = int(max_iter)
        self.ftol = float(ftol)
        self.do_double_check_correctness = bool(do_double_check_correctness)
        # The parameters log_pi_K, mu_KD and stddev_KD do not exist until fit (or set_params, or
        # plain assignment) creates them, so ``hasattr(model, "log_pi_K")`` says whether a model
        # has parameters yet.
        self.history = {}

    # ------------------------------------------------------------------ parameters

    def get_params(self):
        """Copies of the parameters.

        Returns
        -------
        params : dict
            'log_pi_K' (K,), 'mu_KD' (K, D), 'stddev_KD' (K, D), each a new array.
        """
        self._require_params()
        return dict(log_pi_K=self.log_pi_K.copy(), mu_KD=self.mu_KD.copy(), stddev_KD=self.stddev_KD.copy())

    def set_params(self, log_pi_K, mu_KD, stddev_KD):
        """Set the parameters after checking them (the arrays are copied).

        Parameters
        ----------
        log_pi_K : array-like, shape (K,)
            Log weights: no NaN or +inf, and logsumexp(log_pi_K) = 0 within 1e-8.
        mu_KD : array-like, shape (K, D)
            Finite means.
        stddev_KD : array-like, shape (K, D)
            Finite, positive standard deviations.

        Raises
        ------
        ValueError
            Naming the parameter, with the expected and actual shape or the offending value.
        """
        log_pi_K = self._as_array(log_pi_K, "log_pi_K", (self.K,))
        mu_KD = self._as_array(mu_KD, "mu_KD", (self.K, self.D))
        stddev_KD = self._as_array(stddev_KD, "stddev_KD", (self.K, self.D))
        if np.any(np.isnan(log_pi_K)) or np.any(log_pi_K == np.inf):
            raise ValueError(f"log_pi_K must not contain NaN or +inf, got {log_pi_K}")
        total = float(logsumexp(log_pi_K))
        if not abs(total) <= 1e-8:
            raise ValueError(f"log_pi_K must be normalized (logsumexp = 0), but got logsumexp = {total}")
        if not np.all(np.isfinite(mu_KD)):
            raise ValueError("mu_KD must be finite, but it contains NaN or inf")
        if not np.all((stddev_KD > 0) & np.isfinite(stddev_KD)):
            bad = stddev_KD[~((stddev_KD > 0) & np.isfinite(stddev_KD))]
            raise ValueError(f"stddev_KD must be finite and positive, but got the value {bad.flat[0]}")
        self.log_pi_K, self.mu_KD, self.stddev_KD = log_pi_K, mu_KD, stddev_KD

    @staticmethod
    def _as_array(value, name, shape):
        array = np.array(value, dtype=np.float64)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, but got shape {array.shape}")
        return array

    def _require_params(self):
        if not all(hasattr(self, name) for name in ("log_pi_K", "mu_KD", "stddev_KD")):
            raise ValueError("this model has no parameters yet: call fit or set_params first")

    def _check_x(self, x_ND, name="x_ND"):
        """Data as a float64 (N, D) array with D = self.D and finite values (N = 0 is allowed)."""
        x_ND = np.asarray(x_ND, dtype=np.float64)
        if x_ND.ndim != 2 or x_ND.shape[1] != self.D:
            raise ValueError(f"{name} must have shape (N, {self.D}), but got shape {x_ND.shape}")
        # (a finite sum means every value is finite, and costs less to check)
        if not np.isfinite(np.sum(x_ND)) and not np.all(np.isfinite(x_ND)):
            raise ValueError(f"{name} must be finite, but it contains NaN or inf")
        return x_ND

    # ------------------------------------------------------------------ scores

    def score(self, x_ND):
        """Log likelihood of a data set under the current parameters (no penalty).

        Parameters
        ----------
        x_ND : array-like, shape (N, D)

        Returns
        -------
        log_lik : float
            sum_n log p(x_n); 0.0 for N = 0.
        """
        self._require_params()
        x_ND = self._check_x(x_ND)
        # "0.0 -" rather than unary minus, so that no data gives 0.0 and not -0.0
        return 0.0 - calc_neg_log_lik(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD)

    def calc_penalty_stddev(self):
        """Penalty of the current standard deviations (float)."""
        self._require_params()
        return float(
            calc_penalty_stddev(self.stddev_KD, self.variance_penalty_mode, self.variance_penalty_spread)
        )

    # ------------------------------------------------------------------ initialization

    def generate_initial_parameters(self, x_ND):
        """Initial parameters drawn from ``numpy.random.RandomState(self.seed)``.

        Recipe, in this order, all draws from ONE generator ``prng = RandomState(self.seed)``:

        1. Weights are uniform: log_pi_K = log(1 / K) for every component.
        2. Means are K distinct training rows: ``mu_KD = x_ND[prng.choice(N, K, replace=False)]``.
           With fewer rows than components (0 < N < K), the data are first padded to exactly K rows
           with randomly repeated rows, ``x_ND = vstack([x_ND, x_ND[prng.choice(N, K - N,
           replace=True)]])``, and then step 2 runs on the padded array (so N becomes K).
           With no rows at all (N = 0), ``mu_KD = prng.randn(K, D)``.
        3. ``stddev_KD = sqrt(m) * (1 + prng.rand(K, D))`` with m = variance_penalty_mode, so
           every initial standard deviation lies between sqrt(m) and 2 sqrt(m).

        Parameters
        ----------
        x_ND : array-like, shape (N, D)
            Training data.

        Returns
        -------
        log_pi_K : np.ndarray, shape (K,)
        mu_KD : np.ndarray, shape (K, D)
        stddev_KD : np.ndarray, shape (K, D)
        """
        x_ND = self._check_x(x_ND)
        K, D = self.K, self.D
        prng = np.random.RandomState(self.seed)
        log_pi_K = np.full(K, -np.log(K))
        N = x_ND.shape[0]
        if N == 0:
            mu_KD = prng.randn(K, D)
        else:
            if N < K:
                x_ND = np.vstack([x_ND, x_ND[prng.choice(N, K - N, replace=True)]])
            mu_KD = x_ND[prng.choice(x_ND.shape[0], K, replace=False)].copy()
        stddev_KD = np.sqrt(self.variance_penalty_mode) * (1.0 + prng.rand(K, D))
        return log_pi_K, mu_KD, stddev_KD

    # ------------------------------------------------------------------ history

    def start_fit(self, x_ND, x_valid_ND=None):
        """The start every ``fit`` shares: check the data, draw the initial parameters, empty the history.

        Returns
        -------
        x_ND : np.ndarray, shape (N, D)
        x_valid_ND : np.ndarray, shape (M, D), or None
        N, N_valid : int
            Numbers of training and validation examples (N_valid = 0 without validation data).
        """
        x_ND = self._check_x(x_ND, "x_ND")
        if x_valid_ND is not None:
            x_valid_ND = self._check_x(x_valid_ND, "x_valid_ND")
        self.log_pi_K, self.mu_KD, self.stddev_KD = self.generate_initial_parameters(x_ND)
        self.start_history(has_valid=x_valid_ND is not None)
        return x_ND, x_valid_ND, x_ND.shape[0], 0 if x_valid_ND is None else x_valid_ND.shape[0]

    def start_history(self, has_valid):
        """Empty ``self.history``: lists for every key (plus the validation key if ``has_valid``)."""
        keys = HISTORY_KEYS + ((VALID_KEY,) if has_valid else ())
        self.history = {key: [] for key in keys}

    def record_iteration(self, train_loss, train_score, valid_score, N, N_valid, verbose=False, label="fit"):
        """Append one entry to ``self.history`` and say whether the loss has stopped improving.

        Parameters
        ----------
        train_loss : float
            Penalized negative log likelihood of the training data (the quantity being minimized).
        train_score : float
            Log likelihood of the training data (no penalty).
        valid_score : float or None
            Log likelihood of the validation data, or None without validation data.
        N, N_valid : int
            Number of training and validation examples (per-pixel values divide by N * D).
        verbose : bool
            Print a one-line summary of this entry.
        label : str
            Short name printed at the start of the line.

        Returns
        -------
        converged : bool
            True when this is not the first entry and the relative loss decrease since the previous
            entry, (previous - current) / max(|previous|, |current|, 1), is at most ftol.
        """
        history = self.history
        iter_id = len(history["iter"])
        history["iter"].append(iter_id)
        history["train_loss"].append(float(train_loss))
        history["train_loss_per_pixel"].append(per_pixel(train_loss, N, self.D))
        history["train_score_per_pixel"].append(per_pixel(train_score, N, self.D))
        if VALID_KEY in history:
            history[VALID_KEY].append(per_pixel(valid_score, N_valid, self.D))
        if verbose:
            line = (
                f"{label} K={self.K} seed={self.seed} iter {iter_id:4d}: "
                f"loss/pixel {history['train_loss_per_pixel'][-1]: .6f}  "
                f"train score/pixel {history['train_score_per_pixel'][-1]: .6f}"
            )
            if VALID_KEY in history:
                line += f"  valid score/pixel {history[VALID_KEY][-1]: .6f}"
            print(line)
        if iter_id == 0:
            return False
        previous, current = history["train_loss"][-2], history["train_loss"][-1]
        scale = max(abs(previous), abs(current), 1.0)
        return (previous - current) / scale <= self.ftol

    def write_history_to_csv(self, path):
        """Write ``self.history`` as a CSV file with one column per key and one row per iteration.

        Parameters
        ----------
        path : str or PathLike
            Destination file; its folder is created if needed.
        """
        if not self.history:
            raise ValueError("there is no history to write: call fit first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.history)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(keys)
            for row in zip(*(self.history[key] for key in keys), strict=True):
                writer.writerow([repr(value) for value in row])
        os.replace(tmp, path)
