"""Fit the EM estimator for every number of components K and every seed, and keep all the results.

Use it from Python (``train_EM_gmm_with_many_runs(...)`` returns the runs) or from a shell:

    python train_EM_gmm_with_many_runs.py --data_dir DATA/tops --output_dir out/em

which fits K in {1, 4, 8, 16} times seeds {1001, 3001, 4001, 7001} for 20 iterations with
variance_penalty_mode 25 and variance_penalty_spread 100, and writes, for every run, the history
``history_K08_seed1001.csv`` and the fitted parameters ``params_K08_seed1001.npz`` into the output
folder (which must be given: nothing is ever written to the current folder by default).

With ``--batched`` (or ``batched=True``) all runs are fitted together: their components are stacked
side by side, so each iteration needs one large matrix product over the data instead of one small
product per run.  Small products leave the processor mostly waiting for memory, so this is several
times faster.  The results are the same as fitting run by run (up to rounding); it only works once
calc_log_joint_NK and the M-step functions are written, and it skips the optional double checks.

The functions here are shared with train_LBFGS_gmm_with_many_runs.py.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from calc_neg_log_lik__np import calc_log_joint_NK, calc_neg_log_lik
from GMM_PenalizedMLEstimator_EM import RESPONSIBILITY_FLOOR, GMM_PenalizedMLEstimator_EM
from prepared_data import PreparedData

DEFAULT_K_LIST = (1, 4, 8, 16)
DEFAULT_SEED_LIST = (1001, 3001, 4001, 7001)
TOPS_FILE = "tops-20x20flattened_x_{split}.csv"
NEGLIGIBLE_LOG_WEIGHT = -50.0  # see _log_lik_and_r_by_block


def load_tops_csv(data_dir, split):
    """Read one split of the tops data.

    Args
    ----
    data_dir : str or PathLike
        Folder holding tops-20x20flattened_x_{train,valid,test}.csv.
    split : {'train', 'valid', 'test'}

    Returns
    -------
    x_ND : np.ndarray, shape (N, 400)
        Pixel values, about -1 (background) to 1.
    """
    path = Path(data_dir) / TOPS_FILE.format(split=split)
    if not path.is_file():
        raise FileNotFoundError(f"no tops data file at {path}")
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)


def run_name(K, seed):
    """File-name stem of one run, e.g. 'K08_seed1001'."""
    return f"K{K:02d}_seed{seed}"


def fit_EM_runs_together(models, x_ND, x_valid_ND=None, verbose=False):
    """Fit several EM models on the same data at once, exactly as their own ``fit`` would.

    Every model is initialized by its own ``start_fit`` (as in ``fit``) and keeps its own
    history, stopping rule (its max_iter and ftol) and parameters.  Per iteration, the log densities
    of all components of all still-running models come from one ``calc_log_joint_NK`` call, and the
    means and standard deviations from one call each of the M-step functions, on a stacked model
    that holds every component side by side.  Those functions treat components independently, so
    stacking changes nothing but speed.  Responsibilities and weights are normalized model by model.

    Args
    ----
    models : list of GMM_PenalizedMLEstimator_EM
        Unfitted models with the same D, variance_penalty_mode and variance_penalty_spread.
    x_ND : array-like, shape (N, D)
    x_valid_ND : array-like, shape (M, D), optional
    verbose : bool

    Returns
    -------
    models : the same list, every model fitted.

    Arrays here are laid out component by component, (K, N) rather than (N, K), so that every
    model's block of components is a contiguous block of rows and each per-model operation runs
    along long contiguous rows.
    """
    first = models[0]
    for model in models:
        if (model.D, model.variance_penalty_mode, model.variance_penalty_spread) != (
                first.D, first.variance_penalty_mode, first.variance_penalty_spread):
            raise ValueError("models fitted together need the same D, variance_penalty_mode and "
                             "variance_penalty_spread")
    x_ND = first._check_x(x_ND, "x_ND")
    train, valid = PreparedData(x_ND), None
    if x_valid_ND is not None:
        valid = PreparedData(first._check_x(x_valid_ND, "x_valid_ND"))
    for model in models:
        model.start_fit(x_ND, x_valid_ND)
    N, N_valid = train.shape[0], 0 if valid is None else valid.shape[0]
    running = list(models)
    r_KN, layout = None, {}  # responsibilities of the last E-step; model -> its rows there
    for iter_id in range(max(model.max_iter for model in models) + 1):
        stacked = GMM_PenalizedMLEstimator_EM(K=sum(model.K for model in running), D=first.D,
                                              variance_penalty_mode=first.variance_penalty_mode,
                                              variance_penalty_spread=first.variance_penalty_spread)
        stacked.log_pi_K = np.concatenate([model.log_pi_K for model in running])
        stacked.mu_KD = np.concatenate([model.mu_KD for model in running])
        stacked.stddev_KD = np.concatenate([model.stddev_KD for model in running])
        ends = np.cumsum([model.K for model in running])
        starts = ends - np.array([model.K for model in running])
        if iter_id > 0:
            if len(running) < len(layout):  # some models stopped after the last E-step
                r_KN = np.concatenate([r_KN[layout[id(model)]] for model in running])
            r_NK = r_KN.T
            r_NK.flags.writeable = False  # read-only r lets the two M-steps share a matrix product
            stacked.mu_KD = stacked.mstep__update_mu_KD(r_NK, train)
            stacked.stddev_KD = stacked.mstep__update_stddev_KD(r_NK, train)
            # the weights depend on r only through its column sums, so one row of sums stands in
            # for each model's block of r
            count_1K = np.sum(r_NK, axis=0, keepdims=True)
            for model, a, b in zip(running, starts, ends, strict=True):
                model.log_pi_K = model.mstep__update_log_pi_K(count_1K[:, a:b])
                model.mu_KD, model.stddev_KD = stacked.mu_KD[a:b].copy(), stacked.stddev_KD[a:b].copy()
                stacked.log_pi_K[a:b] = model.log_pi_K

        log_lik_MN, r_KN = _estep_by_block(train, stacked, starts, need_r=True)
        layout = {id(model): slice(a, b) for model, a, b in zip(running, starts, ends, strict=True)}
        train_score_M = np.sum(log_lik_MN, axis=1)
        if valid is not None:
            valid_score_M = np.sum(_estep_by_block(valid, stacked, starts, need_r=False)[0], axis=1)
        still_running = []
        for index, model in enumerate(running):
            train_score = float(train_score_M[index])
            valid_score = None if valid is None else float(valid_score_M[index])
            converged = model.record_iteration(model.calc_penalty_stddev() - train_score, train_score,
                                               valid_score, N, N_valid, verbose=verbose, label="EM")
            if not converged and iter_id < model.max_iter:
                still_running.append(model)
        running = still_running
        if not running:
            break
    return models


def _estep_by_block(data, stacked, starts_M, need_r):
    """E-step of the stacked model, normalized model by model; arrays are (K, N) (see below)."""
    log_joint_NK = calc_log_joint_NK(data, stacked.log_pi_K, stacked.mu_KD, stacked.stddev_KD)
    # the solution's calc_log_joint_NK already stores it component by component: no copy then
    log_joint_KN = np.require(log_joint_NK.T, requirements=["C", "W"])
    return _log_lik_and_r_by_block(log_joint_KN, starts_M, need_r=need_r)


def _log_lik_and_r_by_block(log_joint_KN, starts_M, need_r=True):
    """Log-sum-exp and normalized responsibilities within each block of rows (components).

    Args
    ----
    log_joint_KN : np.ndarray, shape (K, N), C-contiguous
        Components of M models stacked; model j owns rows starts_M[j] up to the next start.
        Overwritten.
    starts_M : np.ndarray of int, shape (M,)
    need_r : bool
        If False, skip the responsibilities (only the log likelihoods are needed).

    Returns
    -------
    log_lik_MN : np.ndarray, shape (M, N)
        Per model, the log likelihood of every example.
    r_KN : np.ndarray, shape (K, N) or None
        Responsibilities (log_joint_KN itself, overwritten), each block's columns summing to 1.  As
        in the EM fit, entries whose weight is below RESPONSIBILITY_FLOOR times the largest weight
        of their column and block are exactly 0 (they change no sum by more than K * 1e-300
        relative).  When only the likelihoods are needed, weights below exp(-50) ~ 2e-22 times
        the largest are left out of the sums: even ten thousand of them change a sum that is at
        least 1 by less than half a unit in the last place.
    """
    K, N = log_joint_KN.shape
    blocks = list(zip(starts_M, np.append(starts_M[1:], K), strict=True))
    top_MN = np.empty((len(blocks), N))
    for j, (a, b) in enumerate(blocks):
        np.max(log_joint_KN[a:b], axis=0, out=top_MN[j])
    top_MN[~np.isfinite(top_MN)] = 0.0  # a column without any finite entry stays -inf below
    # work in place: log_joint_KN becomes the shifted log weights, then the weights themselves
    weight_KN = log_joint_KN
    for j, (a, b) in enumerate(blocks):
        weight_KN[a:b] -= top_MN[j]
    # exp only where the weight matters: at least the floor for responsibilities, at least
    # exp(NEGLIGIBLE_LOG_WEIGHT) for likelihoods alone (NaN fails both tests, so it becomes 0)
    flat = weight_KN.reshape(-1)  # a view: the array is C-contiguous
    keep = np.flatnonzero(flat >= (np.log(RESPONSIBILITY_FLOOR) if need_r else NEGLIGIBLE_LOG_WEIGHT))
    kept = np.exp(flat[keep])
    flat.fill(0.0)
    flat[keep] = kept
    total_MN = np.empty((len(blocks), N))
    for j, (a, b) in enumerate(blocks):
        np.sum(weight_KN[a:b], axis=0, out=total_MN[j])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lik_MN = top_MN + np.log(total_MN)
        if not need_r:
            return log_lik_MN, None
        inverse_MN = 1.0 / total_MN
    for j, (a, b) in enumerate(blocks):
        weight_KN[a:b] *= inverse_MN[j]
    return log_lik_MN, weight_KN


def train_many_runs(estimator_class, x_train_ND, x_valid_ND, K_list, seed_list, output_dir=None,
                    verbose=False, batched=False, **estimator_kwargs):
    """Fit ``estimator_class`` once per (K, seed) pair.

    Args
    ----
    estimator_class : type
        GMM_PenalizedMLEstimator_EM or GMM_PenalizedMLEstimator_LBFGS.
    x_train_ND : np.ndarray, shape (N, D)
    x_valid_ND : np.ndarray, shape (M, D) or None
    K_list, seed_list : sequences of int
    output_dir : str or PathLike, optional
        If given, every run's history (CSV) and parameters (NPZ) are written there.
    verbose : bool
        Passed on to ``fit``.
    batched : bool
        Fit all runs together with ``fit_EM_runs_together`` (EM only; same results, faster).
    **estimator_kwargs
        Other constructor arguments (max_iter, variance_penalty_mode, ...). D is taken from the data.

    Returns
    -------
    runs : list of dict
        One per run, in the order K then seed, with keys 'K', 'seed', 'history' (dict of lists)
        and 'params' (dict with log_pi_K, mu_KD, stddev_KD).
    """
    D = x_train_ND.shape[1]
    models = [estimator_class(K=int(K), D=D, seed=int(seed), **estimator_kwargs)
              for K in K_list for seed in seed_list]
    if batched:
        if not issubclass(estimator_class, GMM_PenalizedMLEstimator_EM):
            raise ValueError("batched=True works for the EM estimator only")
        fit_EM_runs_together(models, x_train_ND, x_valid_ND, verbose=verbose)
    runs = []
    for model in models:
        if not batched:
            model.fit(x_train_ND, x_valid_ND, verbose=verbose)
        history = {key: list(values) for key, values in model.history.items()}
        run = dict(K=model.K, seed=model.seed, history=history, params=model.get_params())
        runs.append(run)
        if output_dir is not None:
            folder = Path(output_dir)
            folder.mkdir(parents=True, exist_ok=True)
            model.write_history_to_csv(folder / f"history_{run_name(model.K, model.seed)}.csv")
            np.savez(folder / f"params_{run_name(model.K, model.seed)}.npz", **run["params"])
    return runs


def train_EM_gmm_with_many_runs(x_train_ND, x_valid_ND, K_list=DEFAULT_K_LIST, seed_list=DEFAULT_SEED_LIST,
                                output_dir=None, max_iter=20, variance_penalty_mode=25.0,
                                variance_penalty_spread=100.0, ftol=1e-9, verbose=False, batched=False):
    """EM fits for every (K, seed) pair; see ``train_many_runs`` for the arguments and result."""
    return train_many_runs(GMM_PenalizedMLEstimator_EM, x_train_ND, x_valid_ND, K_list, seed_list,
                           output_dir=output_dir, verbose=verbose, batched=batched, max_iter=max_iter,
                           ftol=ftol,
                           variance_penalty_mode=variance_penalty_mode,
                           variance_penalty_spread=variance_penalty_spread)


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


def parse_args(argv, description, default_max_iter, batched_option=False):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data_dir", required=True, help="folder with the tops CSV files")
    parser.add_argument("--output_dir", required=True, help="folder for histories and parameters")
    parser.add_argument("--K_list", type=int, nargs="+", default=list(DEFAULT_K_LIST))
    parser.add_argument("--seed_list", type=int, nargs="+", default=list(DEFAULT_SEED_LIST))
    parser.add_argument("--max_iter", type=int, default=default_max_iter)
    parser.add_argument("--ftol", type=float, default=1e-9)
    parser.add_argument("--variance_penalty_mode", type=float, default=25.0)
    parser.add_argument("--variance_penalty_spread", type=float, default=100.0)
    parser.add_argument("--verbose", action="store_true", help="print one line per iteration")
    if batched_option:
        parser.add_argument("--batched", action="store_true",
                            help="fit all runs together (faster, same results)")
    return parser.parse_args(argv)


def run_from_command_line(train_function, argv, description, default_max_iter, batched_option=False):
    """Shared ``main``: load the data, train, write the results, print the best run per K."""
    args = parse_args(argv, description, default_max_iter, batched_option)
    extra = dict(batched=args.batched) if batched_option else {}
    try:
        x_train_ND = load_tops_csv(args.data_dir, "train")
        x_valid_ND = load_tops_csv(args.data_dir, "valid")
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runs = train_function(x_train_ND, x_valid_ND, K_list=args.K_list, seed_list=args.seed_list,
                          output_dir=args.output_dir, max_iter=args.max_iter, ftol=args.ftol,
                          variance_penalty_mode=args.variance_penalty_mode,
                          variance_penalty_spread=args.variance_penalty_spread, verbose=args.verbose,
                          **extra)
    for K, run in sorted(best_run_per_K(runs).items()):
        print(f"K={K:2d}: best seed {run['seed']}, valid score per pixel "
              f"{run['history']['valid_score_per_pixel'][-1]:.5f}")
    print(f"wrote {2 * len(runs)} files to {args.output_dir}")
    return 0


def main(argv=None):
    return run_from_command_line(train_EM_gmm_with_many_runs, argv,
                                 "Fit the penalized GMM by EM for many K and seeds.", default_max_iter=20,
                                 batched_option=True)


if __name__ == "__main__":
    sys.exit(main())
