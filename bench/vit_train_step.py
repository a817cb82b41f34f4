"""ViT train-step throughput (images/s), as a ratio against levanter's GPT-2 step run in the same process.

    python bench/vit_train_step.py [--batch 128] [--steps 20]

Both models have the same width, depth, heads, MLP width and tokens per example (ViT: 16 patches + cls; GPT-2:
17 positions over a 10-token vocabulary), and train with the same jitted AdamW step, so the ratio isolates the
cost of the ViT's own layers. Prints one JSON object.
"""

import argparse
import json

import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import Axis
from levanter.models.gpt2 import Gpt2Config
from levanter.models.lm_model import LmExample

from common_jax.data.images import ImageExample
from common_jax.models import ViTConfig
from common_jax.training.classification import classification_loss
from train_step_timing import seconds_per_train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    vit = ViTConfig(image_size=28, patch_size=7, hidden_dim=64, num_layers=4, num_heads=4, mlp_dim=128, pool="mean")
    rng = np.random.default_rng(0)
    Batch = Axis("batch", args.batch)
    images = ImageExample(
        image=hax.named(jnp.asarray(rng.normal(size=(args.batch, 28, 28, 1)), jnp.float32),
                        (Batch, "height", "width", "channel")),
        label=hax.named(jnp.asarray(rng.integers(0, 10, args.batch), jnp.int32), (Batch,)),
        weight=hax.ones(Batch),
    )
    vit_loss = lambda m, b: classification_loss(m, b)[0]  # noqa: E731
    vit_seconds = seconds_per_train_step(vit_loss, vit.build(key=jax.random.PRNGKey(0)), images, args.steps)

    gpt2 = Gpt2Config(max_seq_len=vit.Pos.size, hidden_dim=64, num_layers=4, num_heads=4, mlp_scale=2,
                      gradient_checkpointing=False)
    Pos, Vocab = gpt2.max_Pos, Axis("vocab", 10)
    tokens = hax.named(jnp.asarray(rng.integers(0, 10, (args.batch, Pos.size)), jnp.int32), (Batch, Pos))
    example = hax.vmap(LmExample.causal, Batch)(tokens)
    gpt2_loss = lambda m, ex: m.compute_next_token_loss(ex, reduction=hax.mean).scalar()  # noqa: E731
    gpt2_seconds = seconds_per_train_step(gpt2_loss, gpt2.build(Vocab, key=jax.random.PRNGKey(0)), example, args.steps)

    print(json.dumps({
        "benchmark": "vit_train_step",
        "device": jax.devices()[0].device_kind,
        "batch": args.batch,
        "tokens_per_example": vit.Pos.size,
        "vit": {"step_ms": round(1e3 * vit_seconds, 2), "images_per_s": round(args.batch / vit_seconds, 1)},
        "baseline": {"name": "levanter gpt2, same width/depth/heads/mlp/tokens",
                     "step_ms": round(1e3 * gpt2_seconds, 2), "sequences_per_s": round(args.batch / gpt2_seconds, 1)},
        "ratio_vit_over_baseline_throughput": round(gpt2_seconds / vit_seconds, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
