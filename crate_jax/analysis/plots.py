"""PNG figures of the layer-wise measurements and of the cls token's attention (matplotlib, Agg backend)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import equinox as eqx  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .layerwise import LayerStats  # noqa: E402

CRATE_LABELS = ("coding rate R^c (sum over heads)", "non-zero fraction of the ISTA output")


def plot_layer_curves(curves: dict[str, list[LayerStats]], out_dir: str | Path, title: str = "",
                      ylabels: tuple[str, str] = CRATE_LABELS) -> list[Path]:
    """``coding_rate.png`` (coding rate mean +- std per layer) and ``sparsity.png`` (non-zero fraction, mean +-
    std), one curve per entry of ``curves`` (e.g. ``{"init": ..., "trained": ...}``); ``ylabels`` say which
    quantities (default: CRATE's R^c and ISTA output)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = [("coding_rate.png", ylabels[0], "coding_rate_mean", "coding_rate_std"),
              ("sparsity.png", ylabels[1], "nonzero_fraction", "nonzero_fraction_std")]
    paths = []
    for name, ylabel, mean_key, std_key in panels:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for label, stats in curves.items():
            layers = np.arange(1, len(stats) + 1)
            mean = np.array([getattr(s, mean_key) for s in stats])
            std = np.array([getattr(s, std_key) for s in stats])
            ax.errorbar(layers, mean, yerr=std, marker="o", capsize=3, label=label)
        ax.set_xlabel("layer")
        ax.set_ylabel(ylabel)
        ax.set_xticks(np.arange(1, max(len(s) for s in curves.values()) + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)
        paths.append(out_dir / name)
    return paths


@eqx.filter_jit
def _cls_attention(model, images):
    return model.forward_with_intermediates(images)[1].attention


def plot_cls_attention(model, images, raw_images: np.ndarray, out_png: str | Path, layer: int = -1) -> Path:
    """Grid of the cls token's attention over the patches of layer ``layer``, one row per image, one column per
    head (the image itself first). ``images`` is the model's NamedArray input ``[batch, height, width, channel]``;
    ``raw_images`` the matching displayable ``[batch, H, W, C]`` array."""
    config = model.config
    grid = config.image_size // config.patch_size
    attention = _cls_attention(model, images)
    attention = attention.rearrange(("layers", images.axes[0].name, "heads", "position", "key_position")).array
    cls_rows = np.asarray(attention[layer, :, :, 0, 1:]).reshape(len(raw_images), config.num_heads, grid, grid)
    fig, axes = plt.subplots(len(raw_images), config.num_heads + 1,
                             figsize=(1.6 * (config.num_heads + 1), 1.6 * len(raw_images)), squeeze=False)
    for i, image in enumerate(raw_images):
        axes[i, 0].imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        for k in range(config.num_heads):
            axes[i, k + 1].imshow(cls_rows[i, k], cmap="viridis")
            if i == 0:
                axes[i, k + 1].set_title(f"head {k}", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    layer_number = layer % config.num_layers + 1
    fig.suptitle(f"cls attention over patches, layer {layer_number}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return Path(out_png)
