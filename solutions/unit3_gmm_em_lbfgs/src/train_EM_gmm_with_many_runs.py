"""Fit the EM estimator for every number of components K and every seed, and keep all the results.

Use it from Python (``train_EM_gmm_with_many_runs(...)`` returns the runs) or from a shell:

    python train_EM_gmm_with_many_runs.py --output_dir out/em [--data_dir DATA/tops]

which fits K in {1, 4, 8, 16} times seeds {1001, 3001, 4001, 7001} for 20 iterations with
variance_penalty_mode 25 and variance_penalty_spread 100, and writes, for every run, the history
``history_K08_seed1001.csv`` and the fitted parameters ``params_K08_seed1001.npz`` into the output
folder (which must be given: nothing is ever written to the current folder by default).

The functions here are shared with train_LBFGS_gmm_with_many_runs.py.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from calc_neg_log_lik__np import calc_neg_log_lik
from GMM_PenalizedMLEstimator_EM import GMM_PenalizedMLEstimator_EM

DEFAULT_K_LIST = (1, 4, 8, 16)
DEFAULT_SEED_LIST = (1001, 3001, 4001, 7001)


def run_name(K, seed):
    """File-name stem of one run, e.g. 'K08_seed1001'."""
    return f"K{K:02d}_seed{seed}"


def train_many_runs(
    estimator_class,
    x_train_ND,
    x_valid_ND,
    K_list,
    seed_list,
    output_dir=None,
    verbose=False,
    **estimator_kwargs,
):
    """Fit ``estimator_class`` once per (K, seed) pair.

    Parameters
    ----------
    estimator_class : type
        GMM_PenalizedMLEstimator_EM or GMM_PenalizedMLEstimator_LBFGS.
    x_train_ND : np.ndarray, shape (N, D)
    x_valid_ND : np.ndarray, shape (M, D) or None
    K_list, seed_list : sequences of int
    output_dir : str or PathLike, optional
        If given, every run's history (CSV) and parameters (NPZ) are written there.
    verbose : bool
        Passed on to ``fit``.
    **estimator_kwargs
        Other constructor arguments (max_iter, variance_penalty_mode, ...). D is taken from the data.

    Returns
    -------
    runs : list of dict
        One per run, in the order K then seed, with keys 'K', 'seed', 'history' (dict of lists),
        'params' (dict with log_pi_K, mu_KD, stddev_KD) and 'message' (why an L-BFGS fit
        stopped; None for EM).
    """
    D = x_train_ND.shape[1]
    models = [
        estimator_class(K=int(K), D=D, seed=int(seed), **estimator_kwargs)
        for K in K_list
        for seed in seed_list
    ]
    runs = []
    for model in models:
        model.fit(x_train_ND, x_valid_ND, verbose=verbose)
        history = {key: list(values) for key, values in model.history.items()}
        run = dict(
            K=model.K,
            seed=model.seed,
            history=history,
            params=model.get_params(),
            message=getattr(model, "message", None),
        )
        runs.append(run)
        if output_dir is not None:
            folder = Path(output_dir)
            folder.mkdir(parents=True, exist_ok=True)
            model.write_history_to_csv(folder / f"history_{run_name(model.K, model.seed)}.csv")
            np.savez(folder / f"params_{run_name(model.K, model.seed)}.npz", **run["params"])
    return runs


def train_EM_gmm_with_many_runs(
    x_train_ND,
    x_valid_ND,
    K_list=DEFAULT_K_LIST,
    seed_list=DEFAULT_SEED_LIST,
    output_dir=None,
    max_iter=20,
    variance_penalty_mode=25.0,
    variance_penalty_spread=100.0,
    ftol=1e-9,
    verbose=False,
):
    """EM fits for every (K, seed) pair; see ``train_many_runs`` for the arguments and result."""
    return train_many_runs(
        GMM_PenalizedMLEstimator_EM,
        x_train_ND,
        x_valid_ND,
        K_list,
        seed_list,
        output_dir=output_dir,
        verbose=verbose,
        max_iter=max_iter,
        ftol=ftol,
        variance_penalty_mode=variance_penalty_mode,
        variance_penalty_spread=variance_penalty_spread,
    )


def best_run_per_K(runs, key="valid_score_per_pixel"):
    """For each K, the run whose last history entry has the largest ``key``.

    Returns
    -------
    best : dict
        K -> run (one of the dicts in ``runs``).
    """
    best = {}
    for run in runs:
        K = run["K"]
        if K not in best or run["history"][key][-1] > best[K]["history"][key][-1]:
            best[K] = run
    return best


def table_of_best_runs(runs, x_valid_ND, x_test_ND):
    """Rows for the results table: the best run per K (by validation score) scored on valid and test.

    Returns
    -------
    rows : list of dict
        Keys 'K', 'seed', 'valid_score_per_pixel', 'test_score_per_pixel', sorted by K.
    """
    rows = []
    for K, run in sorted(best_run_per_K(runs).items()):
        p = run["params"]
        row = dict(K=K, seed=run["seed"])
        for name, x_ND in (("valid", x_valid_ND), ("test", x_test_ND)):
            log_lik = -calc_neg_log_lik(x_ND, p["log_pi_K"], p["mu_KD"], p["stddev_KD"])
            row[f"{name}_score_per_pixel"] = log_lik / x_ND.size
        rows.append(row)
    return rows


def parse_args(argv, description, default_max_iter):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data_dir",
        default=None,
        help="folder with the tops CSV files (default: $GMMCOURSE_DATA/tops, ./data/tops, "
        "../data/tops or ../../data/tops)",
    )
    parser.add_argument("--output_dir", required=True, help="folder for histories and parameters")
    parser.add_argument("--K_list", type=int, nargs="+", default=list(DEFAULT_K_LIST))
    parser.add_argument("--seed_list", type=int, nargs="+", default=list(DEFAULT_SEED_LIST))
    parser.add_argument("--max_iter", type=int, default=default_max_iter)
    parser.add_argument("--ftol", type=float, default=1e-9)
    parser.add_argument("--variance_penalty_mode", type=float, default=25.0)
    parser.add_argument("--variance_penalty_spread", type=float, default=100.0)
    parser.add_argument("--verbose", action="store_true", help="print one line per iteration")
    return parser.parse_args(argv)


def run_from_command_line(train_function, argv, description, default_max_iter):
    """Shared ``main``: load the data, train, write the results, print the best run per K."""
    # the course's one data reader; the kit puts course_data.py beside this file in the release
    from course_data import DataError, load_tops

    args = parse_args(argv, description, default_max_iter)
    try:
        x_train_ND = load_tops("train", args.data_dir)
        x_valid_ND = load_tops("valid", args.data_dir)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runs = train_function(
        x_train_ND,
        x_valid_ND,
        K_list=args.K_list,
        seed_list=args.seed_list,
        output_dir=args.output_dir,
        max_iter=args.max_iter,
        ftol=args.ftol,
        variance_penalty_mode=args.variance_penalty_mode,
        variance_penalty_spread=args.variance_penalty_spread,
        verbose=args.verbose,
    )
    for K, run in sorted(best_run_per_K(runs).items()):
        print(
            f"K={K:2d}: best seed {run['seed']}, valid score per pixel "
            f"{run['history']['valid_score_per_pixel'][-1]:.5f}"
        )
    print(f"wrote {2 * len(runs)} files to {args.output_dir}")
    return 0


def main(argv=None):
    return run_from_command_line(
        train_EM_gmm_with_many_runs,
        argv,
        "Fit the penalized GMM by EM for many K and seeds.",
        default_max_iter=20,
    )


if __name__ == "__main__":
    sys.exit(main())
