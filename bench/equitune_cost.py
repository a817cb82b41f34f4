"""Wall time of the efficient multi-group wrappers against product-group equitune, next to the pass ratio.

    python bench/equitune_cost.py [--batch 32] [--repeats 7] [--calls 3]

Cases (one process, jitted, inference mode, the same inputs for both):
- SCAN seq2seq (the reference's GRU BasicSeq2Seq, teacher-forced log-probs): product equitune over verb × rl × ud
  (8 passes) vs multi-equitune (2 + 2 + 2 = 6);
- common_jax ViT on one 28×28 image: equitune over D4 = rot90 × vflip (8) vs multi-equitune with the seeded template
  canonicaliser (4 + 2 = 6);
- two C4 views through a shared ViT encoder: product equitune of the two-view model (4·4 = 16 passes of the two-view
  model = 32 encoder calls) vs design 1 (4 + 4 = 8 encoder calls, no fusion net).
Each case is timed for the forward pass and for a parameter gradient (a fine-tuning step's work) with the shared
method (``timing.interleaved``: warm-up excluded, baseline and candidate alternated ``--repeats`` times, each unit
``--calls`` calls on a batch of ``--batch`` examples). Per case and mode: min and median seconds per example, the
ratio of the minima (efficient / product) and the theoretical pass ratio. Prints the JSON and writes
``bench/results/equitune_cost.json``.
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from timing import environment, interleaved, median_ratio, ratio, summarise, write_result

from common_jax.models.vit import ViTConfig
from equitune_jax import groups as G
from equitune_jax.data import scan as S
from equitune_jax.invariant_maps import TemplateCanonicalizer
from equitune_jax.models.named_adapter import RawImageModel
from equitune_jax.models.seq2seq_rnn import RnnSeq2Seq
from equitune_jax.models.view_cnn import ClassifierHead, MultiViewCNN, MultiViewDesign1
from equitune_jax.scan_symmetry import REFERENCE_REPRESENTATIVES, scan_factor, scan_invariant_maps, scan_product
from equitune_jax.wrappers import MultiInputEquivariant, equitune, multi_equitune


def _forward(model, inputs):
    return jax.vmap(lambda e: model(e))(inputs)


def _gradient(model, inputs):
    """A fine-tuning step's work: the gradient of a scalar of the outputs w.r.t. the parameters."""
    return eqx.filter_grad(lambda m: jnp.sum(jax.nn.log_softmax(_forward(m, inputs))[..., 0]))(model)


def compare(name, baseline, efficient, inputs, args, baseline_passes=None) -> dict:
    """Both modes of one case; ``baseline_passes`` overrides the baseline's count when the two count different
    units (encoder calls)."""
    base = baseline_passes or baseline.forward_passes
    row = {"case": name, "baseline_passes": base, "efficient_passes": efficient.forward_passes,
           "pass_ratio": efficient.forward_passes / base}
    examples = jax.tree.leaves(inputs)[0].shape[0]
    for mode, fn in (("forward", _forward), ("gradient", _gradient)):
        run = eqx.filter_jit(fn)

        def unit(model, run=run):
            def work():
                for _ in range(args.calls):
                    jax.block_until_ready(run(model, inputs))
            return work

        timings = interleaved({"product": unit(baseline), "efficient": unit(efficient)}, repeats=args.repeats)
        per_example = {k: v["min_s"] / (args.calls * examples) for k, v in timings.items()}
        row[mode] = {"product_s_per_example": per_example["product"],
                     "efficient_s_per_example": per_example["efficient"],
                     "time_ratio": ratio(timings, "efficient", "product"),
                     "time_ratio_median": median_ratio(timings, "efficient", "product"),
                     "timings": summarise(timings)}
        print(f"{name} {mode}: passes {row['efficient_passes']}/{base} = {row['pass_ratio']:.3f}, "
              f"time ratio {row[mode]['time_ratio']:.3f} (median {row[mode]['time_ratio_median']:.3f})", flush=True)
    return row


class _Encoder(eqx.Module):
    """A ViT as a per-view feature extractor (its logits as features)."""

    vit: RawImageModel

    def __call__(self, x, *, key=None):
        return self.vit(x, key=key)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    env = environment()
    key = jax.random.PRNGKey(0)
    results = []

    pairs = S.generate("scan_mini")
    enc = S.encode(pairs[:: len(pairs) // args.batch][: args.batch], *S.max_lengths(pairs))
    seq2seq = eqx.nn.inference_mode(RnnSeq2Seq(len(S.IN_VOCAB), len(S.OUT_VOCAB), 64, 64, 0.1, cell="gru",
                                               decoder="reference", key=key))
    factors = ("verb", "rl", "ud")
    results.append(compare(
        "scan_gru_verb_x_rl_x_ud", equitune(seq2seq, scan_product(factors), aggregate="log_softmax"),
        multi_equitune(seq2seq, [scan_factor(f) for f in factors],
                       scan_invariant_maps(factors, REFERENCE_REPRESENTATIVES), aggregate="log_softmax"),
        (jnp.asarray(enc.source), jnp.asarray(enc.prefix)), args))

    vit_config = ViTConfig(image_size=28, patch_size=7, num_channels=1, num_classes=10, hidden_dim=64, num_layers=4,
                           num_heads=4, mlp_dim=128, pool="mean")
    vit = eqx.nn.inference_mode(RawImageModel(vit_config.build(key=key)))
    images = jnp.asarray(np.random.default_rng(0).normal(size=(args.batch, 28, 28, 1)), jnp.float32)
    canon = TemplateCanonicalizer(G.d4("vflip"), (28, 28, 1), seed=0)
    results.append(compare(
        "vit_rot90_x_vflip", equitune(vit, G.d4("vflip"), aggregate="softmax"),
        multi_equitune(vit, [G.rot90(), G.vflip()], [canon, canon], aggregate="softmax", allow_noncommuting=True,
                       branch_weighting="flat"),
        images, args))

    views = (G.rot90(), G.rot90())
    head = ClassifierHead(20, 64, 10, key=key)
    product = equitune(MultiViewCNN(_Encoder(vit), head), G.per_input_product(*views), aggregate="logits")
    design1 = MultiViewDesign1(MultiInputEquivariant(_Encoder(vit), None, jnp.asarray(0.1), views), head)
    # design 1 counts encoder calls; each pass of the product's two-view model makes one per view
    results.append(compare("vit_two_c4_views", product, design1, (images, images[::-1]), args,
                           baseline_passes=product.forward_passes * len(views)))

    write_result("equitune_cost", {"batch": args.batch, "repeats": args.repeats, "calls_per_unit": args.calls,
                                   "baseline": "product-group equitune", "results": results}, env)


if __name__ == "__main__":
    main()
