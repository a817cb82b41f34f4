"""Figures from a run's metrics.jsonl (matplotlib, Agg backend: no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .training.run_setup import read_metrics  # noqa: E402


def metric_series(metrics_path: str | Path, key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one metric in a metrics.jsonl file."""
    steps, values = [], []
    for record in read_metrics(metrics_path):
        if key in record["metrics"]:
            steps.append(int(record["step"]))
            values.append(float(record["metrics"][key]))
    return steps, values


def plot_training_curves(metrics_path: str | Path, panels: dict[str, list[str]], out_png: str | Path, title: str):
    """One panel per entry of ``panels`` (panel title -> metric keys), metric value against training step."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (panel, keys) in zip(axes[0], panels.items()):
        for key in keys:
            steps, values = metric_series(metrics_path, key)
            style = "o-" if len(steps) < 30 else "-"
            ax.plot(steps, values, style, label=key, markersize=4, linewidth=1.2)
        ax.set_title(panel)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return Path(out_png)
