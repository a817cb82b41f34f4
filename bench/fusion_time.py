"""Wall time to fuse two ViTs of the paper's size (spec fusion.md §15.1: hidden 384, patch 4, 7 layers,
CIFAR-sized 32x32x3 input, 12 heads, MLP 1536) with the released settings: activation cost on 200 images,
window_6 filter, Sinkhorn reg 0.08, mean residual policy.

    python bench/fusion_time.py [--repeats 3] [--num_images 200]

Prints JSON: the total and its breakdown (activation collection, OT solves including their cost matrices,
weight transforms = the rest: reading, aligning and writing parameters), and the ratio of the total to the
baseline measured in the same process, vanilla averaging of the same two models. Parents are two
independently initialised models (fusion time does not depend on training).
"""

import argparse
import json
import platform
import time

import jax
import numpy as np

from common_jax.models import ViTConfig
from fusion_jax import ActsConfig, FusionConfig, SinkhornConfig, fuse, vanilla_average
from fusion_jax.adapters import vit as vit_adapter
from fusion_jax.align import Aligner

PAPER_VIT = ViTConfig(image_size=32, patch_size=4, num_channels=3, num_classes=10, hidden_dim=384, num_layers=7,
                      num_heads=12, mlp_dim=1536, pool="cls", layer_norm_eps=1e-12)


class Timers:
    """Accumulates wall time spent inside wrapped functions."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                self.calls[name] = self.calls.get(name, 0) + 1
        return timed


def _block(tree):
    jax.tree.map(lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num_images", type=int, default=200)
    args = parser.parse_args()

    models = [PAPER_VIT.build(key=jax.random.PRNGKey(seed)) for seed in (1, 2)]
    images = np.random.default_rng(0).normal(size=(args.num_images, 32, 32, 3)).astype(np.float32)
    config = FusionConfig(cost="acts", solver="sinkhorn", sinkhorn=SinkhornConfig(reg=0.08),
                          acts=ActsConfig(num_samples=args.num_images, seq_filter="window_6", batch_size=50))

    # warm-up: compiles the activation forward pass and the eager parameter ops once
    _block(fuse(models, 1, config, images))
    _block(vanilla_average(models))

    timers = Timers()
    original_collect, original_couple = vit_adapter.collect_taps, Aligner.couple
    vit_adapter.collect_taps = timers.wrap("activation_collection", original_collect)
    Aligner.couple = timers.wrap("ot_solves", original_couple)
    totals, baselines = [], []
    try:
        for _ in range(args.repeats):
            start = time.perf_counter()
            _block(fuse(models, 1, config, images))
            totals.append(time.perf_counter() - start)
            start = time.perf_counter()
            _block(vanilla_average(models))
            baselines.append(time.perf_counter() - start)
    finally:
        vit_adapter.collect_taps, Aligner.couple = original_collect, original_couple

    total = float(np.median(totals))
    per_run = {k: v / args.repeats for k, v in timers.seconds.items()}
    result = {
        "benchmark": "fuse two paper-size ViTs (hidden 384, patch 4, 7 layers, 12 heads, MLP 1536)",
        "num_images": args.num_images, "repeats": args.repeats,
        "device": str(jax.devices()[0].device_kind), "cpu": platform.processor() or platform.machine(),
        "fuse_seconds_median": round(total, 3),
        "breakdown_seconds": {
            "activation_collection": round(per_run["activation_collection"], 3),
            "ot_solves": round(per_run["ot_solves"], 3),
            "weight_transforms": round(
                float(np.mean(totals)) - per_run["activation_collection"] - per_run["ot_solves"], 3),
        },
        "ot_problems_per_fusion": timers.calls["ot_solves"] // args.repeats,
        "baseline": "vanilla_average of the same two models",
        "baseline_seconds_median": round(float(np.median(baselines)), 3),
        "ratio_fuse_over_baseline": round(total / float(np.median(baselines)), 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
