"""Show a fitted mixture over images: each component's mean and standard deviation as pictures.

Examples
--------
>>> import numpy as np
>>> prng = np.random.RandomState(0)
>>> fig = show_gmm_as_images(np.log([0.7, 0.3]), prng.rand(2, 400), 0.1 + prng.rand(2, 400))
>>> [ax.get_title() for ax in fig.axes[:2]]
['k=0  pi=0.700', 'k=1  pi=0.300']
"""

import matplotlib.pyplot as plt
import numpy as np


def show_gmm_as_images(
    log_pi_K,
    mu_KD,
    stddev_KD,
    image_shape=(20, 20),
    sort_by_weight=True,
    title="GMM components",
    mean_range=(-1.0, 1.0),
    max_stddev=None,
):
    """Top row: every component's mean as an image; bottom row: its standard deviations.

    Parameters
    ----------
    log_pi_K : array-like, shape (K,)
    mu_KD : array-like, shape (K, D) with D = image_shape[0] * image_shape[1]
    stddev_KD : array-like, shape (K, D)
    image_shape : (int, int)
        Rows and columns of one image (pixels stored row by row).
    sort_by_weight : bool
        Show the heaviest component first.
    title : str
        Figure title.
    mean_range : (float, float)
        Grey-scale limits for the means (tops pixels run from -1 to 1).
    max_stddev : float, optional
        Upper colour limit for the standard deviations (default: their largest value).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    log_pi_K = np.asarray(log_pi_K, dtype=np.float64)
    mu_KD = np.asarray(mu_KD, dtype=np.float64)
    stddev_KD = np.asarray(stddev_KD, dtype=np.float64)
    K = mu_KD.shape[0]
    if mu_KD.shape[1] != image_shape[0] * image_shape[1]:
        raise ValueError(
            f"mu_KD has {mu_KD.shape[1]} features, but image_shape {image_shape} "
            f"needs {image_shape[0] * image_shape[1]}"
        )
    order = np.argsort(-log_pi_K, kind="stable") if sort_by_weight else np.arange(K)
    vmax = float(np.max(stddev_KD)) if max_stddev is None else max_stddev
    fig, axes = plt.subplots(2, K, figsize=(1.6 * K + 1.2, 3.8), squeeze=False)
    for col, k in enumerate(order):
        top = axes[0, col].imshow(
            mu_KD[k].reshape(image_shape),
            cmap="gray",
            vmin=mean_range[0],
            vmax=mean_range[1],
            interpolation="nearest",
        )
        bottom = axes[1, col].imshow(
            stddev_KD[k].reshape(image_shape), cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest"
        )
        axes[0, col].set_title(f"k={k}  pi={np.exp(log_pi_K[k]):.3f}", fontsize="small")
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("mean")
    axes[1, 0].set_ylabel("stddev")
    fig.colorbar(top, ax=list(axes[0]), fraction=0.02, label="pixel value")
    fig.colorbar(bottom, ax=list(axes[1]), fraction=0.02, label="stddev (pixel units)")
    fig.suptitle(title)
    return fig
