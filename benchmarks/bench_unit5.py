"""Unit 5 speed: VAE training epochs with the instructor solution, and its convolutions against loops.

- The report's PPCA row (M = 2, closed form): test log density on [0, 1] and on 0-255 pixels, and the
  reconstruction MSE with z = E[z | x] and with z drawn from the posterior (the report's 0.0558).

- The report's GMM row: scikit-learn's GaussianMixture (full covariances, its default reg_covar 1e-6)
  fit on 0-255 pixels of ``--gmm-train`` training images with ``--gmm-k`` components, and the same
  fit on [0, 1] pixels: the test log densities per image (mean, median, lowest, how many below
  -1e6) and the MSE of the reconstructions (responsibility-weighted component means) on [0, 1].

- MLP VAE (784-512-2, float32, batch 128) and conv VAE (the unit's architecture): the seconds of one
  real training epoch, the notebook's ``train_vae`` on all 60 000 training images (469 shuffled
  batches: value and gradient of the batch ELBO by autograd, then an Adam step).
- The plain peer of the MLP VAE: the same model, loss and Adam steps with the gradient derived by
  hand and written out in numpy (no autograd), checked against autograd's on one batch, and run
  through the same ``train_vae`` loop. Its epoch is what the autograd model answer is compared with
  (the ratio is printed).
- One MLP step taken apart: its five large matrix products as bare numpy calls (the floor), the
  ELBO's value, and inside real training steps its value and gradient by autograd and the Adam step.
- conv2d and conv_transpose2d of the conv VAE's layers on one batch of 128 images: the solution's
  im2col (0/1 selection matrices and one matrix product) against a plain implementation with a
  Python loop over output pixels (conv) or input pixels (transposed conv), checked to agree.

All numbers come from one run; each time is the best of ``--repeats`` runs. The load average is
printed beside them (the machine may be shared). Nothing here asserts a wall-clock time.

Usage: python benchmarks/bench_unit5.py [--repeats 3] [--threads 2]
                                       [--gmm-train 5000] [--gmm-k 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 128
BY_HAND = "mlp (gradient by hand, no autograd)"


def best(f, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``f``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def mlp_loss_and_grads(params, x_ND, rng):
    """Negative batch ELBO of the MLP VAE and its gradient, derived by hand (the plain peer).

    The same computation as ``-batch_elbo`` with ``encode_mlp`` / ``decode_mlp`` (and the same draw
    of the noise from ``rng``), followed by backpropagation written out layer by layer.
    """
    import numpy as np

    p, N = params, len(x_ND)
    a1 = x_ND @ p["enc_W1"] + p["enc_b1"]
    h1 = np.maximum(a1, 0.0)
    out = h1 @ p["enc_W2"] + p["enc_b2"]
    Z = out.shape[1] // 2
    mu, log_var = out[:, :Z], out[:, Z:]
    eps = rng.standard_normal(mu.shape).astype(mu.dtype)
    sd = np.exp(0.5 * log_var)
    z = mu + sd * eps
    a2 = z @ p["dec_W1"] + p["dec_b1"]
    h2 = np.maximum(a2, 0.0)
    logits = h2 @ p["dec_W2"] + p["dec_b2"]
    log_lik = np.sum(x_ND * logits - np.logaddexp(0.0, logits))
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1.0 - log_var)
    loss = (kl - log_lik) / N
    # backward: d loss / d logits = (sigmoid(logits) - x) / N, then the chain rule layer by layer
    g_logits = (0.5 * (1.0 + np.tanh(0.5 * logits)) - x_ND) / N
    g = {"dec_W2": h2.T @ g_logits, "dec_b2": g_logits.sum(axis=0)}
    g_a2 = (g_logits @ p["dec_W2"].T) * (a2 > 0)
    g.update(dec_W1=z.T @ g_a2, dec_b1=g_a2.sum(axis=0))
    g_z = g_a2 @ p["dec_W1"].T
    g_out = np.concatenate([g_z + mu / N, 0.5 * (g_z * eps * sd + (np.exp(log_var) - 1.0) / N)], axis=1)
    g.update(enc_W2=h1.T @ g_out, enc_b2=g_out.sum(axis=0))
    g_a1 = (g_out @ p["enc_W2"].T) * (a1 > 0)
    g.update(enc_W1=x_ND.T @ g_a1, enc_b1=g_a1.sum(axis=0))
    return loss, g


class _HandGradient:
    """Stands in for the autograd module inside ``train_vae``: its ``value_and_grad`` hands back the
    gradient derived by hand, so the peer runs through the notebook's own training loop unchanged."""

    @staticmethod
    def value_and_grad(_objective):
        return mlp_loss_and_grads  # called as loss_grad(params, batch, rng), like autograd's


def time_training(args, train_u8) -> None:
    """Seconds of one real training epoch of each VAE: ``train_vae`` on all 60 000 training images
    (shuffled batches of 128, value and gradient of the batch ELBO, an Adam step), best of
    ``--repeats``; the peer runs in the same loop with its gradient derived by hand."""
    import contextlib
    from unittest import mock

    import numpy as np
    import vae_models

    x = (train_u8.reshape(-1, 784) / 255.0).astype(np.float32)
    check_hand_gradient(vae_models.init_mlp_vae(np.random.default_rng(0), hidden=512), x[:BATCH])
    epoch = {}
    for name, kind, kw in (
        ("mlp", "mlp", {"hidden": 512}),
        (BY_HAND, "mlp", {"hidden": 512}),
        ("conv", "conv", {}),
    ):
        seconds = []
        for repeat in range(args.repeats):
            gradient = mock.patch.object(vae_models, "autograd", _HandGradient)
            with gradient if name == BY_HAND else contextlib.nullcontext():
                _, history = vae_models.train_vae(
                    kind, x, 1, np.random.default_rng(repeat), verbose=False, **kw
                )
            seconds.append(history[0]["seconds"])
        epoch[name] = min(seconds)
        print(
            f"{name} VAE: one epoch of {len(x)} images {epoch[name]:5.1f} s (best of "
            f"{' '.join(f'{t:.1f}' for t in seconds)} s)",
            flush=True,
        )
    print(
        f"MLP VAE epoch, autograd / gradient by hand = {epoch['mlp'] / epoch[BY_HAND]:.2f}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def check_hand_gradient(params, x_ND) -> None:
    """Print how far the hand-derived MLP gradient is from autograd's on one batch (same noise)."""
    import autograd
    import numpy as np
    import vae_models
    from vae_objective import batch_elbo

    def neg_elbo(p):  # a generator in the same state as the one given to mlp_loss_and_grads
        return -batch_elbo(p, x_ND, np.random.default_rng(1), vae_models.encode_mlp, vae_models.decode_mlp)

    auto_loss, auto_g = autograd.value_and_grad(neg_elbo)(params)
    hand_loss, hand_g = mlp_loss_and_grads(params, x_ND, np.random.default_rng(1))
    err = max(
        float(np.max(np.abs(auto_g[k] - hand_g[k])) / (np.max(np.abs(auto_g[k])) + 1e-12)) for k in auto_g
    )
    print(
        f"MLP VAE gradient by hand against autograd on one batch: loss {hand_loss:.4f} vs "
        f"{float(auto_loss):.4f}, largest difference {err:.1e} (relative to each array's largest entry)"
    )


def mlp_step_breakdown(args, train_u8) -> None:
    """Where one MLP VAE training step goes: the matrix products alone against autograd and Adam.

    A step has five products of size 128 x 512 x 784: two in the forward pass (the first encoder
    layer, the last decoder layer) and three in the backward pass (the input and weight gradients
    of the last decoder layer, the weight gradient of the first encoder layer; the images need no
    gradient). The layers to and from the 2-d latent are cheap. Timed here as bare numpy products,
    the five are a floor that no implementation of this model goes under on this machine.
    """
    import autograd
    import numpy as np
    import vae_models
    from adam import adam_step
    from vae_objective import batch_elbo

    rng = np.random.default_rng(0)
    x_all = (train_u8.reshape(-1, 784) / 255.0).astype(np.float32)
    x = x_all[:BATCH]
    params = vae_models.init_mlp_vae(rng, hidden=512)
    encode, decode = vae_models.encode_mlp, vae_models.decode_mlp
    loss_grad = autograd.value_and_grad(lambda p, xb: -batch_elbo(p, xb, rng, encode, decode))
    h = rng.random((BATCH, 512), dtype=np.float32)
    g = rng.random((BATCH, 784), dtype=np.float32)
    W1, W2 = params["enc_W1"], params["dec_W2"]

    def products():
        return x @ W1, h @ W2, g @ W2.T, h.T @ g, x.T @ h

    n = 20  # calls per timing: the first calls of a process are slower (memory not yet reused)
    times = {
        name: best(lambda f=f: [f() for _ in range(n)], args.repeats) / n * 1e3
        for name, f in (
            ("products", products),
            ("value", lambda: batch_elbo(params, x, rng, encode, decode)),
        )
    }
    # Gradient and Adam are timed inside real training steps: Adam timed alone, on the same arrays
    # over and over, measures how glibc hands memory back and forth, not the step (3x slower here).
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    grad_ms, adam_ms = [], []
    for _ in range(args.repeats):
        spent = np.zeros(2)
        for t in range(1, n + 1):
            start = time.perf_counter()
            _, grads = loss_grad(params, x_all[(t - 1) * BATCH : t * BATCH])
            middle = time.perf_counter()
            params, m, v = adam_step(params, grads, m, v, t)
            spent += (middle - start, time.perf_counter() - middle)
        grad_ms.append(spent[0] / n * 1e3)
        adam_ms.append(spent[1] / n * 1e3)
    times["value+grad"], times["adam"] = min(grad_ms), min(adam_ms)
    floor = times["products"]
    print(
        f"MLP VAE step (batch {BATCH}): its five 128x512x784 products alone {floor:.1f} ms; "
        f"ELBO value {times['value']:.1f} ms; in training steps: value and gradient by autograd "
        f"{times['value+grad']:.1f} ms, Adam step {times['adam']:.1f} ms; one epoch at this rate "
        f"{(times['value+grad'] + times['adam']) * 469 / 1e3:.1f} s (of which the products "
        f"{floor * 469 / 1e3:.1f} s)"
    )


def loop_conv2d(xb, W, b, stride, padding):
    """conv2d with a Python loop over output pixels (the plain baseline)."""
    import numpy as np

    N, C, H, Wd = xb.shape
    O, _, K, _ = W.shape
    xp = np.pad(xb, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out, W_out = (H + 2 * padding - K) // stride + 1, (Wd + 2 * padding - K) // stride + 1
    y = np.zeros((N, O, H_out, W_out), dtype=xb.dtype)
    for a in range(H_out):
        for c in range(W_out):
            patch = xp[:, :, stride * a : stride * a + K, stride * c : stride * c + K]
            y[:, :, a, c] = np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3])) + b
    return y


def loop_conv_transpose2d(xb, W, b, stride, padding, output_padding):
    """conv_transpose2d with a Python loop over input pixels (the plain baseline)."""
    import numpy as np

    N, C, H, Wd = xb.shape
    _, O, K, _ = W.shape
    H_out = (H - 1) * stride - 2 * padding + K + output_padding
    W_out = (Wd - 1) * stride - 2 * padding + K + output_padding
    full = np.zeros((N, O, H_out + 2 * padding + K, W_out + 2 * padding + K), dtype=xb.dtype)
    for h in range(H):
        for w in range(Wd):
            full[:, :, stride * h : stride * h + K, stride * w : stride * w + K] += np.tensordot(
                xb[:, :, h, w], W, axes=([1], [0])
            )
    return full[:, :, padding : padding + H_out, padding : padding + W_out] + b[None, :, None, None]


def time_layers(args) -> None:
    """The conv VAE's four layers on one batch: the solution's im2col against the pixel loops."""
    import numpy as np
    from layers import conv2d, conv_transpose2d

    rng = np.random.default_rng(1)
    f32 = np.float32
    layers = [
        ("conv 1->16, 28->14", False, rng.random((BATCH, 1, 28, 28), dtype=f32), (16, 1, 3, 3), 16),
        ("conv 16->32, 14->7", False, rng.random((BATCH, 16, 14, 14), dtype=f32), (32, 16, 3, 3), 32),
        ("convT 32->16, 7->14", True, rng.random((BATCH, 32, 7, 7), dtype=f32), (32, 16, 3, 3), 16),
        ("convT 16->1, 14->28", True, rng.random((BATCH, 16, 14, 14), dtype=f32), (16, 1, 3, 3), 1),
    ]
    fast_total = loop_total = 0.0
    for name, transposed, xb, wshape, n_out in layers:
        W = rng.standard_normal(wshape).astype(f32)
        b = rng.standard_normal(n_out).astype(f32)
        if transposed:
            fast = partial(conv_transpose2d, xb, W, b, 2, 1, 1)
            plain = partial(loop_conv_transpose2d, xb, W, b, 2, 1, 1)
        else:
            fast = partial(conv2d, xb, W, b, 2, 1)
            plain = partial(loop_conv2d, xb, W, b, 2, 1)
        err = float(np.max(np.abs(fast() - plain())))
        t_fast, t_loop = best(fast, args.repeats), best(plain, args.repeats)
        fast_total += t_fast
        loop_total += t_loop
        print(
            f"{name:22s} im2col {t_fast * 1e3:7.1f} ms   pixel loop {t_loop * 1e3:7.1f} ms   "
            f"im2col / loop = {t_fast / t_loop:5.2f}   max |diff| {err:.1e}"
        )
    print(
        f"all four layers, batch of {BATCH}: im2col {fast_total * 1e3:.1f} ms, "
        f"pixel loop {loop_total * 1e3:.1f} ms, ratio {fast_total / loop_total:.2f}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def ppca_rows(train_u8, test_u8) -> None:
    """The report's PPCA row from the solution: log density on both pixel scales and both MSEs.

    The report's MSE 0.0558 reconstructs each test image from one z drawn from the posterior
    N(E[z | x], sigma2 (W^T W + sigma2 I)^-1); the posterior mean gives a slightly lower MSE.
    """
    import numpy as np
    import ppca

    x_tr = train_u8.reshape(-1, 784) / 255.0
    x_te = test_u8.reshape(-1, 784) / 255.0
    mu_D, W_DM, sigma2 = ppca.fit_ppca(x_tr, 2)
    log_lik = ppca.ppca_log_lik_N(x_te, mu_D, W_DM, sigma2).mean()
    z_mean_NM = ppca.ppca_posterior_mean(x_te, mu_D, W_DM, sigma2)
    cov_MM = sigma2 * np.linalg.inv(W_DM.T @ W_DM + sigma2 * np.eye(2))  # a 2 x 2 inverse, for sampling
    z_draw_NM = z_mean_NM + np.random.default_rng(0).multivariate_normal(np.zeros(2), cov_MM, len(x_te))
    mse = {
        name: np.mean((z @ W_DM.T + mu_D - x_te) ** 2)
        for name, z in (("mean", z_mean_NM), ("draw", z_draw_NM))
    }
    print(
        f"PPCA M=2: test log density {log_lik:.2f} nats per image on [0, 1], "
        f"{log_lik - 784 * np.log(255.0):.2f} on 0-255 (report -4329.7); MSE with z = E[z | x] "
        f"{mse['mean']:.4f}, with z drawn from the posterior {mse['draw']:.4f} (report 0.0558)"
    )


def gmm_rows(train_u8, test_u8, n_train: int, K: int) -> None:
    """The report's GMM row: scikit-learn full-covariance GaussianMixture with its default ridge.

    A pixel that is (nearly) constant in the training images gets a variance of about 1e-6, so a
    test image with ink there is given an enormous negative log density: the mean over the test
    set is then set by a few such images, on either pixel scale. The reconstruction of an image is
    its responsibility-weighted mean of the component means (shown on [0, 1] for both fits).
    """
    import numpy as np
    from sklearn.mixture import GaussianMixture

    x_te = test_u8.reshape(-1, 784).astype(np.float64)
    for scale, name in ((1.0, "0-255"), (255.0, "[0, 1]")):
        start = time.perf_counter()
        gmm = GaussianMixture(K, covariance_type="full", random_state=0)
        gmm.fit(train_u8[:n_train].reshape(-1, 784) / scale)
        ll = gmm.score_samples(x_te / scale)
        recon = gmm.predict_proba(x_te / scale) @ gmm.means_ * scale / 255.0
        mse = np.mean((recon - x_te / 255.0) ** 2)
        print(
            f"GMM (scikit-learn, K={K}, reg_covar 1e-6, {n_train} training images) on {name} pixels: "
            f"test log density mean {ll.mean():.4g}, median {np.median(ll):.4g}, lowest {ll.min():.4g} "
            f"nats per image, {np.sum(ll < -1e6)} image(s) below -1e6; MSE {mse:.4f} "
            f"(report -1.0664e7, 0.0589); {gmm.n_iter_} EM iterations, {time.perf_counter() - start:.0f} s",
            flush=True,
        )


def main() -> None:
    """Parse the flags, fix the BLAS threads before numpy loads, run both measurements."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement (best is kept)")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads")
    ap.add_argument("--gmm-train", type=int, default=5000, help="training images of the GMM rows")
    ap.add_argument("--gmm-k", type=int, default=10, help="components of the GMM rows")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(ROOT / "solutions" / "unit5_density_models" / "src"))
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, BLAS threads {args.threads}")
    from gmmcourse.data import load_mnist

    (train_u8, _), (test_u8, _) = load_mnist("train"), load_mnist("test")  # read once, used by both
    ppca_rows(train_u8, test_u8)
    gmm_rows(train_u8, test_u8, args.gmm_train, args.gmm_k)
    time_training(args, train_u8)
    mlp_step_breakdown(args, train_u8)
    time_layers(args)


if __name__ == "__main__":
    main()
