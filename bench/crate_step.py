"""CRATE train-step throughput (images/s) as a ratio against the ViT of equal width, depth, heads and patches.

    python bench/crate_step.py [--size cpu|b16|tiny] [--batch N] [--steps N] [--repeats 7]
                               [--dtype float32|bfloat16] [--image 28 --patch 7 --width 64 --depth 4 --heads 4
                               --channels 1 --classes 10]

``--size cpu`` (default): tiny_mnist's shape (28x28x1, patch 7, d 64, L 4, K 4, batch 128, fp32).
``--size b16``: CRATE-B/16 against ViT-B/16 (224x224x3, patch 16, d 768, L 12, 12 heads, 1000 classes, MLP 3072),
batch 128, bf16 compute (parameters and optimizer in fp32, the model cast to bf16 inside the loss as levanter's
``trainer.mp`` policy does, images fed in bf16); the GPU suite's size. ``--size tiny``: a seconds-long check of
the same code path (bf16, 16x16x3). Any flag overrides the size's value.

Both models train with the same jitted AdamW step (``train_step_timing.train_step_work``) on the same random
images and the same cross-entropy loss, and are timed by ``timing.interleaved`` (each unit: ``--steps`` steps).
CRATE has 3 d x d matrices per layer (U, out, D) against the ViT's 12 (q, k, v, o and a 4d MLP).
``ratio_crate_over_vit_throughput`` (from the minima) > 1 means CRATE is faster. Prints the JSON and writes
``bench/results/crate_step.json`` (``crate_step_<size>.json`` for the other sizes; ``$BENCH_RESULTS`` moves the
folder).
"""

import argparse

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import jmp
import numpy as np
from haliax import Axis
from levanter.utils.jax_utils import parameter_count
from timing import environment, interleaved, median_ratio, ratio, summarise, write_result
from train_step_timing import train_step_work

from common_jax.data.images import ImageExample
from common_jax.models import ViTConfig
from common_jax.training.classification import classification_loss
from crate_jax import CrateConfig

SIZES = {
    "cpu": {"image": 28, "patch": 7, "channels": 1, "classes": 10, "width": 64, "depth": 4, "heads": 4, "batch": 128,
            "steps": 5, "dtype": "float32"},
    "b16": {"image": 224, "patch": 16, "channels": 3, "classes": 1000, "width": 768, "depth": 12, "heads": 12,
            "batch": 128, "steps": 5, "dtype": "bfloat16"},
    "tiny": {"image": 16, "patch": 8, "channels": 3, "classes": 10, "width": 32, "depth": 2, "heads": 2, "batch": 4,
             "steps": 1, "dtype": "bfloat16"},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="cpu")
    for name in SIZES["cpu"]:
        if name != "dtype":
            parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    for name, value in SIZES[args.size].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def random_batch(args, dtype) -> ImageExample:
    """``args.batch`` random images in ``dtype`` with random labels, all weight 1."""
    rng = np.random.default_rng(0)
    Batch = Axis("batch", args.batch)
    images = rng.normal(size=(args.batch, args.image, args.image, args.channels))
    return ImageExample(
        image=hax.named(jnp.asarray(images, dtype), (Batch, "height", "width", "channel")),
        label=hax.named(jnp.asarray(rng.integers(0, args.classes, args.batch), jnp.int32), (Batch,)),
        weight=hax.ones(Batch),
    )


def main():
    args = parse_args()
    env = environment()
    shape = {"image_size": args.image, "patch_size": args.patch, "num_channels": args.channels,
             "num_classes": args.classes, "hidden_dim": args.width, "num_layers": args.depth, "num_heads": args.heads,
             "pool": "cls"}
    crate = CrateConfig(**shape, patch_ln=args.channels > 1)
    vit = ViTConfig(**shape, mlp_dim=4 * args.width)
    policy = jmp.get_policy(f"p=f32,c={args.dtype}")
    batch = random_batch(args, policy.compute_dtype)

    def loss_fn(model, batch):
        return classification_loss(policy.cast_to_compute(model), batch)[0]

    models = {"crate": crate.build(key=jax.random.PRNGKey(0)), "vit": vit.build(key=jax.random.PRNGKey(0))}
    work = {name: train_step_work(loss_fn, model, batch, args.steps) for name, model in models.items()}
    timings = interleaved({name: w.run for name, w in work.items()}, repeats=args.repeats)

    def row(name):
        seconds = timings[name]["min_s"] / args.steps
        return {"params": parameter_count(eqx.filter(models[name], eqx.is_inexact_array)),
                "step_ms": round(1e3 * seconds, 2),
                "median_step_ms": round(1e3 * timings[name]["median_s"] / args.steps, 2),
                "images_per_s": round(args.batch / seconds, 1), "peak_bytes": work[name].peak_bytes}

    write_result("crate_step" if args.size == "cpu" else f"crate_step_{args.size}", {
        "size": args.size,
        "compute_dtype": args.dtype,
        "batch": args.batch,
        "tokens_per_example": crate.Pos.size,
        "shape": {k: v for k, v in shape.items() if k != "pool"},
        "steps_per_sample": args.steps,
        "crate": row("crate"),
        "baseline": {"name": "common_jax ViT, same width/depth/heads/patches, MLP 4x", **row("vit")},
        "ratio_crate_over_vit_throughput": round(ratio(timings, "vit", "crate"), 3),
        "median_ratio_crate_over_vit_throughput": round(median_ratio(timings, "vit", "crate"), 3),
        "timings": summarise(timings),
    }, env)


if __name__ == "__main__":
    main()
