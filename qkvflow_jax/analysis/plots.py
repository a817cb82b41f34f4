"""PNG figures of the analyses (matplotlib, Agg backend)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_spectra(spectra: dict, out_png: Path) -> Path:
    """|lambda| vs t per head (QK and OV, top eigenvalue), and the fraction of OV eigenvalues with Re > 0."""
    t = spectra["t"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for name, ax in zip(("qk", "ov"), axes[:2]):
        eig = spectra[name]  # (T, H, d_h)
        for h in range(eig.shape[1]):
            ax.plot(t, np.abs(eig[:, h, 0]), label=f"head {h}")
        ax.set_title(f"max |lambda(M_{name.upper()})| per head")
        ax.set_xlabel("t")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    for name in ("qk", "ov"):
        axes[2].plot(t, (spectra[name].real > 0).mean(axis=(1, 2)), label=name.upper())
    axes[2].set_title("fraction of eigenvalues with Re > 0")
    axes[2].set_xlabel("t")
    axes[2].legend()
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_lyapunov(exponents: np.ndarray, tokens: list[str], out_png: Path) -> Path:
    """Per-token score = max over directions of the summed exponents, last token dropped, 50-bin colouring."""
    score = exponents.sum(axis=0).max(axis=-1)[:-1]
    bins = np.histogram_bin_edges(score, bins=50)
    level = np.digitize(score, bins)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(score)), 1.8))
    ax.imshow(level[None, :], cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(score)), [repr(c)[1:-1] for c in tokens[:-1]], fontsize=7)
    ax.set_yticks([])
    ax.set_title("token-level max Lyapunov exponent (sensitivity of the last token)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_clustering(trajectories: dict[str, np.ndarray], out_png: Path) -> Path:
    """3-D token trajectories, one panel per preset."""
    fig = plt.figure(figsize=(4.5 * len(trajectories), 4.2))
    for i, (name, traj) in enumerate(trajectories.items()):
        ax = fig.add_subplot(1, len(trajectories), i + 1, projection="3d")
        for k in range(traj.shape[1]):
            ax.plot(traj[:, k, 0], traj[:, k, 1], traj[:, k, 2], linewidth=0.8)
        ax.scatter(*traj[-1].T, s=10, c="k")
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_curves(series: dict[str, tuple[list, list]], title: str, xlabel: str, ylabel: str, out_png: Path,
                errors: dict[str, list] | None = None, logy: bool = False) -> Path:
    """One line per entry of ``series`` (label -> (x, y)), with error bars where ``errors`` (label -> y errors)
    has the label; a log y axis with ``logy``."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if logy:
        ax.set_yscale("log")
    errors = errors or {}
    for label, (x, y) in series.items():
        ax.errorbar(x, y, yerr=errors.get(label), fmt="o-" if len(x) < 30 else "-", label=label, markersize=4,
                    capsize=3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
