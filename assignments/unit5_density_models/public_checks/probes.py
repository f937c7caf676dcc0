"""Probes for unit 5: they run inside the sandboxed worker, call the student's modules and return
plain numbers/arrays. Nothing here is secret; the reference values never reach this file.

Gradients are taken with autograd through the student's own functions, so a function that is not
written with autograd.numpy (or that calls float() on its result) fails the gradient outputs.
"""

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _value(x):
    """A float for one-element results, else the array (so a shape mistake shows as one)."""
    arr = _f64(x)
    return float(arr.reshape(())) if arr.size == 1 and arr.ndim <= 1 else arr


# --------------------------------------------------------------------------- VAE objective


def gaussian_kl(mu_NZ, log_var_NZ):
    import autograd
    from vae_objective import gaussian_kl_N

    kl_N = gaussian_kl_N(mu_NZ, log_var_NZ)
    g_mu, g_lv = autograd.grad(lambda m, lv: autograd.numpy.sum(gaussian_kl_N(m, lv)), (0, 1))(
        mu_NZ, log_var_NZ
    )
    return {"kl_N": _f64(kl_N), "grad_mu_NZ": _f64(g_mu), "grad_log_var_NZ": _f64(g_lv)}


def bernoulli_log_lik(x_ND, logits_ND, weights_N):
    import autograd
    from vae_objective import bernoulli_log_lik_N

    value = bernoulli_log_lik_N(x_ND, logits_ND)
    grad = autograd.grad(lambda lg: autograd.numpy.sum(bernoulli_log_lik_N(x_ND, lg) * weights_N))(logits_ND)
    return {"log_lik_N": _f64(value), "grad_logits_ND": _f64(grad)}


def sample_z(mu_Z, log_var_Z, N, seed, dtype):
    """Moments of N draws from one posterior, as z-scores, and the reparameterisation's gradient."""
    import autograd
    from vae_objective import sample_z_NZ

    mu_NZ = np.tile(mu_Z, (N, 1)).astype(dtype)
    lv_NZ = np.tile(log_var_Z, (N, 1)).astype(dtype)
    rng = np.random.default_rng(seed)
    z_NZ = sample_z_NZ(mu_NZ, lv_NZ, rng)
    again_NZ = sample_z_NZ(mu_NZ, lv_NZ, rng)
    z = _f64(z_NZ)
    sd_Z = np.exp(0.5 * _f64(log_var_Z))
    mean_z = np.max(np.abs((z.mean(axis=0) - mu_Z) / (sd_Z / np.sqrt(N))))
    var_z = np.max(np.abs((z.var(axis=0) / sd_Z**2 - 1.0) / np.sqrt(2.0 / N)))
    # with the same seed, d sum(z) / d log_var = (z - mu) / 2 and d sum(z) / d mu = 1
    g_mu, g_lv = autograd.grad(
        lambda m, lv: autograd.numpy.sum(sample_z_NZ(m, lv, np.random.default_rng(seed))), (0, 1)
    )(mu_NZ, lv_NZ)
    grad_err = max(
        np.max(np.abs(_f64(g_mu) - 1.0)),
        np.max(np.abs(_f64(g_lv) - 0.5 * (z - _f64(mu_NZ))) / (1.0 + np.abs(z))),
    )
    return {
        "shape_ok": float(np.shape(z_NZ) == mu_NZ.shape),
        "dtype_kept": float(np.asarray(z_NZ).dtype == np.dtype(dtype)),
        "mean_zscore": float(mean_z),
        "var_zscore": float(var_z),
        "generator_advanced": float(not np.allclose(_f64(again_NZ), z)),
        "grad_error": float(grad_err),
    }


def _linear_vae():
    import autograd.numpy as anp

    def encode(p, x):
        return anp.dot(x, p["A"]) + p["a"], anp.dot(x, p["B"]) + p["b"]

    def decode(p, z):
        return anp.dot(z, p["C"]) + p["c"]

    return encode, decode


def batch_elbo(params, x_ND, seed):
    """ELBO of a batch under a linear encoder/decoder, and its gradient in every parameter."""
    import autograd
    from vae_objective import batch_elbo as elbo

    encode, decode = _linear_vae()
    value = elbo(params, x_ND, np.random.default_rng(seed), encode, decode)
    grads = autograd.grad(lambda p: elbo(p, x_ND, np.random.default_rng(seed), encode, decode))(params)
    out = {"elbo": _value(value)}
    out.update({f"grad_{k}": _f64(g) for k, g in grads.items()})
    return out


def batch_elbo_noise(params, x_ND, n_seeds):
    """Spread of the ELBO over seeds (0 if no sample is drawn) and its mean over seeds."""
    from vae_objective import batch_elbo as elbo

    encode, decode = _linear_vae()
    values = np.array(
        [float(elbo(params, x_ND, np.random.default_rng(s), encode, decode)) for s in range(n_seeds)]
    )
    return {"uses_a_sample": float(np.std(values) > 1e-6), "mean_over_seeds": float(values.mean())}


# --------------------------------------------------------------------------- layers


def dense(x_NI, W_IO, b_O):
    from layers import dense as layer

    return {"y_NO": _f64(layer(x_NI, W_IO, b_O))}


def conv(x_NCHW, W, b_O, stride, padding, output_padding, weights, transposed):
    """Layer output and autograd gradients of sum(weights * output) in x, W and b."""
    import autograd
    import autograd.numpy as anp
    import layers

    if transposed:

        def f(x, w, b):
            return layers.conv_transpose2d(
                x, w, b, stride=stride, padding=padding, output_padding=output_padding
            )
    else:

        def f(x, w, b):
            return layers.conv2d(x, w, b, stride=stride, padding=padding)

    y = f(x_NCHW, W, b_O)
    gx, gw, gb = autograd.grad(lambda x, w, b: anp.sum(f(x, w, b) * weights), (0, 1, 2))(x_NCHW, W, b_O)
    return {"y": _f64(y), "grad_x": _f64(gx), "grad_W": _f64(gw), "grad_b": _f64(gb)}


# --------------------------------------------------------------------------- Adam


def adam(params, grads, m, v, t, steps, settings):
    """``steps`` Adam steps with the same gradients (t, t+1, ...): parameters and moments after."""
    from adam import adam_step

    for step in range(steps):
        params, m, v = adam_step(params, grads, m, v, t + step, **settings)
    out = {}
    for name in sorted(params):
        out[f"param_{name}"] = _f64(params[name])
        out[f"m_{name}"] = _f64(m[name])
        out[f"v_{name}"] = _f64(v[name])
    return out


def adam_quadratic(theta_D, target_D, steps, lr):
    """Adam minimising 0.5 |theta - target|^2 from theta_D: the final distance to the target."""
    from adam import adam_step

    params = {"theta": np.array(theta_D, dtype=np.float64)}
    m = {"theta": np.zeros_like(params["theta"])}
    v = {"theta": np.zeros_like(params["theta"])}
    for t in range(1, steps + 1):
        params, m, v = adam_step(params, {"theta": params["theta"] - target_D}, m, v, t, lr=lr)
    return {"theta": _f64(params["theta"])}


# --------------------------------------------------------------------------- PPCA


def ppca_fit(x_ND, M):
    """Fitted mean, noise variance and marginal covariance W W^T + sigma2 I (sign/rotation free)."""
    from ppca import fit_ppca

    mu_D, W_DM, sigma2 = fit_ppca(x_ND, M)
    W = _f64(W_DM)
    C = W @ W.T + float(sigma2) * np.eye(W.shape[0])
    return {"mu_D": _f64(mu_D), "sigma2": float(sigma2), "C_DD": C, "W_shape": np.array(W.shape)}


def ppca_log_lik(x_ND, mu_D, W_DM, sigma2):
    from ppca import ppca_log_lik_N

    return {"log_lik_N": _f64(ppca_log_lik_N(x_ND, mu_D, W_DM, sigma2))}


def ppca_posterior(x_ND, mu_D, W_DM, sigma2):
    from ppca import ppca_posterior_mean

    return {"z_NM": _f64(ppca_posterior_mean(x_ND, mu_D, W_DM, sigma2))}


# --------------------------------------------------------------------------- GMM


def gmm_estep(x_ND, log_pi_K, mu_KD, cov_KDD):
    from gmm_full_em import calc_log_lik_N, estep__calc_r_NK

    return {
        "r_NK": _f64(estep__calc_r_NK(x_ND, log_pi_K, mu_KD, cov_KDD)),
        "log_lik_N": _f64(calc_log_lik_N(x_ND, log_pi_K, mu_KD, cov_KDD)),
    }


def gmm_mstep(x_ND, r_NK, reg):
    from gmm_full_em import mstep__update_params

    log_pi, mu, cov = mstep__update_params(x_ND, r_NK, reg)
    return {"pi_K": np.exp(_f64(log_pi)), "mu_KD": _f64(mu), "cov_KDD": _f64(cov)}


def gmm_fit(x_ND, K, reg, n_iter, seed):
    """History length, its smallest step (EM never decreases it) and, for K=1, the fit itself."""
    from gmm_full_em import fit_gmm

    (log_pi_K, mu_KD, cov_KDD), history = fit_gmm(x_ND, K, reg, n_iter, np.random.default_rng(seed))
    h = _f64(history)
    out = {
        "n_history": len(h),
        "min_step": float(np.min(np.diff(h))) if len(h) > 1 else 0.0,
        "final_mean_log_lik": float(h[-1]),
    }
    if K == 1:
        out.update({"mu_KD": _f64(mu_KD), "cov_KDD": _f64(cov_KDD)})
    return out
