"""Zoo generation throughput: models trained per minute by the vmapped generator vs one model at a time.

    python bench/zoo_throughput.py [--models 32] [--sequential 4] [--epochs 2] [--image_size 8]

Both sides run the same code (``nfn_jax.zoo.train.ChunkTrainer``): the vmapped side trains ``--models`` members in one
jitted step per batch; the baseline trains ``--sequential`` of them one at a time (chunk of 1) and its per-model time
is extrapolated. Compilation is excluded on both sides (one warm-up epoch each). Prints JSON with both rates and the
ratio vmapped / sequential.
"""

import argparse
import json
import time

import jax
import numpy as np

from nfn_jax.zoo.data import ZooDataConfig
from nfn_jax.zoo.model import ZooArchitecture
from nfn_jax.zoo.train import ChunkSchedule, ChunkTrainer, RunSpec, train_subset


def _runs(n: int) -> list[RunSpec]:
    rng = np.random.default_rng(0)
    return [RunSpec(f"run{i:05d}", "adam", float(10 ** rng.uniform(-3.5, -1.5)), float(rng.uniform(0.05, 0.5)),
                    float(10 ** rng.uniform(-8, -2)), 1.0, float(rng.uniform(0, 0.2))) for i in range(n)]


def _seconds_per_epoch(trainer: ChunkTrainer, runs: list[RunSpec], epochs: int, subset: np.ndarray) -> float:
    indices = np.arange(len(runs))
    params, opt_state = trainer.init(runs, indices)
    params, opt_state, _ = trainer.train_epoch(params, opt_state, runs, indices, 0, subset)  # compile
    jax.block_until_ready(params)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        params, opt_state, _ = trainer.train_epoch(params, opt_state, runs, indices, epoch, subset)
    jax.block_until_ready(params)
    return (time.perf_counter() - start) / epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image_size", type=int, default=8)
    parser.add_argument("--max_train", type=int, default=2048)
    args = parser.parse_args()

    arch = ZooArchitecture(task="image", embed_dim=16, num_heads=2, mlp_dim=32, classifier_hidden=16,
                           image_size=args.image_size, patch_size=4)
    data = ZooDataConfig(image_size=args.image_size, max_train=args.max_train, max_test=500).load(arch.max_len, arch.embed_dim)
    schedule = ChunkSchedule(epochs=args.epochs + 1, warmup_epochs=1, batch_size=128)
    subset = train_subset(len(data.train_labels), 1.0, "image", schedule.seed)
    runs = _runs(args.models)

    vmapped = _seconds_per_epoch(ChunkTrainer(arch, "adam", data, schedule, args.models), runs, args.epochs, subset)
    single = ChunkTrainer(arch, "adam", data, schedule, 1, devices=jax.devices()[:1])
    sequential = np.mean([_seconds_per_epoch(single, [r], args.epochs, subset) for r in runs[: args.sequential]])

    # "models per minute" at one epoch per model: a zoo member's full training scales both sides equally
    vmapped_rate = args.models * 60.0 / vmapped
    sequential_rate = 60.0 / sequential
    print(json.dumps({"benchmark": "zoo_throughput", "devices": len(jax.devices()), "models": args.models,
                      "examples_per_epoch": int(len(subset)), "tokens": arch.num_tokens, "embed_dim": arch.embed_dim,
                      "vmapped_model_epochs_per_minute": round(vmapped_rate, 1),
                      "sequential_model_epochs_per_minute": round(sequential_rate, 1),
                      "ratio_vmapped_over_sequential": round(vmapped_rate / sequential_rate, 2)}))


if __name__ == "__main__":
    main()
