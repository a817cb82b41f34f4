"""DiffEqFormer train-step time against levanter's GPT-2 of equal width, depth, heads and sequence length.

    python bench/qkvflow_step.py                      # CPU: D128 L4 H4, seq 128, d 8, K 8, f32, batch 4, 8, 32
    python bench/qkvflow_step.py --size tiny          # CPU smoke check (seconds): D32 L2 H2, seq 32
    python bench/qkvflow_step.py --size gpt2-small    # GPU suite: D768 L12 H12, seq 1024, V 50257, d 20, K 128,
                                                      # bf16 compute (f32 parameters), batch 8, 32
    options: --per-step --parallel --batches 8 32 --steps 5 --repeats 7 --dtype bfloat16 --hidden/--layers/...

Both models train with the same compiled AdamW step (``train_step_timing.train_step_work``) on the same random
batch, gradient checkpointing on in both, the same attention kernels (``--attention``: levanter's default for the
platform, or vanilla), computing in ``--dtype`` under levanter's mixed-precision policy (``p=f32,c=<dtype>``,
parameters and optimizer in f32). Timed by ``timing.interleaved`` (``--repeats`` rounds,
each unit ``--steps`` steps); the ratio is DiffEqFormer over GPT-2 seconds per step, from the minima, with the
medians' ratio beside it. ``--per-step`` adds the DiffEqFormer with ``weight_generation: per_step`` (the
reference's loop: W(t) generated inside every rematerialised Euler step) to the same interleaved rounds, and
``--parallel`` the untied parallel transformer (the same block code with static per-layer weights), so that
DiffEqFormer / GPT-2 splits into the hypernetwork's cost (DiffEqFormer / parallel) and the block's (parallel /
GPT-2).

The DiffEqFormer's fixed cost per step is its weight generation: W(tau_i) = W0 + A e(tau_i) for every Euler step
and its gradient. The JSON gives its FLOPs (6 d In Out per unit and step, against the model FLOPs) and XLA's
compiled cost analysis of it (``generation_xla``: FLOPs and bytes accessed of the batched generation's forward
and backward, which has no loop for XLA to count once), with the parameter counts (the optimizer runs over
(d+1)x the block parameters), the model FLOPs per step (3 x levanter's forward FLOPs per token x tokens, the same
for both models) and the MFU: model FLOPs per second over the device's peak dense FLOP/s (``PEAK_FLOPS``, keyed
by ``device_kind``; none on CPU). Writes ``bench/results/qkvflow_step.json`` (``qkvflow_step_<size>.json`` for
the other sizes; ``$BENCH_RESULTS`` moves the folder).
"""

import argparse
import dataclasses

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import jmp
import numpy as np
from haliax import Axis
from levanter.layers.attention import AttentionBackend
from levanter.models.gpt2 import Gpt2Config
from levanter.models.lm_model import LmExample
from levanter.utils.jax_utils import parameter_count
from timing import environment, interleaved, median_ratio, ratio, summarise, write_result
from train_step_timing import train_step_work

from qkvflow_jax import DiffEqFormerConfig, ParallelTransformerConfig
from qkvflow_jax.time_features import uniform_grid

SIZES = {
    "cpu": dict(hidden=128, layers=4, heads=4, seq=128, vocab=257, time_embed=8, sinusoidal=8, batches=[4, 8, 32],
                dtype="float32", steps=5),
    "tiny": dict(hidden=32, layers=2, heads=2, seq=32, vocab=257, time_embed=4, sinusoidal=4, batches=[4, 8],
                 dtype="float32", steps=2),
    "gpt2-small": dict(hidden=768, layers=12, heads=12, seq=1024, vocab=50257, time_embed=20, sinusoidal=128,
                       batches=[8, 32], dtype="bfloat16", steps=5),
}
ATTENTION = {"default": None, "vanilla": AttentionBackend.VANILLA}
# peak dense FLOP/s per chip in the compute dtype, matched by substring of jax's device_kind (first match wins)
PEAK_FLOPS = {
    "bfloat16": (("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("TPU v5p", 459e12), ("TPU v5 lite", 197e12),
                 ("TPU v4", 275e12)),
    "float32": (("H200", 67e12), ("H100", 67e12), ("A100", 19.5e12)),
}


def peak_flops(device_kind: str, dtype: str) -> float | None:
    """The chip's peak dense FLOP/s in ``dtype`` from ``PEAK_FLOPS``, or None (CPU, unknown chip)."""
    return next((peak for name, peak in PEAK_FLOPS.get(dtype, ()) if name in device_kind), None)


def generation_flops_per_step(config: DiffEqFormerConfig) -> float:
    """FLOPs of the DiffEqFormer's weight generation per train step (forward and backward, not per token):
    W(t) = W0 + A e(t) costs 2 d In Out per linear unit and Euler step, b(t) 2 d Out, x3 for the backward."""
    D, M, d = config.hidden_dim, config.hidden_dim * config.mlp_scale, config.time_embed_dim
    block = D * 3 * D + D * D + D * M + M * D + 3 * D + D + M + D
    return 3 * 2 * d * block * config.num_layers


def generation_cost(model, policy) -> dict[str, float | None]:
    """XLA's cost analysis of the batched weight generation on the training grid, forward (the weights of every
    step) and backward (a vector-Jacobian product with cotangents passed in, so that XLA cannot simplify it):
    {"flops", "bytes_accessed"}."""
    config = model.config
    tau, _ = uniform_grid(config.num_layers)
    Steps = Axis("layers", config.num_layers)

    def generate(field):
        field = policy.cast_to_compute(field)
        return hax.vmap(lambda t: field.weights_at(t.array), Steps)(hax.named(tau, Steps))

    def forward_and_backward(field, cotangents):
        weights, pullback = eqx.filter_vjp(generate, field)
        return weights, pullback(cotangents)

    cotangents = jax.tree.map(jnp.ones_like, eqx.filter_eval_shape(generate, model.field))
    compiled = eqx.filter_jit(forward_and_backward).lower(model.field, cotangents).compile()
    cost = compiled.compiled.cost_analysis()
    cost = (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}
    return {"flops": cost.get("flops"), "bytes_accessed": cost.get("bytes accessed")}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="cpu")
    for name in ("hidden", "layers", "heads", "seq", "vocab", "time-embed", "sinusoidal", "steps"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--batches", type=int, nargs="+")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--attention", choices=sorted(ATTENTION), default="default",
                        help="levanter's attention backend of both models: the platform's default (JAX flash "
                             "attention on CPU, TransformerEngine on GPU) or vanilla (scores materialised)")
    parser.add_argument("--per-step", action="store_true",
                        help="also time the DiffEqFormer with weight_generation: per_step (the reference's loop)")
    parser.add_argument("--parallel", action="store_true",
                        help="also time the untied parallel transformer (the DiffEqFormer's block code with static "
                             "per-layer weights), which separates the hypernetwork's cost from the block's")
    args = parser.parse_args()
    for key, value in SIZES[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main():
    args = _args()
    env = environment()
    shape = dict(max_seq_len=args.seq, hidden_dim=args.hidden, num_layers=args.layers, num_heads=args.heads,
                 attn_backend=ATTENTION[args.attention])
    ode = DiffEqFormerConfig(**shape, time_embed_dim=args.time_embed, sinusoidal_dim=args.sinusoidal,
                             embed_pdrop=0.0, resid_pdrop=0.0, gradient_checkpointing=True)
    gpt = Gpt2Config(**shape, embed_pdrop=0.0, resid_pdrop=0.0, gradient_checkpointing=True)
    policy = jmp.get_policy(f"p=f32,c={args.dtype}")

    def loss_fn(model, batch: LmExample):
        return policy.cast_to_compute(model).compute_next_token_loss(batch).scalar().astype(jnp.float32)

    Vocab = Axis("vocab", args.vocab)
    models = {"diffeqformer": ode.build(Vocab, key=jax.random.PRNGKey(0)),
              "gpt2": gpt.build(Vocab, key=jax.random.PRNGKey(0))}
    if args.per_step:  # the same parameters (the init does not depend on weight_generation)
        per_step = dataclasses.replace(ode, weight_generation="per_step")
        models["diffeqformer_per_step"] = per_step.build(Vocab, key=jax.random.PRNGKey(0))
    if args.parallel:
        parallel = ParallelTransformerConfig(**shape, embed_pdrop=0.0, resid_pdrop=0.0, gradient_checkpointing=True)
        models["untied_parallel"] = parallel.build(Vocab, key=jax.random.PRNGKey(0))
    flops_per_token = gpt.flops_per_token(args.vocab, args.seq)
    device_kind = jax.devices()[0].device_kind
    peak = peak_flops(device_kind, args.dtype)
    generation_flops = generation_flops_per_step(ode)
    rng = np.random.default_rng(0)
    rows = []
    for batch_size in args.batches:
        tokens = hax.named(jnp.asarray(rng.integers(0, args.vocab, (batch_size, args.seq)), jnp.int32),
                           ("batch", "position"))
        batch = hax.vmap(LmExample.causal, "batch")(tokens)
        work = {name: train_step_work(loss_fn, model, batch, args.steps) for name, model in models.items()}
        timings = interleaved({name: w.run for name, w in work.items()}, repeats=args.repeats)
        model_flops = 3 * flops_per_token * batch_size * args.seq
        row = {"batch": batch_size, "tokens_per_step": batch_size * args.seq}
        for name in models:
            if name != "gpt2":
                row[f"ratio_{name}_over_gpt2"] = round(ratio(timings, name, "gpt2"), 4)
                row[f"median_ratio_{name}_over_gpt2"] = round(median_ratio(timings, name, "gpt2"), 4)
        for name in models:
            seconds = timings[name]["min_s"] / args.steps
            row[name] = {"step_ms_min": round(1e3 * seconds, 3),
                         "step_ms_median": round(1e3 * timings[name]["median_s"] / args.steps, 3),
                         "tokens_per_second": round(batch_size * args.seq / seconds, 1),
                         "mfu": None if peak is None else round(model_flops / seconds / peak, 4),
                         "peak_bytes": work[name].peak_bytes}
        row["model_flops_per_step"] = model_flops
        row["generation_flops_over_model_flops"] = round(generation_flops / model_flops, 5)
        row["timings"] = summarise(timings)
        rows.append(row)
        print(f"batch {batch_size}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k.startswith("ratio_")),
              flush=True)

    write_result("qkvflow_step" if args.size == "cpu" else f"qkvflow_step_{args.size.replace('-', '_')}", {
        "size": args.size, "device_kind": device_kind, "compute_dtype": args.dtype, "parameter_dtype": "float32",
        "shape": {k: v for k, v in shape.items() if k != "attn_backend"}, "attention": args.attention,
        "vocab": args.vocab, "time_embed_dim": args.time_embed, "sinusoidal_dim": args.sinusoidal,
        "steps_per_sample": args.steps, "repeats": args.repeats,
        "params": {name: parameter_count(model) for name, model in models.items()},
        "model_flops_per_token_forward": flops_per_token,
        "diffeqformer_generation_flops_per_step": generation_flops,
        "generation_xla": generation_cost(models["diffeqformer"], policy),
        "peak_flops_per_second": peak,
        "baseline": "levanter Gpt2LMHeadModel, same width/depth/heads/seq/vocab, gradient checkpointing",
        "results": rows,
    }, env)
    return rows


if __name__ == "__main__":
    main()
