"""Generate a Small Transformer Zoo: many members per jitted, vmapped step, written as resumable shards.

    python -m nfn_jax.main.generate_zoo --config_path configs/nfn/tiny_mnist.yaml [--output_dir zoo/tiny]

One shard per chunk (runs sharing optimiser and train fraction). A finished shard is listed in
``<output_dir>/manifest.json``; a relaunch skips it, so an interrupted generation resumes at the first unfinished
shard, and run ids are deterministic (grid index), so the resumed output equals an uninterrupted one.

On a CPU machine, the environment variable
``XLA_FLAGS="--xla_force_host_platform_device_count=<cores> --xla_cpu_multi_thread_eigen=false"`` gives XLA one
single-threaded device per core, and a ``chunk_size`` divisible by the core count splits each chunk's models among
them (``bench/zoo_throughput.py --cpu_devices``).
"""

import json
import logging
from pathlib import Path

import draccus
import numpy as np
from tqdm import tqdm

from common_jax.launch import run_main

from ..zoo.config import ZooConfig
from ..zoo.io import RUN_COLUMNS, atomic_write, read_csv, write_csv, write_npz
from ..zoo.train import ChunkTrainer, train_chunk

logger = logging.getLogger(__name__)


def _rows(runs, label: str, shard_file: str, accuracy: np.ndarray, accuracy_column: str) -> list[dict]:
    return [{"run_id": r.run_id, "optimizer": r.optimizer, "lr": r.lr, "w_init_std": r.init_std,
             "l2_regularize": r.weight_decay, "dropout": r.dropout, "train_fraction": r.train_fraction,
             "ckpt_epoch": label, "ckpt_file": f"{shard_file}#{i}", accuracy_column: float(a)}
            for i, (r, a) in enumerate(zip(runs, accuracy))]


def main(config: ZooConfig) -> dict:
    """Generate (or finish) the zoo; returns ``{"num_runs", "num_checkpoints", "output_dir"}``."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    fingerprint = draccus.dump(config)
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"config": fingerprint, "done": []}
    if manifest["config"] != fingerprint:
        raise ValueError(f"{out} holds a zoo generated with a different config; choose another output_dir")

    arch = config.architecture
    data = config.data.load(arch.max_len, arch.embed_dim)
    accuracy_column = "test_top1_accuracy" if arch.task == "image" else "test_accuracy"
    columns = [*RUN_COLUMNS, "ckpt_epoch", "ckpt_file", accuracy_column]
    chunks = config.chunks()
    all_runs = [r for c in chunks for r in c]
    index_of = {r.run_id: int(r.run_id[3:]) for r in all_runs}
    trainers: dict[tuple, ChunkTrainer] = {}
    todo = [k for k in range(len(chunks)) if k not in manifest["done"]]
    with tqdm(total=len(todo) * config.epochs, desc=f"zoo {out.name}", unit="epoch", mininterval=2.0) as bar:
        for k in todo:
            runs = chunks[k]
            # pad every chunk to chunk_size (copies of its last run, dropped afterwards): one compile per optimiser
            padded = runs + [runs[-1]] * (config.chunk_size - len(runs))
            if runs[0].optimizer not in trainers:
                trainers[runs[0].optimizer] = ChunkTrainer(arch, runs[0].optimizer, data, config.schedule(), config.chunk_size)
            saved = train_chunk(trainers[runs[0].optimizer], padded, np.asarray([index_of[r.run_id] for r in padded]),
                                tuple(config.checkpoint_epochs), config.save_best, on_epoch=lambda e: bar.update(1))
            rows = []
            for label, (params, acc) in saved.items():
                params, acc = {n: v[: len(runs)] for n, v in params.items()}, acc[: len(runs)]
                label = config.best_label if label == "best" else label
                name = f"shard_{k:04d}_epoch_{label}.npz"
                buffers = {n: np.broadcast_to(v, (len(runs), *v.shape)) for n, v in arch.buffers().items()}
                write_npz(out / name, {**params, **buffers})
                rows += _rows(runs, label, name, acc, accuracy_column)
            write_csv(out / f"shard_{k:04d}.csv", rows, columns)
            manifest["done"] = sorted(manifest["done"] + [k])
            atomic_write(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest)))
    rows = [row for k in sorted(manifest["done"]) for row in read_csv(out / f"shard_{k:04d}.csv")]
    write_csv(out / "metadata.csv", rows, columns)
    logger.info("zoo %s: %d runs, %d checkpoints", out, len(all_runs), len(rows))
    return {"num_runs": len(all_runs), "num_checkpoints": len(rows), "output_dir": str(out)}


if __name__ == "__main__":
    run_main(main)
