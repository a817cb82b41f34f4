"""ViT train-step throughput (images/s), as a ratio against levanter's GPT-2 step run in the same process.

    python bench/vit_train_step.py [--batch 128] [--steps 5] [--repeats 7]

Both models have the same width, depth, heads, MLP width and tokens per example (ViT: 16 patches + cls; GPT-2:
17 positions over a 10-token vocabulary), and train with the same jitted AdamW step, so the ratio isolates the
cost of the ViT's own layers. Timed by ``timing.interleaved`` (each unit: ``--steps`` steps); prints the JSON
and writes ``bench/results/vit_train_step.json``.
"""

import argparse

import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import Axis
from levanter.models.gpt2 import Gpt2Config
from levanter.models.lm_model import LmExample
from timing import environment, interleaved, median_ratio, ratio, summarise, write_result
from train_step_timing import train_step_work

from common_jax.data.images import ImageExample
from common_jax.models import ViTConfig
from common_jax.training.classification import classification_loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = environment()

    vit = ViTConfig(image_size=28, patch_size=7, hidden_dim=64, num_layers=4, num_heads=4, mlp_dim=128, pool="mean")
    rng = np.random.default_rng(0)
    Batch = Axis("batch", args.batch)
    images = ImageExample(
        image=hax.named(jnp.asarray(rng.normal(size=(args.batch, 28, 28, 1)), jnp.float32),
                        (Batch, "height", "width", "channel")),
        label=hax.named(jnp.asarray(rng.integers(0, 10, args.batch), jnp.int32), (Batch,)),
        weight=hax.ones(Batch),
    )
    vit_loss = lambda m, b: classification_loss(m, b)[0]
    vit_work = train_step_work(vit_loss, vit.build(key=jax.random.PRNGKey(0)), images, args.steps)

    gpt2 = Gpt2Config(max_seq_len=vit.Pos.size, hidden_dim=64, num_layers=4, num_heads=4, mlp_scale=2,
                      gradient_checkpointing=False)
    Pos, Vocab = gpt2.max_Pos, Axis("vocab", 10)
    tokens = hax.named(jnp.asarray(rng.integers(0, 10, (args.batch, Pos.size)), jnp.int32), (Batch, Pos))
    example = hax.vmap(LmExample.causal, Batch)(tokens)
    gpt2_loss = lambda m, ex: m.compute_next_token_loss(ex, reduction=hax.mean).scalar()
    gpt2_work = train_step_work(gpt2_loss, gpt2.build(Vocab, key=jax.random.PRNGKey(0)), example, args.steps)

    timings = interleaved({"vit": vit_work.run, "gpt2": gpt2_work.run}, repeats=args.repeats)
    vit_seconds, gpt2_seconds = (timings[k]["min_s"] / args.steps for k in ("vit", "gpt2"))
    write_result("vit_train_step", {
        "batch": args.batch,
        "tokens_per_example": vit.Pos.size,
        "steps_per_sample": args.steps,
        "vit": {"step_ms": round(1e3 * vit_seconds, 2), "images_per_s": round(args.batch / vit_seconds, 1)},
        "baseline": {"name": "levanter gpt2, same width/depth/heads/mlp/tokens",
                     "step_ms": round(1e3 * gpt2_seconds, 2), "sequences_per_s": round(args.batch / gpt2_seconds, 1)},
        "ratio_vit_over_baseline_throughput": round(ratio(timings, "gpt2", "vit"), 3),
        "median_ratio_vit_over_baseline_throughput": round(median_ratio(timings, "gpt2", "vit"), 3),
        "timings": summarise(timings),
    }, env)


if __name__ == "__main__":
    main()
