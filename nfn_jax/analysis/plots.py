"""Scatter of predicted vs true test accuracy, one panel per method (nfn.md §9.5)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_predictions(results: dict[str, dict], out_png: str | Path, title: str) -> Path:
    """``results``: ``{method: {"predictions": [...], "targets": [...], "tau": float}}``; y = x line; τ in each title."""
    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 3.4), squeeze=False)
    for ax, (method, r) in zip(axes[0], results.items()):
        pred, target = np.asarray(r["predictions"]), np.asarray(r["targets"])
        ax.scatter(target, pred, s=8, alpha=0.6)
        lo, hi = min(target.min(), pred.min()), max(target.max(), pred.max())
        ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8)
        ax.set_title(f"{method}\nτ-b = {r['tau']:.3f}", fontsize=9)
        ax.set_xlabel("true test accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("predicted accuracy")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)
