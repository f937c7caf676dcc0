"""Probes for unit 3: they run inside the sandboxed worker, call the student's modules and return
plain numbers/arrays. Nothing here is secret; the reference values never reach this file.

Mixture weights are returned as probabilities (``pi_K = exp(log_pi_K)``), so an empty component may
be represented by ``log_pi = -inf`` or by a huge negative number alike.
"""

import numpy as np


def _value(x):
    """A float for one-element results, else the array (so a shape mistake shows as one)."""
    arr = np.asarray(x, dtype=np.float64)
    return float(arr.reshape(())) if arr.size == 1 and arr.ndim <= 1 else arr


def _em(K, D, m, s, **kw):
    from GMM_PenalizedMLEstimator_EM import GMM_PenalizedMLEstimator_EM

    return GMM_PenalizedMLEstimator_EM(K=K, D=D, variance_penalty_mode=m, variance_penalty_spread=s, **kw)


def _lbfgs(K, D, m, s, **kw):
    from GMM_PenalizedMLEstimator_LBFGS import GMM_PenalizedMLEstimator_LBFGS

    return GMM_PenalizedMLEstimator_LBFGS(K=K, D=D, variance_penalty_mode=m, variance_penalty_spread=s,
                                          **kw)


def _params(est):
    params = est.get_params()
    return {"pi_K": np.exp(np.asarray(params["log_pi_K"], dtype=np.float64)),
            "mu_KD": np.asarray(params["mu_KD"], dtype=np.float64),
            "stddev_KD": np.asarray(params["stddev_KD"], dtype=np.float64)}


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
    return {"nll": _value(value), "grad_log_pi_K": np.asarray(g_pi, dtype=np.float64),
            "grad_mu_KD": np.asarray(g_mu, dtype=np.float64),
            "grad_stddev_KD": np.asarray(g_sd, dtype=np.float64)}


def penalty(stddev_KD, m, s):
    import autograd
    from calc_penalty_stddev import calc_penalty_stddev

    value = calc_penalty_stddev(stddev_KD, m, s)
    grad = autograd.grad(lambda sd: calc_penalty_stddev(sd, m, s))(stddev_KD)
    return {"penalty": _value(value), "grad_stddev_KD": np.asarray(grad, dtype=np.float64)}


def initial_parameters(K, D, seed, m, x_ND):
    from GMM_PenalizedMLEstimator import GMM_PenalizedMLEstimator

    est = GMM_PenalizedMLEstimator(K=K, D=D, seed=seed, variance_penalty_mode=m)
    log_pi_K, mu_KD, stddev_KD = est.generate_initial_parameters(x_ND)
    return {"pi_K": np.exp(np.asarray(log_pi_K, dtype=np.float64)),
            "mu_KD": np.asarray(mu_KD, dtype=np.float64),
            "stddev_KD": np.asarray(stddev_KD, dtype=np.float64)}


def estep(K, D, m, s, log_pi_K, mu_KD, stddev_KD, x_ND):
    est = _em(K, D, m, s)
    est.set_params(log_pi_K, mu_KD, stddev_KD)
    return {"r_NK": np.asarray(est.estep__calc_r_NK(x_ND), dtype=np.float64)}


def em_loss(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND):
    est = _em(K, D, m, s)
    est.set_params(log_pi_K, mu_KD, stddev_KD)
    return {"loss": _value(est.calc_EM_loss(r_NK, x_ND))}


def mstep_log_pi(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND=None):
    est = _em(K, D, m, s)
    est.set_params(log_pi_K, mu_KD, stddev_KD)
    return {"pi_K": np.exp(np.asarray(est.mstep__update_log_pi_K(r_NK), dtype=np.float64))}


def mstep_mu(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND):
    est = _em(K, D, m, s)
    est.set_params(log_pi_K, mu_KD, stddev_KD)
    return {"mu_KD": np.asarray(est.mstep__update_mu_KD(r_NK, x_ND), dtype=np.float64)}


def mstep_stddev(K, D, m, s, log_pi_K, mu_KD, stddev_KD, r_NK, x_ND):
    """stddev update given the (already updated) means in mu_KD."""
    est = _em(K, D, m, s)
    est.set_params(log_pi_K, mu_KD, stddev_KD)
    return {"stddev_KD": np.asarray(est.mstep__update_stddev_KD(r_NK, x_ND), dtype=np.float64)}


def _history(est, keys):
    return {f"history_{k}": np.asarray(est.history[k], dtype=np.float64) for k in keys}


def fit_em(K, D, seed, m, s, max_iter, ftol, x_ND, x_valid_ND, init):
    """Fit from given initial parameters (so a wrong initializer does not cost this test too)."""
    est = _em(K, D, m, s, seed=seed, max_iter=max_iter, ftol=ftol)
    est.generate_initial_parameters = lambda x: (init["log_pi_K"], init["mu_KD"], init["stddev_KD"])
    est.fit(x_ND, x_valid_ND, verbose=False)
    keys = ["iter", "train_loss", "train_loss_per_pixel", "train_score_per_pixel"]
    if x_valid_ND is not None:
        keys.append("valid_score_per_pixel")
    return {**_history(est, keys), **_params(est)}


def lbfgs_loss(K, D, m, s, log_pi_K, mu_KD, stddev_KD, x_ND):
    """Value and autograd gradient of the L-BFGS objective at given parameters (packed by the student's
    own transforms, so any consistent packing order works)."""
    import autograd

    est = _lbfgs(K, D, m, s)
    flat = est.to_flat_array(log_pi_K, mu_KD, stddev_KD)
    loss = est.calc_loss(flat, x_ND)
    grad = autograd.grad(lambda v: est.calc_loss(v, x_ND))(flat)
    back = est.to_common_parameters(flat)
    return {"loss": _value(loss), "grad_norm": float(np.linalg.norm(np.asarray(grad, dtype=np.float64))),
            "pi_K": np.exp(np.asarray(back[0], dtype=np.float64)),
            "mu_KD": np.asarray(back[1], dtype=np.float64),
            "stddev_KD": np.asarray(back[2], dtype=np.float64)}


def fit_lbfgs(K, D, seed, m, s, max_iter, x_ND, init):
    est = _lbfgs(K, D, m, s, seed=seed, max_iter=max_iter)
    est.generate_initial_parameters = lambda x: (init["log_pi_K"], init["mu_KD"], init["stddev_KD"])
    est.fit(x_ND, None, verbose=False)
    losses = np.asarray(est.history["train_loss"], dtype=np.float64)
    return {"initial_loss": float(losses[0]), "final_loss": float(losses[-1]),
            "final_loss_matches_params": float(est.calc_penalty_stddev() - est.score(x_ND))}


def transforms(name, values):
    """Forward and inverse of one transform module function pair, on given values."""
    import importlib

    module_name, forward, inverse = name.split(":")
    module = importlib.import_module(module_name)
    out = np.asarray(getattr(module, forward)(values), dtype=np.float64)
    back = np.asarray(getattr(module, inverse)(out), dtype=np.float64)
    return {"forward": out, "round_trip": back}
