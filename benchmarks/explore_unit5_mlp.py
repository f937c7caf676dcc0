"""Unit 5: what moves the MLP VAE's ELBO? The runs behind the table in the notebook's Question 4.

    python benchmarks/explore_unit5_mlp.py [--epochs 25] [--jobs 2] [--variants relu,tanh,...]

Each variant changes one or two things in the notebook's MLP VAE (784-512-2, ReLU, the init of
``init_mlp_vae``, Adam at 1e-3, batches of 128) and trains it with the unit's own ``train_vae`` on
the first 50 000 training images. Its ELBO is measured on the last 10 000 training images after every
epoch: never on the test set, so that choosing among the variants tunes nothing on test. Every run
uses one BLAS thread; ``--jobs`` runs go in parallel. Each run takes 4 to 15 minutes (width 512 to
2048), and all of them about an hour on two cores.

The variants (names join with "+", e.g. ``relu+bias+h1024``):
  relu, tanh, lrelu (slope 0.1), elu, softplus   the hidden layers' nonlinearity
  torch      every layer's weights and biases uniform on +-1 / sqrt(fan_in) (PyTorch's default)
  glorot     Glorot weights and zero biases in every layer, the decoder's first too (the init
             that init_mlp_vae's docstring argues against)
  bias       the decoder's output biases start at the log-odds of the mean training image
  center     the encoder sees x minus the mean training image
  hN         N hidden units instead of 512
  sN         seed N for the initialisation, the shuffling and the noise instead of 5
and one that is not an MLP:
  conv       the notebook's conv VAE as it is (only sN may follow, e.g. ``conv+s6``): its seed spread
             on the same split, the number the conv row's margin over the report is read against
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = (
    "relu,relu+s6,relu+s7,tanh,lrelu,elu,softplus,relu+torch,relu+bias,tanh+bias,relu+bias+center,"
    "relu+h1024,relu+bias+h1024"
)
N_FIT = 50_000


def _relu():
    import vae_models

    return vae_models.relu


def _anp(body):
    """A nonlinearity written with autograd.numpy, imported only once BLAS threads are set."""

    def factory():
        import autograd.numpy as anp

        return lambda a: body(anp, a)

    return factory


ACTIVATIONS = {
    "relu": _relu,
    "tanh": _anp(lambda anp, a: anp.tanh(a)),
    "lrelu": _anp(lambda anp, a: a * (a > 0) + 0.1 * a * (a <= 0)),
    "elu": _anp(lambda anp, a: anp.where(a > 0, a, anp.exp(anp.minimum(a, 0.0)) - 1.0)),
    "softplus": _anp(lambda anp, a: anp.logaddexp(0.0, a)),
}


def parse_variant(name):
    """The options of a variant name such as "relu+bias+h1024"; a SystemExit names a bad one."""
    act, *changes = name.split("+")
    if act == "conv" and not all(c[:1] == "s" and c[1:].isdigit() for c in changes):
        raise SystemExit(f"variant {name!r}: the conv VAE takes only a seed (conv+sN)")
    if act not in ACTIVATIONS and act != "conv":
        raise SystemExit(f"unknown nonlinearity {act!r} in variant {name!r}")
    options = {
        "act": act,
        "torch": False,
        "glorot": False,
        "bias": False,
        "center": False,
        "hidden": 512,
        "seed": 5,
    }
    for change in changes:
        if change in ("torch", "glorot", "bias", "center"):
            options[change] = True
        elif change[:1] in ("h", "s") and change[1:].isdigit():
            options["hidden" if change[0] == "h" else "seed"] = int(change[1:])
        else:
            raise SystemExit(f"unknown change {change!r} in variant {name!r}")
    if options["torch"] and options["glorot"]:
        raise SystemExit(f"variant {name!r} asks for two initialisations (torch and glorot)")
    return options


def same_init_everywhere(rng, hidden=512, latent=2, rule="torch"):
    """Every layer initialised by one rule, drawn layer by layer (weights, then biases).

    rule "torch": weights and biases uniform on +-1 / sqrt(fan_in) (PyTorch's default);
    rule "glorot": Glorot-uniform weights and zero biases, the decoder's first layer included.
    """
    import numpy as np
    import vae_models

    D, H, Z = vae_models.D_PIXELS, hidden, latent
    params = {}
    for side, layer, fan_in, fan_out in (
        ("enc", 1, D, H),
        ("enc", 2, H, 2 * Z),
        ("dec", 1, Z, H),
        ("dec", 2, H, D),
    ):
        if rule == "torch":
            bound = 1.0 / np.sqrt(fan_in)
            W = vae_models._uniform(rng, bound, (fan_in, fan_out))
            b = vae_models._uniform(rng, bound, fan_out)
        else:
            W = vae_models._glorot(rng, fan_in, fan_out, (fan_in, fan_out))
            b = np.zeros(fan_out, dtype=np.float32)
        params[f"{side}_W{layer}"], params[f"{side}_b{layer}"] = W, b
    return params


def make_model(options, x_fit):
    """(init, encode, decode) of the notebook's MLP VAE with a variant's changes."""
    import numpy as np
    import vae_models
    from layers import dense

    act = ACTIVATIONS[options["act"]]()
    base_init = vae_models.init_mlp_vae
    if options["torch"] or options["glorot"]:
        base_init = partial(same_init_everywhere, rule="torch" if options["torch"] else "glorot")
    mean_D = x_fit.mean(axis=0)
    shift_D = mean_D if options["center"] else np.zeros_like(mean_D)
    clipped_D = np.clip(mean_D, 1e-3, 1 - 1e-3)
    output_bias_D = np.log(clipped_D / (1 - clipped_D)).astype(np.float32)

    def init(rng, hidden=512, latent=2):
        params = base_init(rng, hidden=hidden, latent=latent)
        if options["bias"]:
            params["dec_b2"] = output_bias_D
        return params

    def encode(params, x_ND):
        h_NH = act(dense(x_ND - shift_D, params["enc_W1"], params["enc_b1"]))
        out_N2Z = dense(h_NH, params["enc_W2"], params["enc_b2"])
        Z = out_N2Z.shape[1] // 2
        return out_N2Z[:, :Z], out_N2Z[:, Z:]

    def decode(params, z_NZ):
        return dense(act(dense(z_NZ, params["dec_W1"], params["dec_b1"])), params["dec_W2"], params["dec_b2"])

    return init, encode, decode


def run(name, epochs):
    """Train one variant; a dict with its validation ELBO after every epoch and its seconds."""
    import numpy as np
    import vae_models

    from gmmcourse.data import load_mnist

    options = parse_variant(name)
    x = (load_mnist("train")[0].reshape(-1, 784) / 255.0).astype(np.float32)
    if options["act"] == "conv":  # the notebook's own model, untouched
        kind, init_kw = "conv", {}
    else:
        vae_models.MODELS[name] = make_model(options, x[:N_FIT])  # where train_vae looks models up
        kind, init_kw = name, {"hidden": options["hidden"]}
    rng = np.random.default_rng(options["seed"])
    _, history = vae_models.train_vae(
        kind, x[:N_FIT], epochs, rng, x_valid_ND=x[N_FIT:], verbose=False, **init_kw
    )
    return {
        "variant": name,
        "valid_elbo": [round(row["valid_elbo"], 2) for row in history],
        "train_elbo": round(history[-1]["train_elbo"], 2),
        "seconds": round(history[-1]["seconds"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one BLAS thread each")
    ap.add_argument("--variants", default=DEFAULT, help="comma-separated variant names")
    args = ap.parse_args()
    if args.epochs < 1 or args.jobs < 1:
        raise SystemExit(f"--epochs and --jobs must be at least 1, got {args.epochs} and {args.jobs}")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # before numpy loads, here and in the workers
    sys.path.insert(0, str(ROOT / "solutions" / "unit5_density_models" / "src"))
    names = args.variants.split(",")
    for name in names:  # a typo fails now, not an hour from now
        parse_variant(name)
    print(f"{len(names)} runs of {args.epochs} epochs on {N_FIT} images, {args.jobs} at a time", flush=True)
    print(f"{'variant':24s} {'valid ELBO every 5 epochs':>44s}  {'last':>8s}  {'train':>8s}  seconds")
    with ProcessPoolExecutor(args.jobs) as pool:
        for out in pool.map(run, names, [args.epochs] * len(names)):
            every5 = " ".join(f"{v:8.2f}" for v in out["valid_elbo"][4::5])
            print(
                f"{out['variant']:24s} {every5:>44s}  {out['valid_elbo'][-1]:8.2f}  "
                f"{out['train_elbo']:8.2f}  {out['seconds']:7d}",
                flush=True,
            )
            print("json", json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
