"""Unit 3 speed check: the model answer's EM sweep, run by run, against sklearn and a textbook EM.

    python benchmarks/bench_unit3_em.py [--repeats 3] [--threads N] [--skip-lbfgs]

Sweep: K in {1, 4, 8, 16} x seeds {1001, 3001, 4001, 7001}, 20 EM iterations, variance penalty
mode 25 and spread 100, the validation score after every iteration (as the notebook's Problem 1).

- "model answer": the solution's ``GMM_PenalizedMLEstimator_EM.fit``, sixteen separate fits (what a
  student's code does, and what the notebook runs).
- "sklearn": ``sklearn.mixture.GaussianMixture(covariance_type='diag')`` started from the same
  weights, means and standard deviations, made to take the same 20 iterations one at a time
  (``warm_start=True, max_iter=1``, called 20 times) with ``score(x_valid)`` after each.  Its
  variance update has no penalty (``reg_covar`` instead), so its scores differ slightly; only the
  time is compared.
- "textbook": the same penalized EM written in this file the way a textbook states it: for each
  component, z = (x - mu) / stddev for the log densities and the M-step sums by direct differences.

Targets (checked by eye, never asserted; tests do not time anything): model answer <= 0.5 x sklearn.
Timings are the best of ``--repeats`` rounds (each round runs the three sweeps one after the
other); the load average is printed beside them.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "solutions" / "unit3_gmm_em_lbfgs" / "src"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SRC))

from GMM_PenalizedMLEstimator_EM import GMM_PenalizedMLEstimator_EM  # noqa: E402
from train_LBFGS_gmm_with_many_runs import train_LBFGS_gmm_with_many_runs  # noqa: E402

from gmmcourse.data import load_tops  # noqa: E402

K_LIST = (1, 4, 8, 16)
SEEDS = (1001, 3001, 4001, 7001)
MODE, SPREAD, MAX_ITER = 25.0, 100.0, 20


def initial_parameters(x_ND, K, seed):
    """The start every method shares: the kit's own initialization recipe."""
    model = GMM_PenalizedMLEstimator_EM(K=K, D=x_ND.shape[1], seed=seed, variance_penalty_mode=MODE)
    return model.generate_initial_parameters(x_ND)


# ---------------------------------------------------------------------------- the three sweeps


def model_answer_sweep(x_ND, x_valid_ND):
    finals = []
    for K in K_LIST:
        for seed in SEEDS:
            model = GMM_PenalizedMLEstimator_EM(
                K=K,
                D=x_ND.shape[1],
                seed=seed,
                max_iter=MAX_ITER,
                ftol=0.0,
                variance_penalty_mode=MODE,
                variance_penalty_spread=SPREAD,
            )
            model.fit(x_ND, x_valid_ND, verbose=False)
            finals.append(model.history["valid_score_per_pixel"][-1])
    return np.array(finals)


def sklearn_sweep(x_ND, x_valid_ND):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    finals = []
    for K in K_LIST:
        for seed in SEEDS:
            log_pi_K, mu_KD, stddev_KD = initial_parameters(x_ND, K, seed)
            gm = GaussianMixture(
                n_components=K,
                covariance_type="diag",
                max_iter=1,
                tol=0.0,
                warm_start=True,
                weights_init=np.exp(log_pi_K),
                means_init=mu_KD,
                precisions_init=1.0 / stddev_KD**2,
                random_state=seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                for _ in range(MAX_ITER):
                    gm.fit(x_ND)
                    valid = gm.score(x_valid_ND) / x_valid_ND.shape[1]
            finals.append(valid)
    return np.array(finals)


def textbook_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD):
    columns = []
    for k in range(len(log_pi_K)):
        z_ND = (x_ND - mu_KD[k]) / stddev_KD[k]
        columns.append(
            log_pi_K[k]
            - 0.5 * np.sum(z_ND**2, axis=1)
            - np.sum(np.log(stddev_KD[k]))
            - 0.5 * x_ND.shape[1] * np.log(2 * np.pi)
        )
    return np.stack(columns, axis=1)


def textbook_em(x_ND, x_valid_ND, K, seed, m=MODE, s=SPREAD):
    log_pi_K, mu_KD, stddev_KD = initial_parameters(x_ND, K, seed)
    N, D = x_ND.shape
    for iter_id in range(MAX_ITER + 1):
        valid = np.sum(logsumexp(textbook_log_joint_NK(x_valid_ND, log_pi_K, mu_KD, stddev_KD), axis=1))
        if iter_id == MAX_ITER:
            break
        log_joint_NK = textbook_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD)
        r_NK = np.exp(log_joint_NK - logsumexp(log_joint_NK, axis=1, keepdims=True))
        N_K = r_NK.sum(axis=0)
        with np.errstate(divide="ignore"):
            log_pi_K = np.log(N_K / N)
        for k in range(K):
            if N_K[k] > 0:
                mu_KD[k] = r_NK[:, k] @ x_ND / N_K[k]
            sq_D = r_NK[:, k] @ (x_ND - mu_KD[k]) ** 2
            stddev_KD[k] = np.sqrt((1 / (s * m) + sq_D) / (1 / (s * m * m) + N_K[k]))
    return valid / x_valid_ND.size


def textbook_sweep(x_ND, x_valid_ND):
    return np.array([textbook_em(x_ND, x_valid_ND, K, seed) for K in K_LIST for seed in SEEDS])


# ---------------------------------------------------------------------------- timing


def best_times(functions, repeats):
    """Best wall time of each function over ``repeats`` rounds, and its last result.

    Each round runs every function once, one after the other, so that a change in the machine's
    load during the benchmark slows all of them alike instead of one.
    """
    best = [np.inf] * len(functions)
    results = [None] * len(functions)
    for _ in range(repeats):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            results[i] = function()
            best[i] = min(best[i], time.perf_counter() - start)
    return best, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit BLAS threads (threadpoolctl); default: as the environment says",
    )
    parser.add_argument("--skip-lbfgs", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads, user_api="blas")
    x_ND, x_valid_ND = load_tops("train"), load_tops("valid")
    print(
        f"data: train {x_ND.shape}, valid {x_valid_ND.shape}; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; repeats {args.repeats}"
    )
    (t_model, t_sk, t_book), (s_model, s_sk, s_book) = best_times(
        [
            lambda: model_answer_sweep(x_ND, x_valid_ND),
            lambda: sklearn_sweep(x_ND, x_valid_ND),
            lambda: textbook_sweep(x_ND, x_valid_ND),
        ],
        args.repeats,
    )
    print(f"EM sweep (16 runs x {MAX_ITER} iterations, valid score every iteration), best of {args.repeats}:")
    print(f"  model answer, run by run  {t_model:7.2f} s")
    print(
        f"  sklearn GaussianMixture   {t_sk:7.2f} s   model answer / sklearn  = {t_model / t_sk:.2f}"
        "  (target <= 0.5)"
    )
    print(f"  textbook EM (this file)   {t_book:7.2f} s   model answer / textbook = {t_model / t_book:.2f}")
    print(
        f"  final valid scores: model answer vs textbook agree to "
        f"{np.max(np.abs(s_model - s_book)):.1e} per pixel; vs sklearn (no penalty) to "
        f"{np.max(np.abs(s_model - s_sk)):.1e}"
    )
    if not args.skip_lbfgs:
        start = time.perf_counter()
        train_LBFGS_gmm_with_many_runs(x_ND, x_valid_ND, K_list=K_LIST, seed_list=SEEDS, max_iter=30)
        print(f"L-BFGS sweep (16 runs, at most 30 iterations): {time.perf_counter() - start:.1f} s")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
