"""Probes for unit 3: they run inside the sandboxed worker, call the student's modules and return
plain numbers/arrays. Nothing here is secret; the reference values never reach this file.

The probes call only functions students write. Parameters are set as plain attributes
(``est.log_pi_K = ...``), the way the course's own examples do it, so nothing depends on helper
methods of the base class (which the grader supplies itself anyway).

Conventions that make any correct answer look the same:
- mixture weights are returned as probabilities (``pi_K = exp(log_pi_K)``), so an empty component
  may be represented by ``log_pi = -inf`` or by a huge negative number alike;
- the mean of a component that owns no data (or has weight exactly 0) may be any finite value: a
  finite mean there is reported as 0, a NaN or inf stays as it is (and fails). A fit without
  training rows is graded without validation data, for the same reason.
"""

import numpy as np


def _value(x):
    """A float for one-element results, else the array (so a shape mistake shows as one)."""
    arr = np.asarray(x, dtype=np.float64)
    return float(arr.reshape(())) if arr.size == 1 and arr.ndim <= 1 else arr


def _array(x):
    return np.asarray(x, dtype=np.float64)


def _em(K, D, m, s, **kw):
    from GMM_PenalizedMLEstimator_EM import GMM_PenalizedMLEstimator_EM

    return GMM_PenalizedMLEstimator_EM(K=K, D=D, variance_penalty_mode=m, variance_penalty_spread=s, **kw)


def _lbfgs(K, D, m, s, **kw):
    from GMM_PenalizedMLEstimator_LBFGS import GMM_PenalizedMLEstimator_LBFGS

    return GMM_PenalizedMLEstimator_LBFGS(K=K, D=D, variance_penalty_mode=m, variance_penalty_spread=s, **kw)


def _em_with(K, D, m, s, log_pi_K, mu_KD, stddev_KD):
    est = _em(K, D, m, s)
    est.log_pi_K, est.mu_KD, est.stddev_KD = log_pi_K.copy(), mu_KD.copy(), stddev_KD.copy()
    return est


def _free_means(mu_KD, free_K):
    """Report a finite mean of a component in ``free_K`` (no data / weight 0) as 0."""
    reported_KD = _array(mu_KD).copy()
    if reported_KD.ndim == 2 and free_K.shape == reported_KD.shape[:1]:
        finite_K = np.all(np.isfinite(reported_KD), axis=1)
        reported_KD[free_K & finite_K] = 0.0
    return reported_KD


def neg_log_lik_np(x_ND, log_pi_K, mu_KD, stddev_KD):
    from calc_neg_log_lik__np import calc_neg_log_lik

    return {"nll": _value(calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD))}


def neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Value and autograd gradients of the autograd twin (proves it is autograd-safe)."""
    import autograd
    from calc_neg_log_lik__ag import calc_neg_log_lik

    def nll(log_pi, mu, stddev):
        return calc_neg_log_lik(x_ND, log_pi, mu, stddev)

    value = nll(log_pi_K, mu_KD, stddev_KD)
    g_pi, g_mu, g_sd = autograd.grad(nll, (0, 1, 2))(log_pi_K, mu_KD, stddev_KD)
    return {
        "nll": _value(value),
        "grad_log_pi_K": _array(g_pi),
        "grad_mu_KD": _array(g_mu),
        "grad_stddev_KD": _array(g_sd),
    }


def estep(K, D, m, s, log_pi_K, mu_KD, stddev_KD, x_ND):
    est = _em_with(K, D, m, s, log_pi_K, mu_KD, stddev_KD)
    return {"r_NK": _array(est.estep__calc_r_NK(x_ND))}


def em_loss(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND):
    est = _em_with(K, D, m, s, log_pi_K, mu_KD, stddev_KD)
    return {"loss": _value(est.calc_EM_loss(r_NK, x_ND))}


def mstep_log_pi(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND=None):
    est = _em_with(K, D, m, s, log_pi_K, mu_KD, stddev_KD)
    return {"pi_K": np.exp(_array(est.mstep__update_log_pi_K(r_NK)))}


def mstep_mu(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND):
    est = _em_with(K, D, m, s, log_pi_K, mu_KD, stddev_KD)
    mu = est.mstep__update_mu_KD(r_NK, x_ND)
    return {"mu_KD": _free_means(mu, np.sum(r_NK, axis=0) == 0)}


def mstep_stddev(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND):
    """stddev update, with self.mu_KD already holding the weighted means for this r_NK."""
    est = _em_with(K, D, m, s, log_pi_K, mu_KD, stddev_KD)
    return {"stddev_KD": _array(est.mstep__update_stddev_KD(r_NK, x_ND))}


def _history(est, keys):
    return {f"history_{k}": _array(est.history[k]) for k in keys}


def _flat_params(log_pi_K, mu_KD, stddev_KD, no_data=False):
    """[pi_K, mu_KD, stddev_KD] flattened; the means are free where a weight is 0, and all of them
    without training data (the training loss does not depend on them then)."""
    pi_K = np.exp(_array(log_pi_K))
    mu_KD = _free_means(mu_KD, (pi_K == 0) | no_data)
    return np.concatenate([pi_K.ravel(), mu_KD.ravel(), _array(stddev_KD).ravel()])


def _one_em_step_later(est, x_ND):
    """The parameters after one more E-step and M-step from the model's final parameters."""
    start = (est.log_pi_K, est.mu_KD, est.stddev_KD)
    try:
        r_NK = est.estep__calc_r_NK(x_ND)
        log_pi_K = est.mstep__update_log_pi_K(r_NK)
        est.mu_KD = est.mstep__update_mu_KD(r_NK, x_ND)
        stddev_KD = est.mstep__update_stddev_KD(r_NK, x_ND)
        later = _flat_params(log_pi_K, est.mu_KD, stddev_KD, no_data=len(x_ND) == 0)
    except Exception:  # noqa: BLE001 - only row 0 is graded; row 1 just explains a mismatch
        later = None
    est.log_pi_K, est.mu_KD, est.stddev_KD = start
    return later


def fit_em(K, D, seed, m, s, max_iter, ftol, x_ND, x_valid_ND, init, double_check=False):
    """Fit from given initial parameters (so the initializer plays no part in this test).

    Returns the history and ``final_params``: row 0 the model's final [pi_K, mu_KD, stddev_KD]
    flattened, row 1 the same one EM step later (see spec.CloseOrOneStepPast).
    """
    est = _em(K, D, m, s, seed=seed, max_iter=max_iter, ftol=ftol, do_double_check_correctness=double_check)
    est.generate_initial_parameters = lambda x: (
        init["log_pi_K"].copy(),
        init["mu_KD"].copy(),
        init["stddev_KD"].copy(),
    )
    est.fit(x_ND, x_valid_ND, verbose=False)
    keys = ["iter", "train_loss", "train_loss_per_pixel", "train_score_per_pixel"]
    if x_valid_ND is not None:
        keys.append("valid_score_per_pixel")
    final = _flat_params(est.log_pi_K, est.mu_KD, est.stddev_KD, no_data=len(x_ND) == 0)
    later = _one_em_step_later(est, x_ND)
    if later is None or later.shape != final.shape:
        later = np.full_like(final, np.nan)
    return {**_history(est, keys), "final_params": np.stack([final, later])}


def fit_em_double_check_catches(K, D, seed, m, s, max_iter, x_ND, init):
    """With do_double_check_correctness, a fit whose M-step raises the loss must raise AssertionError.

    The student's mean update is wrapped so that it moves every mean by +5 (which raises the EM loss).
    """
    est = _em(K, D, m, s, seed=seed, max_iter=max_iter, ftol=0.0, do_double_check_correctness=True)
    est.generate_initial_parameters = lambda x: (
        init["log_pi_K"].copy(),
        init["mu_KD"].copy(),
        init["stddev_KD"].copy(),
    )
    update_mu = est.mstep__update_mu_KD
    est.mstep__update_mu_KD = lambda r_NK, x: np.asarray(update_mu(r_NK, x)) + 5.0
    try:
        est.fit(x_ND, None, verbose=False)
    except AssertionError:
        return {"raised": 1}
    return {"raised": 0}


def lbfgs_loss(K, D, m, s, log_pi_K, mu_KD, stddev_KD, x_ND):
    """Value and autograd gradient of the L-BFGS objective at given parameters (packed by the student's
    own transforms, so any consistent packing order works)."""
    import autograd

    est = _lbfgs(K, D, m, s)
    flat = est.to_flat_array(log_pi_K, mu_KD, stddev_KD)
    loss = est.calc_loss(flat, x_ND)
    grad = autograd.grad(lambda v: est.calc_loss(v, x_ND))(flat)
    back = est.to_common_parameters(flat)
    return {
        "loss": _value(loss),
        "grad_norm": float(np.linalg.norm(_array(grad))),
        "pi_K": np.exp(_array(back[0])),
        "mu_KD": _array(back[1]),
        "stddev_KD": _array(back[2]),
    }


def fit_lbfgs(K, D, seed, m, s, max_iter, x_ND, init):
    """Per-pixel losses of an L-BFGS fit from given initial parameters: first and last history entry,
    and the loss of the parameters left in the model."""
    from calc_neg_log_lik__np import calc_neg_log_lik
    from calc_penalty_stddev import calc_penalty_stddev

    est = _lbfgs(K, D, m, s, seed=seed, max_iter=max_iter)
    est.generate_initial_parameters = lambda x: (
        init["log_pi_K"].copy(),
        init["mu_KD"].copy(),
        init["stddev_KD"].copy(),
    )
    est.fit(x_ND, None, verbose=False)
    losses = _array(est.history["train_loss_per_pixel"])
    final = float(calc_penalty_stddev(_array(est.stddev_KD), m, s)) + calc_neg_log_lik(
        x_ND, est.log_pi_K, est.mu_KD, est.stddev_KD
    )
    return {
        "initial_loss_per_pixel": float(losses[0]),
        "final_loss_per_pixel": float(losses[-1]),
        "final_params_loss_per_pixel": final / x_ND.size,
    }


def transforms(name, values, raw=None):
    """Forward and inverse of one transform module function pair on given values, and the inverse
    applied directly to ``raw`` values (not made by the forward map)."""
    import importlib

    module_name, forward, inverse = name.split(":")
    module = importlib.import_module(module_name)
    out = _array(getattr(module, forward)(values))
    result = {"forward": out, "round_trip": _array(getattr(module, inverse)(out))}
    if raw is not None:
        result["inverse_of_raw"] = _array(getattr(module, inverse)(raw))
    return result
