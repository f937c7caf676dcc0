"""Plot one history key against the iteration for many runs: one panel per K, one line per seed.

Examples
--------
>>> runs = [dict(K=1, seed=s, history=dict(iter=[0, 1], valid_score_per_pixel=[-1.0, -0.5 + s / 1e4]))
...         for s in (1001, 3001)]
>>> fig = plot_history_for_many_runs(runs, title="demo")
>>> [ax.get_title() for ax in fig.axes]
['K = 1']
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

LABELS = {
    "valid_score_per_pixel": "validation log likelihood per pixel",
    "train_score_per_pixel": "training log likelihood per pixel",
    "train_loss_per_pixel": "training loss per pixel (penalized NLL)",
    "train_loss": "training loss (penalized NLL)",
}


def load_histories(folder):
    """Read every ``history_K??_seed*.csv`` in ``folder`` back into run dicts (without params).

    Returns
    -------
    runs : list of dict
        Keys 'K', 'seed', 'history' (dict of lists), sorted by K then seed.
    """
    runs = []
    for path in sorted(Path(folder).glob("history_K*_seed*.csv")):
        K_part, seed_part = path.stem[len("history_") :].split("_")
        table = np.genfromtxt(path, delimiter=",", names=True, ndmin=1)
        history = {name: table[name].tolist() for name in table.dtype.names}
        runs.append(dict(K=int(K_part[1:]), seed=int(seed_part[4:]), history=history))
    return sorted(runs, key=lambda run: (run["K"], run["seed"]))


def plot_history_for_many_runs(runs, key="valid_score_per_pixel", title=None, ylim=None):
    """Line plots of ``history[key]`` versus iteration, one panel per K, one line per seed.

    Parameters
    ----------
    runs : list of dict
        Each with 'K', 'seed' and 'history' (dict of lists with 'iter' and ``key``), as returned
        by train_many_runs or load_histories.
    key : str
        History entry to plot.
    title : str, optional
        Figure title (default: the key's description).
    ylim : (float, float), optional
        Shared y-axis limits.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    K_values = sorted({run["K"] for run in runs})
    if not K_values:
        raise ValueError("no runs to plot")
    fig, axes = plt.subplots(
        1, len(K_values), figsize=(3.2 * len(K_values) + 0.8, 3.4), sharey=True, squeeze=False
    )
    for ax, K in zip(axes[0], K_values, strict=True):
        for run in runs:
            if run["K"] == K:
                ax.plot(
                    run["history"]["iter"],
                    run["history"][key],
                    marker=".",
                    markersize=3,
                    label=f"seed {run['seed']}",
                )
        ax.set_title(f"K = {K}")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if ylim is not None:
            ax.set_ylim(ylim)
    axes[0, 0].set_ylabel(LABELS.get(key, key))
    axes[0, -1].legend(fontsize="small")
    fig.suptitle(title if title is not None else LABELS.get(key, key))
    fig.tight_layout()
    return fig
