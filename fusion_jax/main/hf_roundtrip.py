"""Fuse two Hugging Face ViT folders with the fusion CLI and check the fused export in ``transformers``.

    python -m fusion_jax.main.hf_roundtrip --out reports/fusion_hf [--preset demo] [--seeds '[1,2]']

1. trains two parents as the reproduction does at ``preset`` (``fusion_jax.main.reproduce``: mnist10k ViTs,
   ``configs/fusion/parents/vit_mnist_tiny.yaml``);
2. exports each with ``common_jax.hf.save_pretrained`` to ``OUT/hf/parent-seed<s>``;
3. fuses them from those folders with the CLI (the command is printed and recorded):
   ``python -m fusion_jax.main.fuse --config_path configs/fusion/tiny_mnist.yaml
   --checkpoints '[hf:OUT/hf/parent-seed1, hf:OUT/hf/parent-seed2]' --export_hf OUT/hf/fused ...``
   (one-shot, the config's Sinkhorn reg, no fine-tuning);
4. reloads ``OUT/hf/fused`` with ``transformers.ViTForImageClassification.from_pretrained`` and measures its
   test accuracy on mnist10k in torch (float32, CPU), beside the accuracy the fusion CLI measured in JAX and the
   largest logit difference between the two.

Writes ``OUT/hf_roundtrip.json``. Needs the ``torch`` extra.
"""

import json
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common_jax.hf import save_pretrained
from common_jax.launch import parse_config, run_main
from common_jax.presets import check_preset

from ..sources import load_parents
from . import fuse as fuse_main
from .reproduce import CONFIGS, FUSION_YAML, PRESET_SIZES, train_parents

logger = logging.getLogger(__name__)
TORCH_BATCH = 500


@dataclass
class HfRoundtripConfig:
    out: str = "reports/fusion_hf"
    preset: str = "demo"  # of the parents' training (common_jax.presets)
    seeds: list[int] = field(default_factory=lambda: [1, 2])

    def __post_init__(self):
        check_preset(self.preset)


def torch_logits(folder: Path, images: np.ndarray) -> np.ndarray:
    """Logits ``[n, classes]`` of the HF folder's ``ViTForImageClassification`` on ``images [n, H, W, C]``."""
    import torch
    from transformers import ViTForImageClassification

    model = ViTForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        parts = [model(pixel_values=torch.from_numpy(images[s : s + TORCH_BATCH].transpose(0, 3, 1, 2))).logits
                 for s in range(0, len(images), TORCH_BATCH)]
    return torch.cat(parts).numpy().astype(np.float64)


def main(config: HfRoundtripConfig) -> dict:
    out = Path(config.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = train_parents(out, list(config.seeds), PRESET_SIZES[config.preset])
    fuse_config = parse_config(fuse_main.FuseJobConfig, CONFIGS / FUSION_YAML)
    folders = []
    for path, model in zip(checkpoints, load_parents(checkpoints, fuse_config.task)):
        folders.append(save_pretrained(model, out / "hf" / Path(path).name, overwrite=True))
    fused_dir = out / "hf" / "fused"
    args = ["--checkpoints", "[" + ", ".join(f"hf:{f}" for f in folders) + "]", "--export_hf", str(fused_dir),
            "--out_dir", str(out / "fuse"), "--finetune.steps", "0",
            "--eval.reg_sweep", f"[{fuse_config.fusion.sinkhorn.reg}]"]
    command = shlex.join(["python", "-m", "fusion_jax.main.fuse", "--config_path", f"configs/{FUSION_YAML}", *args])
    logger.info("fusing the HF folders: %s", command)
    if (fused_dir / "config.json").exists():  # a re-run replaces the previous export
        for name in ("config.json", "model.safetensors"):
            (fused_dir / name).unlink(missing_ok=True)
    results = fuse_main.main(parse_config(fuse_main.FuseJobConfig, CONFIGS / FUSION_YAML, args))

    task = fuse_config.task.load()
    images, labels = task.test
    logits = torch_logits(fused_dir, images)
    jax_logits = task.logits(load_parents([f"hf:{fused_dir}"], fuse_config.task)[0])
    summary = {
        "command": command, "preset": config.preset, "parents_hf": [str(f) for f in folders],
        "fused_hf": str(fused_dir), "test_images": len(labels),
        "parents_accuracy_jax": results["parents"], "vanilla_accuracy_jax": results["vanilla"],
        "fused_accuracy_jax": results["ot"],
        "fused_accuracy_transformers": float((logits.argmax(1) == labels).mean()),
        "max_abs_logit_diff_transformers_vs_jax": float(np.abs(logits - jax_logits).max()),
    }
    (out / "hf_roundtrip.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), flush=True)
    return summary


if __name__ == "__main__":
    run_main(main)
