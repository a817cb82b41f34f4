"""What CPU-independent numerics cost: train-step time with XLA's platform-dependent CPU math on (XLA's default)
against off (``--xla_cpu_enable_platform_dependent_math=false`` in ``XLA_FLAGS``; see bench/README.md, Determinism).

    python bench/cpu_math_cost.py [--steps 5] [--repeats 7] [--lm_batch 16]

With the option on, XLA:CPU lowers e.g. rsqrt with ISA-specific approximations and lets YNNPACK pick
CPU-specific arithmetic, so the same run gives different bits on different x86 CPUs (``bench/determinism.py``);
off, those ops agree (the Eigen matmuls and thread-split reductions still do not). Timed here on the models whose
runs it decides: the CRATE reproduction's two models (``configs/crate/tiny_mnist.yaml`` and
``vit_tiny_mnist.yaml``, batch 128) and a levanter GPT-2 (d 128, L 4, seq 128, byte vocabulary), each step
compiled both ways in this process (``compiler_options``) and timed by
``timing.interleaved``. ``ratio_consistent_over_default_time`` > 1 means the consistent math is slower.
Writes ``bench/results/cpu_math_cost.json``.
"""

import argparse
from pathlib import Path

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
from common_jax.launch import parse_config
from common_jax.training.classification import classification_loss
from crate_jax.main.train import TrainClassifierConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "crate"
CONSISTENT = {"xla_cpu_enable_platform_dependent_math": False}


def image_batch(batch_size: int) -> ImageExample:
    rng = np.random.default_rng(0)
    Batch = Axis("batch", batch_size)
    return ImageExample(
        image=hax.named(jnp.asarray(rng.normal(size=(batch_size, 28, 28, 1)), jnp.float32),
                        (Batch, "height", "width", "channel")),
        label=hax.named(jnp.asarray(rng.integers(0, 10, batch_size), jnp.int32), (Batch,)),
        weight=hax.ones(Batch),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--image_batch", type=int, default=128)
    parser.add_argument("--lm_batch", type=int, default=16)
    args = parser.parse_args()
    env = environment()

    images = image_batch(args.image_batch)
    image_loss = lambda m, b: classification_loss(m, b, label_smoothing=0.1)[0]
    cases = {}
    for name, yaml in (("crate", "tiny_mnist.yaml"), ("vit", "vit_tiny_mnist.yaml")):
        config = parse_config(TrainClassifierConfig, CONFIGS / yaml)
        cases[name] = (image_loss, config.model.build(key=jax.random.PRNGKey(0)), images)

    gpt2 = Gpt2Config(max_seq_len=128, hidden_dim=128, num_layers=4, num_heads=4, gradient_checkpointing=False)
    tokens = np.random.default_rng(0).integers(0, 257, (args.lm_batch, 128))
    lm_batch = hax.vmap(LmExample.causal, "batch")(hax.named(jnp.asarray(tokens, jnp.int32), ("batch", "position")))
    lm_loss = lambda m, ex: m.compute_next_token_loss(ex, reduction=hax.mean).scalar()
    cases["gpt2"] = (lm_loss, gpt2.build(Axis("vocab", 257), key=jax.random.PRNGKey(0)), lm_batch)

    work = {}
    for name, (loss_fn, model, batch) in cases.items():
        work[f"{name}_default"] = train_step_work(loss_fn, model, batch, args.steps).run
        work[f"{name}_consistent"] = train_step_work(loss_fn, model, batch, args.steps, compiler_options=CONSISTENT).run
    timings = interleaved(work, repeats=args.repeats)

    rows = {name: {"default_step_ms": round(1e3 * timings[f"{name}_default"]["min_s"] / args.steps, 2),
                   "consistent_step_ms": round(1e3 * timings[f"{name}_consistent"]["min_s"] / args.steps, 2),
                   "ratio_consistent_over_default_time": round(
                       ratio(timings, f"{name}_consistent", f"{name}_default"), 3),
                   "median_ratio_consistent_over_default_time": round(
                       median_ratio(timings, f"{name}_consistent", f"{name}_default"), 3)}
            for name in cases}
    write_result("cpu_math_cost", {
        "what": "train step (AdamW) with xla_cpu_enable_platform_dependent_math true (XLA default) vs false",
        "image_batch": args.image_batch, "lm_batch": args.lm_batch, "steps_per_sample": args.steps,
        "models": rows,
        "timings": summarise(timings),
    }, env)


if __name__ == "__main__":
    main()
