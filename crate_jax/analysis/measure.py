"""Measure one or more CRATE models (or ViTs) on the same images and write ``layers.json`` plus the PNG figures."""

import json
from pathlib import Path

import haliax as hax
import jax.numpy as jnp
import numpy as np

from .coding_rate import DEFAULT_EPS
from .layerwise import measure_layers
from .plots import plot_cls_attention, plot_layer_curves
from .token_rate import BLOCK_OUTPUT, measure_vit_layers
from .token_rate import LABELS as VIT_LABELS


def first_images(dataset, n: int):
    """The first ``n`` examples of an ``ImageClassificationDataset``: (model input NamedArray
    ``[batch, height, width, channel]``, displayable uint8 ``[n, H, W, C]``)."""
    n = min(n, len(dataset.source))
    examples = dataset.as_sync_dataset().get_batch(list(range(n)))
    pixels = np.stack([np.asarray(e.image.array) for e in examples])
    images = hax.named(jnp.asarray(pixels), ("batch", "height", "width", "channel"))
    raw = np.stack([np.asarray(dataset.source[i][0]) for i in range(n)])
    return images, raw


def measure_and_plot(models: dict, images, raw_images: np.ndarray, out_dir: str | Path, *,
                     measure_point: str = "mssa_input", eps: float = DEFAULT_EPS, attention_images: int = 4,
                     title: str = "", extra: dict | None = None) -> dict:
    """Per-layer statistics of every model in ``models`` (label -> Crate) on ``images``.

    Writes ``out_dir/layers.json`` (``{"measure_point", "eps", "num_images", "curves": {label: [per layer]}}``
    plus ``extra``), ``coding_rate.png``, ``sparsity.png`` and ``attention_maps.png`` (the cls token's attention
    in the last layer of the last model, for the first ``attention_images`` images). Returns the JSON dict.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {label: measure_layers(model, images, measure_point=measure_point, eps=eps)
              for label, model in models.items()}
    plot_layer_curves(curves, out_dir, title=title)
    last = list(models.values())[-1]
    k = min(attention_images, len(raw_images))
    plot_cls_attention(last, images["batch", :k], raw_images[:k], out_dir / "attention_maps.png")
    return _write_layers_json(out_dir, curves, measure_point, eps, images, extra)


def measure_vits_and_plot(models: dict, images, out_dir: str | Path, *, eps: float = DEFAULT_EPS, title: str = "",
                          extra: dict | None = None) -> dict:
    """Per-layer coding rate R(Z) and non-zero fraction of the block outputs of every ViT in ``models`` (label ->
    ``common_jax.models.ViT``, e.g. imported from timm or HF) on ``images``: ``out_dir/layers.json`` (measure point
    ``block_output``), ``coding_rate.png`` and ``sparsity.png``. Returns the JSON dict."""
    out_dir = Path(out_dir)
    curves = {label: measure_vit_layers(model, images, eps=eps) for label, model in models.items()}
    plot_layer_curves(curves, out_dir, title=title, ylabels=VIT_LABELS)
    return _write_layers_json(out_dir, curves, BLOCK_OUTPUT, eps, images, extra)


def _write_layers_json(out_dir: Path, curves: dict, measure_point: str, eps: float, images, extra) -> dict:
    result = {"measure_point": measure_point, "eps": eps, "num_images": int(images.axes[0].size),
              **(extra or {}), "curves": {label: [s.as_dict() for s in stats] for label, stats in curves.items()}}
    (out_dir / "layers.json").write_text(json.dumps(result, indent=2))
    return result
