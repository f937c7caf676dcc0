"""Unit 5: the notebook's MLP VAE trained in PyTorch, a second implementation of the same recipe.

    python benchmarks/peer_unit5_torch.py [--seeds 5,6,7] [--inits notebook,torch] [--test]

Question 4 says that no variant within the report's description (two linear layers per side, a
2-d latent, Adam at 1e-3, batches of 128, 25 epochs) comes within 5 nats of its -142.81. That could
be a property of the recipe or a flaw of ours (a wrong gradient through autograd, a slip in Adam, a
float32 loss of precision). This script tells the two apart: it trains the same model in PyTorch,
whose layers, autograd and Adam share no code with the unit's, and prints its ELBO beside ours.

The model is the notebook's: 784-512-2 encoder and 2-512-784 decoder with ReLU, a Gaussian posterior
from one linear layer (means and log variances), a Bernoulli decoder on [0, 1] pixels (binary
cross-entropy on logits), one reparameterised draw per image, the loss averaged over each batch of
128, reshuffled every epoch, Adam at 1e-3 with PyTorch's defaults (those of the unit's adam_step).
Two initialisations: ``notebook`` copies the arrays that ``init_mlp_vae`` draws for the seed, so
both implementations start from the same weights; ``torch`` is PyTorch's own default for a linear
layer. As in ``explore_unit5_mlp.py``, each run trains on the first 50 000 training images and
reports the one-sample ELBO on the last 10 000 after every epoch, so the test set chooses nothing.
``--test`` adds the notebook's own run: all 60 000 training images, seed 5, scored on the 10 000
test images (the notebook reports -149.00 for it), and then reads that model's test score every way
a report might have: the ELBO's two terms, and the same with z at the posterior mean, with the MSE.

PyTorch is not a kit dependency (the course is numpy, scipy and autograd). Run this from an
environment of its own that has torch 2.13 (the CPU build is enough) beside numpy, scipy and autograd:

    python3.11 -m venv /tmp/torch-venv
    /tmp/torch-venv/bin/pip install torch==2.13.0 numpy==2.4.6 scipy==1.17.1 autograd==1.9.1
    /tmp/torch-venv/bin/python benchmarks/peer_unit5_torch.py

(From PyPI alone, torch 2.13.0 on x86_64 is a CUDA build of several GB; it runs on the CPU too. The
numbers in Question 4 came from the CPU build, 2.13.0+cpu, one thread per run.)

It imports the unit's ``vae_models`` only for the initial arrays and its ``train_vae`` only with
``--ours``, which also trains the notebook's own implementation on the same split and seed in the
same run and prints the seconds of an epoch of each (one thread each unless ``--threads``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_FIT = 50_000
HIDDEN, LATENT = 512, 2


def load_pixels(split):
    """MNIST images of a split as float32 rows in [0, 1], read by the kit's checked loader."""
    import numpy as np

    from gmmcourse.data import load_mnist

    return (load_mnist(split)[0].reshape(-1, 784) / 255.0).astype(np.float32)


def build_model(init, seed):
    """The four linear layers, initialised by PyTorch's default or copied from init_mlp_vae."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    layers = torch.nn.ModuleDict(
        {
            "enc1": torch.nn.Linear(784, HIDDEN),
            "enc2": torch.nn.Linear(HIDDEN, 2 * LATENT),
            "dec1": torch.nn.Linear(LATENT, HIDDEN),
            "dec2": torch.nn.Linear(HIDDEN, 784),
        }
    )
    if init == "notebook":
        import vae_models

        arrays = vae_models.init_mlp_vae(np.random.default_rng(seed), hidden=HIDDEN, latent=LATENT)
        with torch.no_grad():
            for name, layer in layers.items():
                side, k = name[:3], name[3]
                # ours computes x @ W with W of shape (fan_in, fan_out); torch stores W transposed
                layer.weight.copy_(torch.from_numpy(arrays[f"{side}_W{k}"].T.copy()))
                layer.bias.copy_(torch.from_numpy(arrays[f"{side}_b{k}"]))
    return layers


def elbo_terms(layers, x, generator, at_mean=False):
    """One-sample ELBO of every row of x, as (log p(x | z), KL, logits) with tensors of shape (N,).

    With at_mean, z is the posterior mean instead of a draw: not a bound any more, but what a
    training loop prints if its evaluation mode skips the noise.
    """
    import torch
    import torch.nn.functional as F

    out = layers["enc2"](torch.relu(layers["enc1"](x)))
    mu, log_var = out[:, :LATENT], out[:, LATENT:]
    z = mu if at_mean else mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator)
    logits = layers["dec2"](torch.relu(layers["dec1"](z)))
    log_lik = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = 0.5 * (torch.exp(log_var) + mu**2 - 1.0 - log_var).sum(dim=1)
    return log_lik, kl, logits


def mean_elbo(layers, x_ND, generator):
    import torch

    with torch.no_grad():
        total = 0.0
        for first in range(0, len(x_ND), 1000):
            log_lik, kl, _ = elbo_terms(layers, torch.from_numpy(x_ND[first : first + 1000]), generator)
            total += float((log_lik - kl).double().sum())
    return total / len(x_ND)


def readings(layers, x_ND, generator):
    """The ways a trained model's score on x_ND can be read: mean terms (nats) and the MSE."""
    import torch

    x = torch.from_numpy(x_ND)
    with torch.no_grad():
        log_lik, kl, _ = elbo_terms(layers, x, generator)
        log_lik_at_mean, _, logits = elbo_terms(layers, x, generator, at_mean=True)
        mse = float(((torch.sigmoid(logits) - x) ** 2).double().mean())
    log_lik, kl, log_lik_at_mean = (float(t.double().mean()) for t in (log_lik, kl, log_lik_at_mean))
    return (
        f"E_q log p(x | z) {log_lik:.2f}, KL {kl:.2f}, ELBO {log_lik - kl:.2f}; with z at the posterior"
        f" mean: log p(x | mu) {log_lik_at_mean:.2f}, minus the KL {log_lik_at_mean - kl:.2f},"
        f" reconstruction MSE {mse:.4f}"
    )


def train_torch(init, seed, x_fit, x_score, epochs, batch_size=128):
    """Train one model; its ELBO on x_score after every epoch, the seconds it all took, the model.

    The seconds include the scoring after every epoch, as train_vae's do, so the two compare.
    """
    import torch

    layers = build_model(init, seed)
    optimiser = torch.optim.Adam(layers.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(x_fit)
    curve, start = [], time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x_all), generator=generator)
        for first in range(0, len(x_all), batch_size):
            log_lik, kl, _ = elbo_terms(layers, x_all[order[first : first + batch_size]], generator)
            loss = (kl - log_lik).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        curve.append(mean_elbo(layers, x_score, generator))
    return curve, time.perf_counter() - start, layers


def train_ours(seed, x_fit, x_score, epochs):
    """The notebook's own train_vae on the same data and seed: its ELBO curve and seconds."""
    import numpy as np
    import vae_models

    _, history = vae_models.train_vae(
        "mlp", x_fit, epochs, np.random.default_rng(seed), x_valid_ND=x_score, verbose=False
    )
    return [row["valid_elbo"] for row in history], history[-1]["seconds"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seeds", default="5,6,7", help="comma-separated seeds")
    ap.add_argument("--inits", default="notebook,torch", help="notebook, torch or both")
    ap.add_argument("--test", action="store_true", help="also the notebook's run (60 000 images, test set)")
    ap.add_argument("--ours", action="store_true", help="also train the unit's own implementation")
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and BLAS")
    args = ap.parse_args(argv)
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    args.inits = args.inits.split(",")
    if not set(args.inits) <= {"notebook", "torch"}:
        ap.error(f"--inits takes notebook and torch, got {','.join(args.inits)!r}")
    if args.epochs < 1 or args.threads < 1:
        ap.error("--epochs and --threads must be at least 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy or torch loads
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "solutions" / "unit5_density_models" / "src"))
    try:
        import torch
    except ImportError:
        raise SystemExit("peer_unit5_torch.py needs torch: see its docstring for the environment") from None
    torch.set_num_threads(args.threads)
    x_train = load_pixels("train")
    runs = [("valid", init, seed) for init in args.inits for seed in args.seeds]
    if args.test:
        runs.append(("test", "notebook", 5))
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}; {args.epochs} epochs, batches of 128",
        flush=True,
    )
    print(
        f"{'implementation':15s} {'init':9s} {'data':6s} {'seed':>4s} {'ELBO every 5 epochs':>44s}"
        f" {'last':>8s} {'s/epoch':>8s}"
    )
    for data, init, seed in runs:
        if data == "valid":
            x_fit, x_score = x_train[:N_FIT], x_train[N_FIT:]
        else:
            x_fit, x_score = x_train, load_pixels("test")
        curve, seconds, layers = train_torch(init, seed, x_fit, x_score, args.epochs)
        results = [("pytorch", curve, seconds)]
        if args.ours and init == "notebook":
            results.append(("ours (autograd)", *train_ours(seed, x_fit, x_score, args.epochs)))
        for implementation, curve, seconds in results:
            every5 = " ".join(f"{v:8.2f}" for v in curve[4::5])
            print(
                f"{implementation:15s} {init:9s} {data:6s} {seed:4d} {every5:>44s} {curve[-1]:8.2f}"
                f" {seconds / args.epochs:8.2f}",
                flush=True,
            )
        if data == "test":
            print(
                f"  the pytorch model on test: {readings(layers, x_score, torch.Generator().manual_seed(0))}"
            )


if __name__ == "__main__":
    main()
