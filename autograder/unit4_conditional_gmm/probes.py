"""Probes for unit 4: they run inside the sandboxed worker, call the student's modules and return
plain numbers/arrays. Nothing here is secret; the reference values never reach this file.

Models are built with their constructor and given parameters as attributes (``log_pi_K``, ...);
mixture weights are returned as probabilities and covariances as matrices (never as Cholesky
factors), so any valid representation inside the student's code compares equal.
"""

import numpy as np


def _arr(x):
    return np.asarray(x, dtype=np.float64)


def _value(x):
    """A float for one-element results, else the array (so a shape mistake shows as one)."""
    arr = _arr(x)
    return float(arr.reshape(())) if arr.size == 1 and arr.ndim <= 1 else arr


def _model(kind, params, **settings):
    """A model of the given kind with the given parameters set as attributes."""
    if kind == "cgmm":
        from ConditionalGMMRegressor import ConditionalGMMRegressor as cls
    elif kind == "moe":
        from MixtureOfExpertsRegressor import MixtureOfExpertsRegressor as cls
    else:
        from DiscriminativeConditionalGMMRegressor import DiscriminativeConditionalGMMRegressor as cls
    model = cls(**settings)
    for name, value in params.items():
        setattr(model, name, value)
    return model


def _cgmm_params(model):
    return {"pi_K": np.exp(_arr(model.log_pi_K)), "mu_KD": _arr(model.mu_KD), "cov_KDD": _arr(model.cov_KDD)}


def _moe_means(model, x_NI):
    """Each expert's mean at each input (unique even when the coefficients are not)."""
    return np.einsum("ni,kio->nko", x_NI, _arr(model.coef_KIO)) + _arr(model.intercept_KO)


# --------------------------------------------------------------------------- gaussian_math


def log_pdf(diff_NKD, chol_KDD):
    from gaussian_math import calc_log_pdf_NK

    return {"log_pdf_NK": _arr(calc_log_pdf_NK(diff_NKD, chol_KDD))}


def whiten(diff_NKD, chol_KDD):
    from gaussian_math import whiten_KND

    return {"z_KND": _arr(whiten_KND(diff_NKD, chol_KDD))}


def mixture_log_lik(log_w_NK, diff_NKD, chol_KDD):
    from gaussian_math import calc_mixture_log_lik_N

    return {"log_lik_N": _arr(calc_mixture_log_lik_N(log_w_NK, diff_NKD, chol_KDD))}


def _true_moments(log_w_NK, mean_NKD, chol_KDD):
    """Mean and covariance of each example's mixture (computed here, from the inputs)."""
    w_NK = np.exp(log_w_NK)
    cov_KDD = chol_KDD @ np.swapaxes(chol_KDD, 1, 2)
    mean_ND = np.einsum("nk,nkd->nd", w_NK, mean_NKD)
    second_NDD = np.einsum("nk,kde->nde", w_NK, cov_KDD) + np.einsum(
        "nk,nkd,nke->nde", w_NK, mean_NKD, mean_NKD
    )
    return mean_ND, second_NDD - np.einsum("nd,ne->nde", mean_ND, mean_ND)


def _sample_properties(y_NSD, mean_ND, cov_NDD, n_samples):
    """Shape check, largest |z| of the sample means and largest relative error of the variances."""
    N, D = mean_ND.shape
    ok_shape = float(np.shape(y_NSD) == (N, n_samples, D))
    if not ok_shape:
        return {"shape_ok": 0.0, "max_abs_z_mean": 1e9, "max_var_ratio_error": 1e9, "max_abs_corr_error": 1e9}
    y_NSD = _arr(y_NSD)
    var_ND = np.diagonal(cov_NDD, axis1=1, axis2=2)
    z_ND = (y_NSD.mean(axis=1) - mean_ND) / np.sqrt(var_ND / n_samples)
    sample_var_ND = y_NSD.var(axis=1, ddof=1)
    centred_NSD = y_NSD - y_NSD.mean(axis=1, keepdims=True)
    sample_cov_NDD = np.einsum("nsd,nse->nde", centred_NSD, centred_NSD) / (n_samples - 1)
    scale_ND = np.sqrt(var_ND)
    corr_err = np.abs(sample_cov_NDD - cov_NDD) / (scale_ND[:, :, None] * scale_ND[:, None, :])
    return {
        "shape_ok": 1.0,
        "max_abs_z_mean": float(np.max(np.abs(z_ND))),
        "max_var_ratio_error": float(np.max(np.abs(sample_var_ND / var_ND - 1.0))),
        "max_abs_corr_error": float(np.max(corr_err)),
    }


def sample_mixture(log_w_NK, mean_NKD, chol_KDD, n_samples, seed):
    """Moments of the draws against the mixture's own moments; the same seed gives the same draws."""
    from gaussian_math import sample_mixture as sample

    y = sample(log_w_NK, mean_NKD, chol_KDD, n_samples, np.random.RandomState(seed))
    again = sample(log_w_NK, mean_NKD, chol_KDD, n_samples, np.random.RandomState(seed))
    mean_ND, cov_NDD = _true_moments(log_w_NK, mean_NKD, chol_KDD)
    out = _sample_properties(y, mean_ND, cov_NDD, n_samples)
    out["reproducible"] = float(np.array_equal(_arr(y), _arr(again)))
    return out


# --------------------------------------------------------------------------- conditional GMM


def condition(x_NI, log_pi_K, mu_KD, cov_KDD):
    from ConditionalGMMRegressor import condition_joint_gmm

    log_w, mean, chol = condition_joint_gmm(x_NI, log_pi_K, mu_KD, cov_KDD)
    chol = _arr(chol)
    return {
        "w_NK": np.exp(_arr(log_w)),
        "mean_NKO": _arr(mean),
        "cond_cov_KOO": chol @ np.swapaxes(chol, 1, 2),
    }


def cgmm_estep(x_NI, y_NO, params):
    r_NK, objective = _model("cgmm", params).estep__calc_r_NK(x_NI, y_NO)
    return {"r_NK": _arr(r_NK), "mean_log_lik": _value(objective)}


def cgmm_mstep(x_NI, y_NO, r_NK, params, reg_covar):
    model = _model("cgmm", params, reg_covar=reg_covar)
    model.mstep__update_params(x_NI, y_NO, r_NK)
    return _cgmm_params(model)


def cgmm_fit(x_NI, y_NO, r_init_NK, n_components, reg_covar, max_iter, tol, x_eval_NI, y_eval_NO):
    """Fit from given initial responsibilities (so a different initializer costs nothing here)."""
    model = _model("cgmm", {}, n_components=n_components, reg_covar=reg_covar, max_iter=max_iter, tol=tol)
    model.init_responsibilities = lambda x, y, rng: r_init_NK
    model.fit(x_NI, y_NO)
    return {
        **_cgmm_params(model),
        "history": _arr(model.history),
        "score_eval": _value(model.score(x_eval_NI, y_eval_NO)),
    }


def cgmm_fit_raises(x_NI, y_NO, n_components, reg_covar):
    """1.0 when fit raises a ValueError (a singular covariance without reg_covar), else 0.0."""
    try:
        _model("cgmm", {}, n_components=n_components, reg_covar=reg_covar, random_state=0).fit(x_NI, y_NO)
    except ValueError:
        return {"raised_value_error": 1.0}
    except Exception:  # noqa: BLE001 - any other failure is the wrong behaviour, not a crash of the probe
        return {"raised_value_error": 0.0}
    return {"raised_value_error": 0.0}


def use_model(kind, params, x_NI, y_NO, settings=None):
    """predict, score_samples and score of a model with the given parameters, and whether score is
    the mean of score_samples."""
    model = _model(kind, params, **(settings or {}))
    log_lik_N = _arr(model.score_samples(x_NI, y_NO))
    score = model.score(x_NI, y_NO)
    return {
        "predict_NO": _arr(model.predict(x_NI)),
        "log_lik_N": log_lik_N,
        "score": _value(score),
        "score_minus_mean": abs(float(score) - float(np.mean(log_lik_N))),
    }


def sample_model(kind, params, x_NI, n_samples, seed, true_mean_ND, true_cov_NDD, settings=None):
    """Draws of model.sample against the true conditional moments (built from the same parameters
    in tests.py); the same random_state gives the same draws."""
    model = _model(kind, params, **(settings or {}))
    y = model.sample(x_NI, n_samples=n_samples, random_state=seed)
    again = model.sample(x_NI, n_samples=n_samples, random_state=seed)
    out = _sample_properties(y, true_mean_ND, true_cov_NDD, n_samples)
    out["reproducible"] = float(np.array_equal(_arr(y), _arr(again)))
    return out


# --------------------------------------------------------------------------- mixture of experts


def moe_estep(x_NI, y_NO, params):
    r_NK, objective = _model("moe", params).estep__calc_r_NK(x_NI, y_NO)
    return {"r_NK": _arr(r_NK), "mean_log_lik": _value(objective)}


def moe_experts(x_NI, y_NO, r_NK, params, reg_covar):
    model = _model("moe", params, reg_covar=reg_covar)
    coef_KIO, intercept_KO, cov_KOO = model.mstep__update_experts(x_NI, y_NO, r_NK)
    model.coef_KIO, model.intercept_KO = coef_KIO, intercept_KO
    return {"expert_mean_NKO": _moe_means(model, x_NI), "cov_KOO": _arr(cov_KOO)}


def moe_gate(x_NI, r_NK, params, gate_penalty):
    """The gate the M-step fits, as probabilities at the inputs, and its loss."""
    from MixtureOfExpertsRegressor import calc_log_gate_NK

    model = _model("moe", params, gate_penalty=gate_penalty)
    coef_IK, intercept_K = model.mstep__update_gate(x_NI, r_NK)
    flat = np.concatenate([_arr(coef_IK).ravel(), _arr(intercept_K)])
    return {
        "gate_NK": np.exp(_arr(calc_log_gate_NK(x_NI, _arr(coef_IK), _arr(intercept_K)))),
        "loss": _value(model.calc_gate_loss(flat, x_NI, r_NK)),
    }


def moe_gate_loss(x_NI, r_NK, flat, gate_penalty, n_components):
    import autograd

    model = _model("moe", {}, n_components=n_components, gate_penalty=gate_penalty)
    loss, grad = autograd.value_and_grad(model.calc_gate_loss)(flat, x_NI, r_NK)
    return {"loss": _value(loss), "grad": _arr(grad)}


def log_gate(x_NI, gate_coef_IK, gate_intercept_K):
    from MixtureOfExpertsRegressor import calc_log_gate_NK

    return {"gate_NK": np.exp(_arr(calc_log_gate_NK(x_NI, gate_coef_IK, gate_intercept_K)))}


def moe_fit(x_NI, y_NO, r_init_NK, n_components, reg_covar, max_iter, tol, x_eval_NI, y_eval_NO):
    """Fit from given initial responsibilities; the fitted model is compared through what it
    predicts at x_eval (its gate, expert means and covariances), not its coefficients."""
    model = _model("moe", {}, n_components=n_components, reg_covar=reg_covar, max_iter=max_iter, tol=tol)
    model.init_responsibilities = lambda x, y, rng: r_init_NK
    model.fit(x_NI, y_NO)
    from MixtureOfExpertsRegressor import calc_log_gate_NK

    gate = np.exp(_arr(calc_log_gate_NK(x_eval_NI, _arr(model.gate_coef_IK), _arr(model.gate_intercept_K))))
    return {
        "gate_NK": gate,
        "expert_mean_NKO": _moe_means(model, x_eval_NI),
        "cov_KOO": _arr(model.cov_KOO),
        "history": _arr(model.history),
        "score_eval": _value(model.score(x_eval_NI, y_eval_NO)),
    }


def moe_single_expert(x_NI, y_NO, reg_covar):
    """K = 1: the fit must be least squares with the residual covariance (checked here directly)."""
    model = _model("moe", {}, n_components=1, reg_covar=reg_covar, max_iter=5, random_state=0).fit(x_NI, y_NO)
    design = np.hstack([x_NI, np.ones((len(x_NI), 1))])
    beta = np.linalg.lstsq(design, y_NO, rcond=None)[0]
    resid = y_NO - design @ beta
    cov = resid.T @ resid / len(x_NI) + reg_covar * np.eye(y_NO.shape[1])
    log_lik = -0.5 * (
        np.sum(resid * np.linalg.solve(cov, resid.T).T, axis=1) + np.linalg.slogdet(2 * np.pi * cov)[1]
    )
    return {
        "max_predict_error": float(np.max(np.abs(_arr(model.predict(x_NI)) - design @ beta))),
        "max_cov_error": float(np.max(np.abs(_arr(model.cov_KOO)[0] - cov))),
        "score_error": abs(float(model.score(x_NI, y_NO)) - float(np.mean(log_lik))),
    }


# --------------------------------------------------------------------------- discriminative CGMM


def dcgmm_loss(x_NI, y_NO, params, reg_covar):
    """Loss and gradient norm at the student's own packing of params, and the round trip."""
    import autograd

    model = _model("dcgmm", {}, n_components=len(params["log_pi_K"]), reg_covar=reg_covar)
    flat = model.to_flat_array(params["log_pi_K"], params["mu_KD"], params["cov_KDD"])
    loss, grad = autograd.value_and_grad(model.calc_loss)(flat, x_NI, y_NO)
    log_pi_K, mu_KD, cov_KDD = model.to_common_parameters(flat)
    grad_norm = float(np.linalg.norm(_arr(grad)))
    return {
        "loss": _value(loss),
        "grad_norm_per_param": grad_norm / np.sqrt(len(flat)),
        "pi_K": np.exp(_arr(log_pi_K)),
        "mu_KD": _arr(mu_KD),
        "cov_KDD": _arr(cov_KDD),
    }


def dcgmm_grad_check(x_NI, y_NO, params, reg_covar, seed):
    """Autograd's gradient of calc_loss against central differences along random directions."""
    import autograd

    model = _model("dcgmm", {}, n_components=len(params["log_pi_K"]), reg_covar=reg_covar)
    flat = _arr(model.to_flat_array(params["log_pi_K"], params["mu_KD"], params["cov_KDD"]))
    grad = _arr(autograd.grad(model.calc_loss)(flat, x_NI, y_NO))
    rng = np.random.RandomState(seed)
    worst = 0.0
    for _ in range(3):
        v = rng.randn(len(flat))
        v /= np.linalg.norm(v)
        h = 1e-5
        numeric = (
            float(model.calc_loss(flat + h * v, x_NI, y_NO))
            - float(model.calc_loss(flat - h * v, x_NI, y_NO))
        ) / (2 * h)
        worst = max(worst, abs(numeric - grad @ v) / max(1.0, abs(numeric)))
    return {"max_directional_error": worst}


def dcgmm_fit(x_NI, y_NO, n_components, reg_covar, max_iter, em_max_iter, x_eval_NI, y_eval_NO):
    """Properties of a discriminative fit: the loss went down from the EM start, the reported final
    loss is the loss of the stored parameters, and the held-out score."""
    model = _model(
        "dcgmm",
        {},
        n_components=n_components,
        reg_covar=reg_covar,
        max_iter=max_iter,
        em_max_iter=em_max_iter,
        random_state=0,
    )
    model.fit(x_NI, y_NO)
    history = _arr(model.history)
    return {
        "loss_decrease": float(history[0] - history[-1]),
        "final_loss_error": abs(float(history[-1]) + float(model.score(x_NI, y_NO))),
        "score_eval": _value(model.score(x_eval_NI, y_eval_NO)),
    }
