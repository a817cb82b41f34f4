"""The fusion figures: one-shot metric against Sinkhorn regularisation (spec fusion.md §14.5), and OT fusion
against vanilla averaging, one-shot and fine-tuned."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_reg_sweep(results: dict, metric: str, out_png: str | Path, title: str) -> Path:
    """Sinkhorn one-shot ``metric`` vs ``reg`` (log x) with lines for parents, ensemble and vanilla and a
    marker for exact OT (drawn left of the smallest reg, where Sinkhorn tends to it)."""
    regs = sorted(float(r) for r in results["ot_sinkhorn"])
    values = [results["ot_sinkhorn"][_key(r, results["ot_sinkhorn"])] for r in regs]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(regs, values, "o-", color="C3", label="OT Sinkhorn (one-shot)")
    emd_x = regs[0] / 2.5
    ax.plot([emd_x], [results["ot_exact"]], "s", color="C4", markersize=8, label="OT exact / EMD (one-shot)")
    for i, parent in enumerate(results["parents"]):
        ax.axhline(parent, color="C0", linestyle="-" if i == 0 else "--", linewidth=1, label=f"parent {i}")
    ax.axhline(results["ensemble"], color="C2", linewidth=1, label="logit ensemble")
    if results.get("vanilla") is not None:
        ax.axhline(results["vanilla"], color="0.4", linestyle=":", linewidth=1.5, label="vanilla average")
    ax.set_xscale("log")
    ax.set_xlabel("Sinkhorn regularisation (on max-normalised costs)")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return Path(out_png)


def _key(reg: float, table: dict) -> str:
    return next(k for k in table if float(k) == reg)


def plot_fusion_vs_vanilla(results: dict, out_png: str | Path, title: str) -> Path:
    """The paper's comparison as bars: vanilla averaging vs OT fusion (the configured solver), one-shot and after
    the fine-tuning of ``results["finetuned"]`` (if any), with the parents and their ensemble as lines."""
    metric = results["metric"]
    stages = [("one-shot", results["vanilla"], results["ot"])]
    if results.get("finetuned"):
        ft = results["finetuned"]
        stages.append((f"+{ft['steps']} fine-tuning steps", ft.get("vanilla"), ft["ot"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.38
    for i, (label, vanilla, ot) in enumerate(stages):
        for offset, value, color, name in ((-width / 2, vanilla, "0.55", "vanilla average"),
                                           (width / 2, ot, "C3", "OT fusion")):
            if value is None:  # heterogeneous widths: no vanilla average
                continue
            ax.bar(i + offset, value, width, color=color, label=name if i == 0 else None)
            ax.annotate(f"{value:.3f}", (i + offset, value), ha="center", va="bottom", fontsize=8)
    for i, parent in enumerate(results["parents"]):
        ax.axhline(parent, color="C0", linestyle="-" if i == 0 else "--", linewidth=1, label=f"parent {i}")
    ax.axhline(results["ensemble"], color="C2", linewidth=1, label="logit ensemble")
    ax.set_xticks(range(len(stages)), [s[0] for s in stages])
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return Path(out_png)
