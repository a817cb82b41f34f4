"""CRATE train-step throughput (images/s) as a ratio against the ViT of equal width, depth, heads and patches,
both timed in the same process.

    python bench/crate_step.py [--batch 128] [--steps 20] [--image 28 --patch 7 --width 64 --depth 4 --heads 4]
                               [--channels 1 --classes 10]

Both models train with the same jitted AdamW step on the same random images and the same cross-entropy loss.
CRATE has 3 d x d matrices per layer (U, out, D) against the ViT's 12 (q, k, v, o and a 4d MLP), so it should
cost no more. Prints one JSON object; ``ratio_crate_over_vit_throughput`` > 1 means CRATE is faster.
"""

import argparse
import json

import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import Axis
from levanter.utils.jax_utils import parameter_count

from common_jax.data.images import ImageExample
from common_jax.models import ViTConfig
from common_jax.training.classification import classification_loss
from crate_jax import CrateConfig
from train_step_timing import seconds_per_train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("batch", 128), ("steps", 20), ("image", 28), ("patch", 7), ("width", 64), ("depth", 4),
                          ("heads", 4), ("channels", 1), ("classes", 10)]:
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()

    shape = dict(image_size=args.image, patch_size=args.patch, num_channels=args.channels, num_classes=args.classes,
                 hidden_dim=args.width, num_layers=args.depth, num_heads=args.heads, pool="cls")
    crate = CrateConfig(**shape, patch_ln=args.channels > 1)
    vit = ViTConfig(**shape, mlp_dim=4 * args.width)
    rng = np.random.default_rng(0)
    Batch = Axis("batch", args.batch)
    batch = ImageExample(
        image=hax.named(jnp.asarray(rng.normal(size=(args.batch, args.image, args.image, args.channels)), jnp.float32),
                        (Batch, "height", "width", "channel")),
        label=hax.named(jnp.asarray(rng.integers(0, args.classes, args.batch), jnp.int32), (Batch,)),
        weight=hax.ones(Batch),
    )
    crate_model, vit_model = crate.build(key=jax.random.PRNGKey(0)), vit.build(key=jax.random.PRNGKey(0))
    loss_fn = lambda m, b: classification_loss(m, b)[0]  # noqa: E731
    crate_seconds = seconds_per_train_step(loss_fn, crate_model, batch, args.steps)
    vit_seconds = seconds_per_train_step(loss_fn, vit_model, batch, args.steps)

    print(json.dumps({
        "benchmark": "crate_step",
        "device": jax.devices()[0].device_kind,
        "batch": args.batch,
        "tokens_per_example": crate.Pos.size,
        "shape": {k: v for k, v in shape.items() if k != "pool"},
        "crate": {"params": parameter_count(crate_model), "step_ms": round(1e3 * crate_seconds, 2),
                  "images_per_s": round(args.batch / crate_seconds, 1)},
        "baseline": {"name": "common_jax ViT, same width/depth/heads/patches, MLP 4x",
                     "params": parameter_count(vit_model), "step_ms": round(1e3 * vit_seconds, 2),
                     "images_per_s": round(args.batch / vit_seconds, 1)},
        "ratio_crate_over_vit_throughput": round(vit_seconds / crate_seconds, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
