"""Wall time to fuse two ViTs with OT (Sinkhorn and exact), stage by stage, against vanilla averaging.

    python bench/fusion_time.py [--size cpu|paper|vit_b16] [--num_images N] [--repeats 7] [--solvers sinkhorn,emd]
                                [--emd_num_iter_max N]

Sizes (two independently initialised models; fusion time does not depend on training):
``vit_b16`` (the GPU suite's): ViT-B/16, 224x224x3, patch 16, hidden 768, 12 layers, 12 heads, MLP 3072,
1000 classes, activations of 200 images; ``paper``: the reference's CIFAR-10 ViT (32x32x3, patch 4, hidden 384,
7 layers, 12 heads, MLP 1536); ``cpu`` (default, a smoke check): 32x32x3, patch 4, hidden 64, 2 layers, 4 heads,
MLP 128, 50 images. Fusion settings: the released ones (activation cost, ``window_6`` token filter, standardised
Euclidean max-normalised cost, Sinkhorn reg 0.08, mean residual policy), probes in one jitted batched pass per
model.

Timed with ``timing.interleaved`` (after one untimed fusion per solver, which compiles the activation pass and
provides the maps, and one untimed call of the other units), every unit on both models:

- ``vanilla_average``: the in-process baseline;
- ``activation_collection``: both models' taps, one jitted batched pass each;
- ``fuse_<solver>``: ``fuse_with_maps`` end to end (collection, cost matrices and OT solves, weight transforms,
  the fused model written once into a copy of the anchor);
- ``weight_transforms``: ``fuse_with_maps`` with the solved maps given: reading, aligning, averaging and writing
  the parameters, no activations and no OT.

The breakdown per solver (from the minima): activation collection, OT solves including their cost matrices
(``fuse - collection - weight transforms``), weight transforms. ``emd_maps_not_optimal`` counts the maps for
which POT's network simplex stopped at ``--emd_num_iter_max`` (POT's default 100000, the reference's, stops early
on 3072-wide layers). Writes ``bench/results/fusion_time.json``.
"""

import argparse
import dataclasses
import logging

import equinox as eqx
import jax
import numpy as np
from timing import environment, interleaved, median_ratio, ratio, summarise, write_result

from common_jax.models import ViTConfig
from fusion_jax import ActsConfig, EmdConfig, FusionConfig, SinkhornConfig, fuse_with_maps, vanilla_average
from fusion_jax.adapters import vit as vit_adapter

SIZES = {
    "cpu": (ViTConfig(image_size=32, patch_size=4, num_channels=3, num_classes=10, hidden_dim=64, num_layers=2,
                      num_heads=4, mlp_dim=128, pool="cls"), 50),
    "paper": (ViTConfig(image_size=32, patch_size=4, num_channels=3, num_classes=10, hidden_dim=384, num_layers=7,
                        num_heads=12, mlp_dim=1536, pool="cls", layer_norm_eps=1e-12, activation="gelu"), 200),
    "vit_b16": (ViTConfig(image_size=224, patch_size=16, num_channels=3, num_classes=1000, hidden_dim=768,
                          num_layers=12, num_heads=12, mlp_dim=3072, pool="cls", layer_norm_eps=1e-12,
                          activation="gelu"), 200),
}
SOLVERS = ("sinkhorn", "emd")


class CountWarnings(logging.Handler):
    """Counts the warnings ``fusion_jax.align`` logs (one per OT map whose solver warned)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        self.count += 1


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="cpu")
    parser.add_argument("--num_images", type=int, default=None, help="probe images (default: the size's)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--solvers", default=",".join(SOLVERS), help="comma-separated subset of sinkhorn,emd")
    parser.add_argument("--emd_num_iter_max", type=int, default=EmdConfig().num_iter_max)
    args = parser.parse_args(argv)
    args.solvers = [s for s in args.solvers.split(",") if s]
    if not args.solvers or set(args.solvers) - set(SOLVERS):
        parser.error(f"--solvers must name some of {SOLVERS}, got {args.solvers}")
    return args


def _ready(tree):
    return jax.block_until_ready(eqx.filter(tree, eqx.is_array))


def main():
    args = parse_args()
    env = environment()
    vit, default_images = SIZES[args.size]
    num_images = args.num_images or default_images
    models = [vit.build(key=jax.random.PRNGKey(seed)) for seed in (1, 2)]
    shape = (num_images, vit.image_size, vit.image_size, vit.num_channels)
    images = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    base = FusionConfig(cost="acts", resid_policy="mean", sinkhorn=SinkhornConfig(reg=0.08),
                        emd=EmdConfig(num_iter_max=args.emd_num_iter_max),
                        acts=ActsConfig(num_samples=num_images, seq_filter="window_6", batch_size=num_images))
    configs = {solver: dataclasses.replace(base, solver=solver) for solver in args.solvers}
    keep = vit_adapter.taps_needed(models[1], base)

    counter = CountWarnings()
    logging.getLogger("fusion_jax.align").addHandler(counter)
    first = {}  # untimed: compiles the activation pass, provides the maps, counts solver warnings
    for solver, config in configs.items():
        counter.count = 0
        first[solver] = fuse_with_maps(models, 1, config, images)
        first[solver] = {"maps": first[solver].maps, "solver_warnings": counter.count}
    maps = first[args.solvers[0]]["maps"]

    work = {
        "vanilla_average": lambda: _ready(vanilla_average(models)),
        "activation_collection": lambda: [vit_adapter.collect_taps(m, images, keep, num_images) for m in models],
        "weight_transforms": lambda: _ready(fuse_with_maps(models, 1, base, None, maps=maps).model),
    }
    for name in ("vanilla_average", "weight_transforms"):  # the rest was warmed up by the first fusions
        work[name]()
    for solver, config in configs.items():
        work[f"fuse_{solver}"] = lambda config=config: _ready(fuse_with_maps(models, 1, config, images).model)
    timings = interleaved(work, repeats=args.repeats, warmup=0)

    collection, transforms = timings["activation_collection"]["min_s"], timings["weight_transforms"]["min_s"]
    breakdown = {}
    for solver in args.solvers:
        total = timings[f"fuse_{solver}"]["min_s"]
        breakdown[solver] = {
            "total_s": round(total, 3), "activation_collection_s": round(collection, 3),
            "ot_solves_with_costs_s": round(total - collection - transforms, 3),
            "weight_transforms_s": round(transforms, 3),
            "ratio_over_vanilla_average": round(ratio(timings, f"fuse_{solver}", "vanilla_average"), 1),
            "median_ratio_over_vanilla_average": round(median_ratio(timings, f"fuse_{solver}", "vanilla_average"), 1),
        }
    payload = {
        "model": {"size": args.size, **{k: getattr(vit, k) for k in (
            "image_size", "patch_size", "num_channels", "hidden_dim", "num_layers", "num_heads", "mlp_dim",
            "num_classes")}},
        "num_images": num_images, "repeats": args.repeats, "seq_filter": base.acts.seq_filter,
        "sinkhorn_reg": base.sinkhorn.reg, "emd_num_iter_max": args.emd_num_iter_max,
        "ot_problems_per_fusion": len(maps[0]),
        "activation_taps_per_model": len(keep),
        "emd_maps_not_optimal": first["emd"]["solver_warnings"] if "emd" in first else None,
        "sinkhorn_maps_warned": first["sinkhorn"]["solver_warnings"] if "sinkhorn" in first else None,
        "baseline": "vanilla_average of the same two models",
        "breakdown": breakdown,
        "timings": summarise(timings),
    }
    write_result("fusion_time", payload, env)


if __name__ == "__main__":
    main()
