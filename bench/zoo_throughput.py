"""Zoo generation throughput: the vmapped JAX generator against a plain PyTorch loop training one member at a time.

    python bench/zoo_throughput.py [--models 32] [--cpu_devices 2] [--steps 5] [--repeats 7] [--torch_threads N]
                                   [--epoch_examples 60000] [--epochs 100]

Both sides train the zoo's real member (nfn.md §5.1: 28x28 MNIST, 4x4 patches -> 49 tokens, D 32, 2 heads, MLP 64,
2 blocks, no residuals, non-affine LN, dropout after the embedding and in each block, classifier 32-32-10) with
Adam + coupled L2, batch 128, RandomCrop(28, padding 2), on the embedded mnist10k images:

- ``jax_vmapped_<M>``: ``nfn_jax.zoo.train.ChunkTrainer`` trains a chunk of ``M`` members (per-model lr, init std,
  L2 and dropout drawn from the paper's Adam grid) in one jitted, vmapped step per batch, the models sharded over
  the devices (on CPU: ``--cpu_devices`` host devices, one thread each; see below);
- ``torch_sequential``: ``nfn_jax.zoo.torch_member.TorchMember`` (the reference's modules) in a plain loop
  (zero_grad, forward, cross-entropy, backward, ``torch.optim.Adam`` step) on batches indexed and cropped from
  tensors held in memory: one model, the reference's way, on torch's default threads (``--torch_threads``).

Each unit of work is ``--steps`` optimiser steps; ``timing.interleaved`` alternates the units ``--repeats`` times
after a warm-up (compilation excluded). Rates are model-steps per second from the minima; ``ratio_vs_torch_sequential``
is the best chunk's rate over torch's (both measured on the same machine in one process, equal FLOPs per
model-step). ``models_per_minute`` converts a rate into whole zoo members: ``--epochs`` epochs of
``--epoch_examples`` examples (the paper: 100 epochs over MNIST's 60k; 468 steps each). Process CPU seconds per
unit are recorded beside the wall time (robust to other load on a shared machine).

``--cpu_devices N`` (CPU only) runs XLA on N host devices with single-threaded kernels, the models split among them
(N = the CPU count by default): the zoo step is thousands of small ops, which one thread per core runs better than
an intra-op thread pool. ``--cpu_devices 0`` keeps XLA's default (one device, all cores). On GPU the flag is ignored.
Prints the JSON and writes ``bench/results/zoo_throughput.json``.
"""

import argparse
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[32], help="chunk sizes to time (one unit each)")
    parser.add_argument("--cpu_devices", type=int, default=os.cpu_count(), help="CPU: host devices (0: XLA default)")
    parser.add_argument("--steps", type=int, default=5, help="optimiser steps per timed unit")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--torch_threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--epoch_examples", type=int, default=60000, help="examples per epoch of a zoo member")
    parser.add_argument("--epochs", type=int, default=100, help="epochs per zoo member")
    args = parser.parse_args(argv)
    if args.steps < 1 or min(args.models) < 1:
        parser.error("--steps and --models must be positive")
    return args


def configure_cpu_devices(count: int) -> None:
    """Before JAX starts: ``count`` host devices with single-threaded kernels (no-op for 0 or off CPU)."""
    if count and os.environ.get("JAX_PLATFORMS", "cpu") == "cpu":
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (f"{flags} --xla_force_host_platform_device_count={count} "
                                   "--xla_cpu_multi_thread_eigen=false").strip()


def matmul_flops_per_step(arch, batch: int) -> int:
    """Multiply-add FLOPs of one member's training step (forward matmuls x 3 for forward + backward)."""
    T, D, A, h = arch.num_tokens, arch.embed_dim, arch.mlp_dim, arch.num_heads
    patch = arch.num_channels * arch.patch_size**2
    block = T * D * 3 * D + 2 * h * T * T * (D // h) + T * D * D + 2 * T * D * A
    classifier = D * arch.classifier_hidden + arch.classifier_hidden * arch.num_classes
    forward = T * patch * D + arch.num_blocks * block + classifier
    return 3 * 2 * forward * batch


def main(argv=None):
    args = parse_args(argv)
    configure_cpu_devices(args.cpu_devices)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import jax
    import numpy as np
    import torch
    from timing import environment, interleaved, summarise, write_result

    from nfn_jax.zoo.config import SweepConfig
    from nfn_jax.zoo.data import ZooDataConfig
    from nfn_jax.zoo.model import ZooArchitecture
    from nfn_jax.zoo.torch_member import TorchMember, torch_optimizer, truncated_normal_init
    from nfn_jax.zoo.train import ChunkSchedule, ChunkTrainer, RunSpec, train_subset

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    env = environment()
    arch = ZooArchitecture()  # the paper's member
    batch, padding = 128, 2
    data = ZooDataConfig(max_train=args.steps * batch, max_test=batch).load(arch.max_len, arch.embed_dim)
    schedule = ChunkSchedule(epochs=10**6, warmup_epochs=10, batch_size=batch, crop_padding=padding)
    subset = train_subset(len(data.train_labels), 1.0, "image", schedule.seed)
    grid = list(SweepConfig(optimizers=["adam"]).combinations())
    picks = np.random.default_rng(0).choice(len(grid), max(args.models), replace=len(grid) < max(args.models))
    runs = [RunSpec(f"run{i:05d}", *grid[j]) for i, j in enumerate(picks)]

    work, cpu = {}, {}

    def timed(name, fn):
        def unit():
            start = time.process_time()
            fn()
            cpu.setdefault(name, []).append(time.process_time() - start)
        work[name] = unit

    for m in args.models:
        devices = jax.devices()
        sharded = m % len(devices) == 0
        trainer = ChunkTrainer(arch, "adam", data, schedule, m, devices=devices if sharded else devices[:1])
        indices = np.arange(m)
        state = {"params": trainer.init(runs[:m], indices), "epoch": 0}

        def jax_unit(trainer=trainer, state=state, m=m, indices=indices):
            params, opt_state = state["params"]
            params, opt_state, _ = trainer.train_epoch(params, opt_state, runs[:m], indices, state["epoch"], subset)
            jax.block_until_ready(params)
            state["params"], state["epoch"] = (params, opt_state), state["epoch"] + 1

        timed(f"jax_vmapped_{m}", jax_unit)

    torch_device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    torch.manual_seed(3)
    member = TorchMember(arch, dropout=0.1).to(torch_device)
    truncated_normal_init(member, 0.2)
    optimizer = torch_optimizer("adam", member.parameters(), lr=1e-3, weight_decay=1e-6)
    images = torch.from_numpy(data.train_inputs).permute(0, 3, 1, 2)  # [N, 1, 28, 28]
    padded = torch.nn.functional.pad(images, (padding,) * 4, value=-1.0).to(torch_device)
    labels = torch.from_numpy(data.train_labels).long().to(torch_device)
    side = arch.image_size
    rows = torch.arange(side, device=torch_device)

    def torch_unit():
        member.train()
        order = torch.randperm(len(labels), device=torch_device)
        for b in range(args.steps):
            idx = order[b * batch : (b + 1) * batch]
            oy, ox = (torch.randint(0, 2 * padding + 1, (batch,), device=torch_device) for _ in range(2))
            x = padded[idx[:, None, None], 0, (oy[:, None] + rows)[:, :, None], (ox[:, None] + rows)[:, None, :]]
            loss = torch.nn.functional.cross_entropy(member(x[:, None]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if torch_device == "cuda":
            torch.cuda.synchronize()

    timed("torch_sequential", torch_unit)

    timings = interleaved(work, repeats=args.repeats, warmup=1)
    flops = matmul_flops_per_step(arch, batch)
    steps_per_member = args.epochs * (args.epoch_examples // batch)

    def rates(name, models):
        per_second = models * args.steps / timings[name]["min_s"]
        return {"models": models, "model_steps_per_second": round(per_second, 3),
                "model_epochs_per_minute": round(per_second * 60 / (args.epoch_examples // batch), 3),
                "models_per_minute": round(per_second * 60 / steps_per_member, 5),
                "matmul_gflops_per_second": round(per_second * flops / 1e9, 2),
                "min_cpu_seconds_per_model_step": round(min(cpu[name][1:]) / models / args.steps, 5)}

    torch_rates = rates("torch_sequential", 1)
    sides = {name: rates(name, m) for name, m in zip(work, args.models) if name.startswith("jax")}
    best = max(sides, key=lambda n: sides[n]["model_steps_per_second"])
    ratio = sides[best]["model_steps_per_second"] / torch_rates["model_steps_per_second"]
    payload = {
        "what": "zoo members trained per minute: vmapped JAX chunks vs a plain PyTorch loop, one model at a time",
        "member": {"tokens": arch.num_tokens, "embed_dim": arch.embed_dim, "heads": arch.num_heads,
                   "mlp_dim": arch.mlp_dim, "blocks": arch.num_blocks, "batch": batch, "optimizer": "adam",
                   "crop_padding": padding},
        "steps_per_unit": args.steps, "repeats": args.repeats, "epoch_examples": args.epoch_examples,
        "epochs": args.epochs, "matmul_flops_per_model_step": flops,
        "jax_devices": [str(d) for d in jax.devices()], "cpu_devices_flag": args.cpu_devices,
        "torch_device": torch_device, "torch_threads": torch.get_num_threads(),
        "torch_sequential": torch_rates, "jax_vmapped": sides, "best_chunk": sides[best]["models"],
        "ratio_vs_torch_sequential": round(ratio, 3),
        "timings": summarise(timings), "cpu_seconds": {k: [round(x, 4) for x in v] for k, v in cpu.items()},
    }
    write_result("zoo_throughput", payload, env)


if __name__ == "__main__":
    main()
