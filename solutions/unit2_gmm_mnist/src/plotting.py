"""Figures for unit 2: grids of 16 x 16 images and a covariance heat map (given code, not graded)."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

SIDE = 16  # images are SIDE x SIDE pixels, flattened row by row


def show_image_grid(x_ND, n_cols=10, titles=None, title="", vmin=0.0, vmax=1.0):
    """Show the rows of x_ND as 16 x 16 gray images on a grid with n_cols columns.

    Parameters
    ----------
    x_ND : ndarray of shape (N, 256)
        Images flattened row by row; values outside [vmin, vmax] are shown as black or white.
    n_cols : int
        Images per row of the grid.
    titles : list of str, optional
        One small title per image.
    title : str
        Title of the whole figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    N = len(x_ND)
    n_rows = max(1, int(np.ceil(N / n_cols)))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.1 * n_cols, 1.2 * n_rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= N:
            ax.axis("off")
            continue
        ax.imshow(
            np.reshape(x_ND[i], (SIDE, SIDE)), cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        if titles is not None:
            ax.set_title(titles[i], fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_covariance(cov_DD, title=""):
    """Heat map of a D x D covariance matrix on a symmetric color scale (pixel index on both axes).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    limit = np.max(np.abs(cov_DD))
    fig, ax = plt.subplots(figsize=(6.0, 5.0))
    image = ax.imshow(cov_DD, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xlabel("pixel index (row-major, 0-255)")
    ax.set_ylabel("pixel index (row-major, 0-255)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="covariance (pixel intensity$^2$, intensities in [0, 1])")
    fig.tight_layout()
    return fig


def plot_log_lik_traces(traces, title=""):
    """Training (solid) and test (dashed) log-likelihood per image against the EM iteration.

    Parameters
    ----------
    traces : dict
        label -> (train_T, test_T), two 1-D arrays of log-likelihoods per image (entry t after t
        iterations); both lines of one label share a colour.
    title : str

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (label, (train_T, test_T)) in enumerate(traces.items()):
        color = f"C{i}"
        ax.plot(np.arange(len(train_T)), train_T, "-", marker=".", color=color, label=f"{label}, train")
        ax.plot(np.arange(len(test_T)), test_T, "--", marker=".", color=color, label=f"{label}, test")
    ax.set_xlabel("EM iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("log-likelihood per image (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
