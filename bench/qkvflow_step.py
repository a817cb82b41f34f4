"""DiffEqFormer train-step time as a ratio against levanter's GPT-2 at the same width, depth and sequence length.

    python bench/qkvflow_step.py [--hidden 128 --layers 4 --heads 4 --seq 128 --batches 4 32 --steps 10]

Both models train with the same jitted AdamW step on the same random byte-level batch. Weight generation
(W(t) = W0 + A e(t)) costs d * In * Out MACs per Euler step whatever the batch size, so the spec expects the
ratio to approach 1 as the batch grows: it is reported at each batch size given. Prints one JSON object with
seconds per step, tokens/s, the ratio and the peak memory XLA plans for the compiled step (device peak where
the backend reports one).
"""

import argparse
import json
import time

import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import Axis
from levanter.models.gpt2 import Gpt2Config
from levanter.models.lm_model import LmExample

from qkvflow_jax import DiffEqFormerConfig
from train_step_timing import time_train_step


def _lm_loss(model, batch: LmExample):
    return model.compute_next_token_loss(batch).scalar()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--time-embed", type=int, default=8)
    parser.add_argument("--sinusoidal", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=257)
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 32])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    Vocab = Axis("vocab", args.vocab)
    shape = dict(max_seq_len=args.seq, hidden_dim=args.hidden, num_layers=args.layers, num_heads=args.heads)
    ode = DiffEqFormerConfig(**shape, time_embed_dim=args.time_embed, sinusoidal_dim=args.sinusoidal,
                             embed_pdrop=0.0, resid_pdrop=0.0, gradient_checkpointing=True)
    gpt = Gpt2Config(**shape, gradient_checkpointing=True)
    rng = np.random.default_rng(0)
    results = []
    for batch_size in args.batches:
        tokens = hax.named(jnp.asarray(rng.integers(0, args.vocab, (batch_size, args.seq)), jnp.int32),
                           ("batch", "position"))
        batch = hax.vmap(LmExample.causal, "batch")(tokens)
        row = {"batch": batch_size}
        for name, config in (("diffeqformer", ode), ("gpt2", gpt)):
            model = config.build(Vocab, key=jax.random.PRNGKey(0))
            seconds, peak = time_train_step(_lm_loss, model, batch, args.steps)
            row[name] = {"seconds_per_step": seconds, "tokens_per_second": batch_size * args.seq / seconds,
                         "peak_bytes": peak}
        row["ratio_diffeqformer_over_gpt2"] = row["diffeqformer"]["seconds_per_step"] / row["gpt2"]["seconds_per_step"]
        results.append(row)
    print(json.dumps({"device": jax.devices()[0].device_kind, "shape": shape, "time_embed_dim": args.time_embed,
                      "sinusoidal_dim": args.sinusoidal, "results": results}, indent=2))


if __name__ == "__main__":
    main()
