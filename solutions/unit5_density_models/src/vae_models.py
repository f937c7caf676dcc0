"""The two VAEs of this unit and their training loop (given code: it calls the functions you write).

Parameters live in a dict of float32 arrays. Both models use a Gaussian encoder returning
(mu_NZ, log_var_NZ) and a decoder returning Bernoulli logits of shape (N, 784).

* MLP VAE: 784 -> H (ReLU) -> 2 x Z   and   Z -> H (ReLU) -> 784: two linear layers each side.
* Conv VAE: encoder 1 -> 16 -> 32 channels, 3 x 3 kernels, stride 2, padding 1 (28 -> 14 -> 7), then a
  linear layer to 2 x Z; decoder a linear layer Z -> 32 x 7 x 7, then the mirrored transposed
  convolutions 32 -> 16 -> 1 (stride 2, padding 1, output padding 1: 7 -> 14 -> 28).
"""

import time

import autograd
import autograd.numpy as anp
import numpy as np
from adam import adam_step
from layers import conv2d, conv_transpose2d, dense
from scipy.special import logsumexp
from vae_objective import batch_elbo, bernoulli_log_lik_N, gaussian_kl_N, sample_z_NZ

D_PIXELS = 784


def _uniform(rng, bound, shape):
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def _glorot(rng, fan_in, fan_out, shape):
    return _uniform(rng, np.sqrt(6.0 / (fan_in + fan_out)), shape)


def init_mlp_vae(rng, hidden=512, latent=2):
    """Random initial parameters of the MLP VAE.

    Glorot-uniform weights and zero biases, except in the decoder's first layer (latent -> hidden),
    whose fan-in is only Z = 2. Glorot would draw its weights from +-sqrt(6 / (Z + H)), small for
    H = 512, and zero biases would put the kink of every ReLU unit, the line w_h . z + b_h = 0,
    through z = 0: the decoder would start as a fan of lines through the origin of the latent plane.
    Weights and biases uniform on +-1 / sqrt(Z) (PyTorch's default for a linear layer) scatter the
    kinks over the bulk of the prior instead. (What that is worth is part of the notebook's Question
    4. In one conv VAE run the same change made the ELBO after 5 epochs worse, so init_conv_vae keeps
    Glorot.)
    """
    D, H, Z = D_PIXELS, hidden, latent
    latent_bound = 1.0 / np.sqrt(Z)
    zeros = lambda n: np.zeros(n, dtype=np.float32)  # noqa: E731
    return {
        "enc_W1": _glorot(rng, D, H, (D, H)),
        "enc_b1": zeros(H),
        "enc_W2": _glorot(rng, H, 2 * Z, (H, 2 * Z)),
        "enc_b2": zeros(2 * Z),
        "dec_W1": _uniform(rng, latent_bound, (Z, H)),
        "dec_b1": _uniform(rng, latent_bound, H),
        "dec_W2": _glorot(rng, H, D, (H, D)),
        "dec_b2": zeros(D),
    }


def relu(a):
    """max(a, 0) elementwise, with a gradient of the same dtype as a.

    Written as a * (a > 0) rather than anp.maximum(a, 0.0): autograd's gradient of maximum is built
    from float64 masks, so in a float32 network it would turn every gradient below it into float64.
    """
    return a * (a > 0)


def encode_mlp(params, x_ND):
    h_NH = relu(dense(x_ND, params["enc_W1"], params["enc_b1"]))
    out_N2Z = dense(h_NH, params["enc_W2"], params["enc_b2"])
    Z = out_N2Z.shape[1] // 2
    return out_N2Z[:, :Z], out_N2Z[:, Z:]


def decode_mlp(params, z_NZ):
    h_NH = relu(dense(z_NZ, params["dec_W1"], params["dec_b1"]))
    return dense(h_NH, params["dec_W2"], params["dec_b2"])


def init_conv_vae(rng, latent=2):
    """Random initial parameters of the convolutional VAE."""
    Z, F = latent, 32 * 7 * 7
    zeros = lambda n: np.zeros(n, dtype=np.float32)  # noqa: E731
    return {
        "enc_C1": _glorot(rng, 9, 16 * 9, (16, 1, 3, 3)),
        "enc_c1": zeros(16),
        "enc_C2": _glorot(rng, 16 * 9, 32 * 9, (32, 16, 3, 3)),
        "enc_c2": zeros(32),
        "enc_W": _glorot(rng, F, 2 * Z, (F, 2 * Z)),
        "enc_b": zeros(2 * Z),
        "dec_W": _glorot(rng, Z, F, (Z, F)),
        "dec_b": zeros(F),
        "dec_T1": _glorot(rng, 32 * 9, 16 * 9, (32, 16, 3, 3)),
        "dec_t1": zeros(16),
        "dec_T2": _glorot(rng, 16 * 9, 9, (16, 1, 3, 3)),
        "dec_t2": zeros(1),
    }


def encode_conv(params, x_ND):
    x_N1HW = anp.reshape(x_ND, (-1, 1, 28, 28))
    h1 = relu(conv2d(x_N1HW, params["enc_C1"], params["enc_c1"], stride=2, padding=1))
    h2 = relu(conv2d(h1, params["enc_C2"], params["enc_c2"], stride=2, padding=1))
    out_N2Z = dense(anp.reshape(h2, (h2.shape[0], -1)), params["enc_W"], params["enc_b"])
    Z = out_N2Z.shape[1] // 2
    return out_N2Z[:, :Z], out_N2Z[:, Z:]


def decode_conv(params, z_NZ):
    h_NF = relu(dense(z_NZ, params["dec_W"], params["dec_b"]))
    h = anp.reshape(h_NF, (-1, 32, 7, 7))
    h = relu(conv_transpose2d(h, params["dec_T1"], params["dec_t1"], stride=2, padding=1, output_padding=1))
    y = conv_transpose2d(h, params["dec_T2"], params["dec_t2"], stride=2, padding=1, output_padding=1)
    return anp.reshape(y, (y.shape[0], D_PIXELS))


MODELS = {"mlp": (init_mlp_vae, encode_mlp, decode_mlp), "conv": (init_conv_vae, encode_conv, decode_conv)}


def train_vae(
    kind, x_train_ND, n_epochs, rng, batch_size=128, lr=1e-3, x_valid_ND=None, verbose=True, **init_kw
):
    """Adam on the negative batch ELBO, reshuffling every epoch.

    Returns the parameters and a history (list of dicts: epoch, train ELBO = mean of the epoch's batch
    ELBOs, valid ELBO if x_valid_ND is given, seconds since the start).
    """
    init, encode, decode = MODELS[kind]
    params = init(rng, **init_kw)
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    loss_grad = autograd.value_and_grad(lambda p, x, r: -batch_elbo(p, x, r, encode, decode))
    x_train_ND = np.asarray(x_train_ND, dtype=np.float32)
    N = len(x_train_ND)
    history, t, start = [], 0, time.perf_counter()
    for epoch in range(1, n_epochs + 1):
        order = rng.permutation(N)
        total = 0.0
        for first in range(0, N, batch_size):
            batch = x_train_ND[order[first : first + batch_size]]
            loss, grads = loss_grad(params, batch, rng)
            t += 1
            params, m, v = adam_step(params, grads, m, v, t, lr=lr)
            total += float(loss) * len(batch)
        row = {"epoch": epoch, "train_elbo": -total / N, "seconds": time.perf_counter() - start}
        if x_valid_ND is not None:
            row["valid_elbo"] = float(np.mean(elbo_N(kind, params, x_valid_ND, rng)))
        history.append(row)
        if verbose:
            valid = f"  valid ELBO {row['valid_elbo']:8.2f}" if "valid_elbo" in row else ""
            print(
                f"{kind} VAE epoch {epoch:3d}  train ELBO {row['train_elbo']:8.2f}{valid}  "
                f"{row['seconds']:7.1f} s",
                flush=True,
            )
    return params, history


def _batches(x_ND, size=1000):
    x_ND = np.asarray(x_ND, dtype=np.float32)
    return [x_ND[i : i + size] for i in range(0, len(x_ND), size)]


def elbo_terms_N(kind, params, x_ND, rng):
    """The two terms of every row's one-sample ELBO, in nats (float64 arrays of shape (N,)).

    Returns (log_lik_N, kl_N): log p(x_n | z_n) at one draw z_n ~ q(z | x_n), and
    KL(q(z | x_n) || p(z)). The ELBO is log_lik_N - kl_N.
    """
    _, encode, decode = MODELS[kind]
    log_lik, kl = [], []
    for x in _batches(x_ND):
        mu, log_var = encode(params, x)
        log_lik.append(bernoulli_log_lik_N(x, decode(params, sample_z_NZ(mu, log_var, rng))))
        kl.append(gaussian_kl_N(mu, log_var))
    return np.concatenate(log_lik).astype(np.float64), np.concatenate(kl).astype(np.float64)


def elbo_N(kind, params, x_ND, rng):
    """One-sample ELBO of every row (nats)."""
    log_lik_N, kl_N = elbo_terms_N(kind, params, x_ND, rng)
    return log_lik_N - kl_N


def encode_mean(kind, params, x_ND):
    """Posterior means (N, Z)."""
    _, encode, _ = MODELS[kind]
    return np.concatenate([encode(params, x)[0] for x in _batches(x_ND)]).astype(np.float64)


def decode_mean(kind, params, z_NZ):
    """Bernoulli means sigmoid(logits) of the decoder at z_NZ (N, 784)."""
    _, _, decode = MODELS[kind]
    logits = np.concatenate([decode(params, z) for z in _batches(z_NZ)]).astype(np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * logits))


def log_continuous_bernoulli_norm(logits):
    """log C(lambda) of the continuous Bernoulli with lambda = sigmoid(logits): C = l / tanh(l / 2).

    Adding it to the Bernoulli log likelihood turns p(x | z) into a proper density on [0, 1]^D.
    """
    l_abs = np.abs(np.asarray(logits, dtype=np.float64))
    small = l_abs < 1e-3
    safe = np.where(small, 1.0, l_abs)
    return np.where(small, np.log(2.0) + l_abs**2 / 12.0, np.log(safe) - np.log(np.tanh(safe / 2)))


def iw_log_lik_N(kind, params, x_ND, rng, n_samples=100, continuous=False, batch=100):
    """Importance-weighted estimate of log p(x_n) with q(z | x) as proposal (Burda et al., 2016).

    log p(x) ~ logsumexp_s [log p(x | z_s) + log p(z_s) - log q(z_s | x)] - log S. With continuous=True
    the decoder is read as a continuous Bernoulli, a density on [0, 1]^D (for dequantised pixels).
    """
    _, encode, decode = MODELS[kind]
    out = []
    for x in _batches(x_ND, batch):
        mu, log_var = (np.asarray(a, dtype=np.float64) for a in encode(params, x))
        B, Z = mu.shape
        eps = rng.standard_normal((n_samples, B, Z))
        z = mu + np.exp(0.5 * log_var) * eps
        logits = np.asarray(decode(params, z.reshape(-1, Z).astype(np.float32)), dtype=np.float64)
        x_rep = np.broadcast_to(x, (n_samples, B, x.shape[1])).reshape(-1, x.shape[1])
        log_px = bernoulli_log_lik_N(x_rep, logits)
        if continuous:
            log_px = log_px + np.sum(log_continuous_bernoulli_norm(logits), axis=1)
        log_pz = -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=2)
        log_q = -0.5 * np.sum(eps**2 + np.log(2 * np.pi) + log_var, axis=2)
        log_w = log_px.reshape(n_samples, B) + log_pz - log_q
        out.append(logsumexp(log_w, axis=0) - np.log(n_samples))
    return np.concatenate(out)
