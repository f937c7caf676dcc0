"""Fit the L-BFGS estimator for every number of components K and every seed.

    python train_LBFGS_gmm_with_many_runs.py --data_dir DATA/tops --output_dir out/lbfgs

runs K in {1, 4, 8, 16} times seeds {1001, 3001, 4001, 7001} for at most 30 L-BFGS iterations and
writes ``history_K08_seed1001.csv`` and ``params_K08_seed1001.npz`` per run into the output folder,
exactly like train_EM_gmm_with_many_runs.py (whose helpers it reuses).
"""

import sys

from GMM_PenalizedMLEstimator_LBFGS import GMM_PenalizedMLEstimator_LBFGS
from train_EM_gmm_with_many_runs import (
    DEFAULT_K_LIST,
    DEFAULT_SEED_LIST,
    run_from_command_line,
    train_many_runs,
)


def train_LBFGS_gmm_with_many_runs(
    x_train_ND,
    x_valid_ND,
    K_list=DEFAULT_K_LIST,
    seed_list=DEFAULT_SEED_LIST,
    output_dir=None,
    max_iter=30,
    variance_penalty_mode=25.0,
    variance_penalty_spread=100.0,
    ftol=1e-9,
    verbose=False,
):
    """L-BFGS fits for every (K, seed) pair; see ``train_many_runs`` for the arguments and result."""
    return train_many_runs(
        GMM_PenalizedMLEstimator_LBFGS,
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


def main(argv=None):
    return run_from_command_line(
        train_LBFGS_gmm_with_many_runs,
        argv,
        "Fit the penalized GMM by L-BFGS for many K and seeds.",
        default_max_iter=30,
    )


if __name__ == "__main__":
    sys.exit(main())
