"""Figures of this unit (given code): reconstructions, decoded latent grids, latent scatter plots.

Every function returns its matplotlib Figure and writes nothing to disk.
"""

import matplotlib.pyplot as plt
import numpy as np


def show_reconstructions(x_ND, recon_by_model, title="Reconstructions of test digits"):
    """One row of originals, then one row per model (dict name -> (N, 784) reconstructions)."""
    rows = [("original", x_ND), *recon_by_model.items()]
    N = len(x_ND)
    fig, axes = plt.subplots(len(rows), N, figsize=(1.1 * N, 1.25 * len(rows) + 0.6), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for n in range(N):
            ax = axes[r, n]
            ax.imshow(np.asarray(images[n]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize="small")
    fig.suptitle(title + " (pixel intensity 0 = black, 1 = white)")
    fig.tight_layout()
    return fig


def show_latent_grid(decode_NZ, z_lim=2.5, n=15, title="Decoded latent grid"):
    """Decode an n x n regular grid of 2-d latent points in [-z_lim, z_lim]^2 into one mosaic."""
    ticks = np.linspace(-z_lim, z_lim, n)
    z1, z2 = np.meshgrid(ticks, ticks[::-1])
    z_NZ = np.column_stack([z1.ravel(), z2.ravel()])
    images = np.asarray(decode_NZ(z_NZ)).reshape(n, n, 28, 28)
    mosaic = images.transpose(0, 2, 1, 3).reshape(n * 28, n * 28)
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, extent=(-z_lim, z_lim, -z_lim, z_lim))
    ax.set_xlabel("latent z1")
    ax.set_ylabel("latent z2")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def show_latent_means(z_by_model, labels_N, title="Test-set latent means by digit label"):
    """Scatter of 2-d latent means, one panel per model (dict name -> (N, 2)), coloured by label."""
    names = list(z_by_model)
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.8), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, name in zip(axes[0], names, strict=True):
        z = np.asarray(z_by_model[name])
        for digit in range(10):
            pick = labels_N == digit
            ax.scatter(z[pick, 0], z[pick, 1], s=3, color=cmap(digit), label=str(digit), alpha=0.6)
        ax.set_xlabel("latent z1 (posterior mean)")
        ax.set_ylabel("latent z2 (posterior mean)")
        ax.set_title(name)
    axes[0, -1].legend(title="digit", markerscale=4, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_history(history_by_model, title="VAE training"):
    """Train (and valid, if recorded) ELBO per epoch, one line per model."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, history in history_by_model.items():
        epochs = [row["epoch"] for row in history]
        ax.plot(epochs, [row["train_elbo"] for row in history], marker="o", label=f"{name} train")
        if "valid_elbo" in history[0]:
            ax.plot(epochs, [row["valid_elbo"] for row in history], marker="s", ls="--", label=f"{name} test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO (nats per image)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
