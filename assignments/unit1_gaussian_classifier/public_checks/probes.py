"""Probes for unit 1: they run in the sandboxed worker and call the functions defined in the
student's notebook (its imports and definitions only; see ``Submission.notebook_cells``), which the
grader offers as the module ``submission``. Nothing here is secret."""

import numpy as np


def _arr(x, dtype=np.float64):
    return np.asarray(x, dtype=dtype)


def fit(x_ND, y_N):
    import submission as S

    pi_K, mu_KD, sigma_KDD = S.fit_generative_model(x_ND, y_N)
    return {"pi_K": _arr(pi_K), "mu_KD": _arr(mu_KD), "sigma_KDD": _arr(sigma_KDD)}


def log_joint(x_ND, pi_K, mu_KD, sigma_KDD, c):
    import submission as S

    return {"log_joint_NK": _arr(S.class_log_joint(x_ND, pi_K, mu_KD, sigma_KDD, c))}


def log_joint_eig(x_ND, pi_K, mu_KD, sigma_KDD, c_list):
    """decompose once, then log_joint_from_eig for several c (the decomposition's own form is free)."""
    import submission as S

    parts = S.decompose(sigma_KDD)
    return {f"c{i}": _arr(S.log_joint_from_eig(x_ND, pi_K, mu_KD, parts, c)) for i, c in enumerate(c_list)}


def sweep(x_ND, pi_K, mu_KD, sigma_KDD, c_C):
    import submission as S

    return {"log_joint_CNK": _arr(S.log_joint_sweep(x_ND, pi_K, mu_KD, S.decompose(sigma_KDD), c_C))}


def predict_and_count(x_ND, y_N, pi_K, mu_KD, sigma_KDD, c):
    import submission as S

    yhat_N = S.predict(x_ND, pi_K, mu_KD, sigma_KDD, c)
    return {"yhat_N": _arr(yhat_N, np.int64), "n_errors": int(S.count_errors(yhat_N, y_N))}


def split(n, n_valid, seed):
    import submission as S

    fit_idx, valid_idx = S.split_train_valid(n, n_valid, seed)
    return {"fit_idx": _arr(fit_idx, np.int64), "valid_idx": _arr(valid_idx, np.int64)}


def choose_c(x_ND, y_N, candidates_C, seed, n_valid):
    import submission as S

    best_c, errors_C = S.select_c(x_ND, y_N, candidates_C, seed=seed, n_valid=n_valid)
    return {"best_c": float(best_c), "valid_errors_C": _arr(errors_C, np.int64)}
