"""Probes for unit 2: they run inside the sandboxed worker, call the student's functions and return
plain numbers/arrays. Nothing here is secret; the reference values never reach this file.

Mixture weights are returned as probabilities (``pi_K = exp(log_pi_K)``), so an empty component may
be represented by ``log_pi = -inf`` or by a huge negative number alike.

The samplers are graded by properties measured here, never by their exact draws: the largest
|z-score| of the sample means and covariances against the true ones, of the component counts
against their expected values, whether the generator passed in was advanced, and whether the same
seed gives the same draws. A correct sampler that draws in another order passes all of them.
"""

import numpy as np

# Absolute floor added to the variance of a z-score's numerator, so that a direction of zero
# variance (a pixel that never changes) accepts rounding-level noise instead of dividing by zero.
VARIANCE_FLOOR = 1e-12


def _real(x):
    """float64 array of a result; the string "complex" for a complex one (graded as a wrong type)."""
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        return "complex"
    return arr.astype(np.float64)


def _pi(log_pi_K):
    return np.exp(_real(log_pi_K)) if not np.iscomplexobj(log_pi_K) else "complex"


def _rng_state(rng):
    return repr(rng.bit_generator.state)


def _mean_z(x_SD, mu_D, cov_DD):
    S = x_SD.shape[0]
    return np.abs(x_SD.mean(axis=0) - mu_D) / np.sqrt(np.diag(cov_DD) / S + VARIANCE_FLOOR)


def _cov_z(x_SD, cov_DD):
    """|z| of every sample-covariance entry; Var(S_ij) ~ (C_ii C_jj + C_ij^2) / S for Gaussians."""
    S = x_SD.shape[0]
    d_SD = x_SD - x_SD.mean(axis=0)
    sample_DD = d_SD.T @ d_SD / (S - 1)
    var_DD = (np.outer(np.diag(cov_DD), np.diag(cov_DD)) + cov_DD**2) / S
    return np.abs(sample_DD - cov_DD) / np.sqrt(var_DD + VARIANCE_FLOOR)


def mle(x_ND):
    from gaussian_mle import estimate_cov_DD, estimate_mean_D

    return {"mu_D": _real(estimate_mean_D(x_ND)), "cov_DD": _real(estimate_cov_DD(x_ND))}


def gaussian_sampler(mu_D, cov_DD, n_samples, seed):
    from gaussian_mle import draw_gaussian_samples

    rng = np.random.default_rng(seed)
    before = _rng_state(rng)
    x_SD = np.asarray(draw_gaussian_samples(mu_D, cov_DD, n_samples, rng), dtype=np.float64)
    advanced = float(_rng_state(rng) != before)
    again = np.asarray(draw_gaussian_samples(mu_D, cov_DD, n_samples, np.random.default_rng(seed)))
    other = np.asarray(draw_gaussian_samples(mu_D, cov_DD, n_samples, np.random.default_rng(seed + 1)))
    out = {
        "shape": np.array(x_SD.shape),
        "advanced": advanced,
        "same_seed_same_draws": float(np.array_equal(again, x_SD)),
        "other_seed_other_draws": float(other.shape == x_SD.shape and not np.array_equal(other, x_SD)),
    }
    if x_SD.shape == (n_samples, len(mu_D)) and n_samples > 1:
        out["mean_max_abs_z"] = float(np.max(_mean_z(x_SD, mu_D, cov_DD)))
        out["cov_max_abs_z"] = float(np.max(_cov_z(x_SD, cov_DD)))
    return out


def mixture_sampler(log_pi_K, mu_KD, cov_KDD, n_samples, seed):
    """Counts per component against n pi_k, and each component's points against its Gaussian."""
    from class_conditional import draw_mixture_samples

    rng = np.random.default_rng(seed)
    before = _rng_state(rng)
    x_SD, z_S = draw_mixture_samples(log_pi_K, mu_KD, cov_KDD, n_samples, rng)
    x_SD, z_S = np.asarray(x_SD, dtype=np.float64), np.asarray(z_S)
    advanced = float(_rng_state(rng) != before)
    again_x, again_z = draw_mixture_samples(log_pi_K, mu_KD, cov_KDD, n_samples, np.random.default_rng(seed))
    K = len(log_pi_K)
    out = {
        "x_shape": np.array(x_SD.shape),
        "z_shape": np.array(z_S.shape),
        "advanced": advanced,
        "same_seed_same_draws": float(np.array_equal(again_x, x_SD) and np.array_equal(again_z, z_S)),
    }
    labels_ok = z_S.shape == (n_samples,) and np.all(z_S == np.round(z_S)) and np.all((z_S >= 0) & (z_S < K))
    out["labels_are_components"] = float(labels_ok)
    if not labels_ok or x_SD.shape != (n_samples, np.shape(mu_KD)[1]):
        return out
    z_S = z_S.astype(int)
    weight_K = np.exp(np.array(log_pi_K, dtype=float))
    count_K = np.bincount(z_S, minlength=K)
    expected_K = n_samples * weight_K
    out["count_max_abs_z"] = float(
        np.max(np.abs(count_K - expected_K) / np.sqrt(expected_K * (1 - weight_K) + VARIANCE_FLOOR))
    )
    mean_z, cov_z = [0.0], [0.0]
    for k in np.flatnonzero(count_K > 1):
        mean_z.append(np.max(_mean_z(x_SD[z_S == k], mu_KD[k], cov_KDD[k])))
        cov_z.append(np.max(_cov_z(x_SD[z_S == k], cov_KDD[k])))
    out["mean_max_abs_z"] = float(np.max(mean_z))
    out["cov_max_abs_z"] = float(np.max(cov_z))
    return out


def class_conditional(x_ND, y_N, K):
    from class_conditional import fit_class_conditional

    log_pi_K, mu_KD, cov_KDD = fit_class_conditional(x_ND, y_N, K)
    return {"pi_K": _pi(log_pi_K), "mu_KD": _real(mu_KD), "cov_KDD": _real(cov_KDD)}


def log_pdf(x_ND, mu_KD, cov_KDD, eps, add_eps_to_diag=False):
    from gmm_em import calc_log_pdf_NK

    if add_eps_to_diag:
        out = calc_log_pdf_NK(x_ND, mu_KD, cov_KDD, eps, add_eps_to_diag=True)
    else:
        out = calc_log_pdf_NK(x_ND, mu_KD, cov_KDD, eps)
    return {"log_pdf_NK": _real(out)}


def estep(x_ND, log_pi_K, mu_KD, cov_KDD, eps):
    from gmm_em import estep__calc_r_NK

    r_NK, log_lik_N = estep__calc_r_NK(x_ND, log_pi_K, mu_KD, cov_KDD, eps)
    return {"r_NK": _real(r_NK), "log_lik_N": _real(log_lik_N)}


def mstep(x_ND, r_NK):
    from gmm_em import mstep__update_params

    new_log_pi_K, new_mu_KD, new_cov_KDD = mstep__update_params(x_ND, r_NK)
    return {"pi_K": _pi(new_log_pi_K), "mu_KD": _real(new_mu_KD), "cov_KDD": _real(new_cov_KDD)}


def kmeans(x_ND, centres_KD, n_iter):
    from gmm_em import run_kmeans

    given = np.array(centres_KD, copy=True)
    centres_out, z_N = run_kmeans(x_ND, centres_KD, n_iter)
    return {
        "centres_KD": _real(centres_out),
        "z_N": np.asarray(z_N),
        "start_not_modified": float(np.array_equal(given, centres_KD)),
    }


def _init(call, seed):
    rng = np.random.default_rng(seed)
    before = _rng_state(rng)
    try:
        log_pi_K, mu_KD, cov_KDD = call(rng)
    except ValueError:
        return {"raises_value_error": 1.0}
    return {
        "pi_K": _pi(log_pi_K),
        "mu_KD": _real(mu_KD),
        "cov_KDD": _real(cov_KDD),
        "advanced": float(_rng_state(rng) != before),
        "raises_value_error": 0.0,
    }


def init_kmeans(x_ND, K, n_iter, seed):
    from gmm_em import init_gmm_kmeans

    return _init(lambda rng: init_gmm_kmeans(x_ND, K, n_iter, rng), seed)


def init_random(x_ND, K, seed):
    from gmm_em import init_gmm_random

    return _init(lambda rng: init_gmm_random(x_ND, K, rng), seed)


def fit_em(x_ND, init, n_iter, eps, add_eps_to_diag=False, x_eval_ND=None, dtype=None):
    from gmm_em import fit_gmm_em

    kwargs = {"x_eval_ND": x_eval_ND}
    if add_eps_to_diag:
        kwargs["add_eps_to_diag"] = True
    if dtype is not None:
        kwargs["dtype"] = np.dtype(dtype).type
    log_pi_K, mu_KD, cov_KDD, log_lik_T, eval_log_lik_T = fit_gmm_em(
        x_ND, init["log_pi_K"], init["mu_KD"], init["cov_KDD"], n_iter, eps, **kwargs
    )
    out = {
        "pi_K": _pi(log_pi_K),
        "mu_KD": _real(mu_KD),
        "cov_KDD": _real(cov_KDD),
        "log_lik_T": _real(log_lik_T),
    }
    if eval_log_lik_T is not None or x_eval_ND is not None:
        out["eval_log_lik_T"] = _real(eval_log_lik_T)
    return out


def raises_value_error(function, kwargs):
    """1.0 if ``module:function(**kwargs)`` raises ValueError, else 0.0 (bad input at the boundary)."""
    import importlib

    module_name, name = function.split(":")
    try:
        getattr(importlib.import_module(module_name), name)(**kwargs)
    except ValueError:
        return {"raises_value_error": 1.0}
    except Exception:  # noqa: BLE001 - any other error is the wrong kind
        return {"raises_value_error": 0.0}
    return {"raises_value_error": 0.0}
