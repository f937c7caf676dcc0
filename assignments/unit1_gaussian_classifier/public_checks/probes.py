"""Probes for unit 1: they run in the sandboxed worker and call the functions defined in the
student's notebook (its imports and definitions only; see ``Submission.notebook_cells``), which the
grader offers as the module ``submission``. Nothing here is secret.

Every probe also reports ``changed_inputs``: how many of the arrays it handed to the student's
functions were modified by them (the contract says none is).
"""

import copy

import numpy as np


def _arr(x, dtype=np.float64):
    return np.asarray(x, dtype=dtype)


def _same(a, b):
    """Deep equality of two argument values (arrays compared exactly, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        nan = a.dtype.kind == "f"
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=nan)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object without equality counts as changed
        return False


class _Watch:
    """Snapshots of the arrays handed to the student, to count the ones that come back changed."""

    def __init__(self):
        self.kept = []

    def give(self, value):
        self.kept.append((value, copy.deepcopy(value)))
        return value

    def changed(self):
        return int(sum(not _same(now, before) for now, before in self.kept))


def _moments(images, labels):
    """x_ND (float64), pi_K, mu_KD and the maximum-likelihood sigma_KDD of labelled images."""
    x_ND = _arr(images).reshape(len(images), -1)
    y_N = np.asarray(labels, dtype=np.int64)
    K = int(y_N.max()) + 1
    pi_K = np.bincount(y_N, minlength=K) / len(y_N)
    mu_KD = np.stack([x_ND[y_N == k].mean(axis=0) for k in range(K)])
    sigma_KDD = np.stack([np.cov(x_ND[y_N == k], rowvar=False, bias=True) for k in range(K)])
    return (pi_K, mu_KD, sigma_KDD)


def fit(x_ND, y_N):
    import submission as S

    w = _Watch()
    pi_K, mu_KD, sigma_KDD = S.fit_generative_model(w.give(x_ND), w.give(y_N))
    return {
        "pi_K": _arr(pi_K),
        "mu_KD": _arr(mu_KD),
        "sigma_KDD": _arr(sigma_KDD),
        "changed_inputs": w.changed(),
    }


def log_joint(x_ND, pi_K, mu_KD, sigma_KDD, c):
    import submission as S

    w = _Watch()
    out = S.class_log_joint(w.give(x_ND), w.give(pi_K), w.give(mu_KD), w.give(sigma_KDD), w.give(c))
    return {"log_joint_NK": _arr(out), "changed_inputs": w.changed()}


def log_joint_eig(x_ND, pi_K, mu_KD, sigma_KDD, c_list):
    """decompose once, then log_joint_from_eig for several c (the decomposition's own form is free)."""
    import submission as S

    w = _Watch()
    args = [w.give(x_ND), w.give(pi_K), w.give(mu_KD)]
    parts = S.decompose(w.give(sigma_KDD))
    w.give(parts)
    out = {f"c{i}": _arr(S.log_joint_from_eig(*args, parts, w.give(c))) for i, c in enumerate(c_list)}
    return {**out, "changed_inputs": w.changed()}


def sweep(x_ND, pi_K, mu_KD, sigma_KDD, c_C):
    import submission as S

    w = _Watch()
    parts = S.decompose(w.give(sigma_KDD))
    w.give(parts)
    out = S.log_joint_sweep(w.give(x_ND), w.give(pi_K), w.give(mu_KD), parts, w.give(c_C))
    return {"log_joint_CNK": _arr(out), "changed_inputs": w.changed()}


def predict_and_count(x_ND, y_N, pi_K, mu_KD, sigma_KDD, c):
    import submission as S

    w = _Watch()
    yhat_N = S.predict(w.give(x_ND), w.give(pi_K), w.give(mu_KD), w.give(sigma_KDD), w.give(c))
    n_errors = int(S.count_errors(w.give(yhat_N), w.give(y_N)))
    return {"yhat_N": _arr(yhat_N, np.int64), "n_errors": n_errors, "changed_inputs": w.changed()}


def images_log_joint(images, labels, query, c):
    """class_log_joint on real images: the model's moments come from ``images`` (numpy here)."""
    pi_K, mu_KD, sigma_KDD = _moments(images, labels)
    return log_joint(_arr(query).reshape(len(query), -1), pi_K, mu_KD, sigma_KDD, c)


def images_log_joint_eig(images, labels, query, c_list):
    pi_K, mu_KD, sigma_KDD = _moments(images, labels)
    return log_joint_eig(_arr(query).reshape(len(query), -1), pi_K, mu_KD, sigma_KDD, c_list)


def images_predict(images, labels, query, query_labels, c):
    pi_K, mu_KD, sigma_KDD = _moments(images, labels)
    x_ND = _arr(query).reshape(len(query), -1)
    return predict_and_count(x_ND, np.asarray(query_labels, dtype=np.int64), pi_K, mu_KD, sigma_KDD, c)


def split(n, n_valid, seed):
    import submission as S

    fit_idx, valid_idx = S.split_train_valid(n, n_valid, seed)
    return {"fit_idx": _arr(fit_idx, np.int64), "valid_idx": _arr(valid_idx, np.int64)}


def choose_c(x_ND, y_N, candidates_C, seed, n_valid):
    import submission as S

    w = _Watch()
    best_c, errors_C = S.select_c(w.give(x_ND), w.give(y_N), w.give(candidates_C), seed=seed, n_valid=n_valid)
    return {
        "best_c": float(best_c),
        "valid_errors_C": _arr(errors_C, np.int64),
        "changed_inputs": w.changed(),
    }
