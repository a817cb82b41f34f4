"""Wall time per example of product equitune vs the efficient multi-group wrappers, next to the pass ratio.

    python bench/equitune_cost.py [--batch 32] [--repeats 5]

Cases (all in this process, jitted, inference mode, after a warm-up call):
- SCAN GRU seq2seq (teacher-forced log-probs): equitune over verb×rl×ud (8 passes) vs multi-equitune (2+2+2);
- common_jax ViT on one 28×28 image: equitune over D4 = rot90×vflip (8) vs multi-equitune with the seeded
  template canonicaliser (4+2);
- two C4 views through a shared ViT encoder: product equitune (4·4 = 16 passes of the two-view model, i.e. 32
  encoder calls) vs design 1 (4+4 encoder calls, no fusion): 8/32 encoder calls.
Each case is timed for the forward pass and for a parameter gradient (a fine-tuning step's work). Prints one
JSON object: seconds per example per method, the measured time ratio and the theoretical pass ratio.
"""

import argparse
import json
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from common_jax.models.vit import ViTConfig
from equitune_jax import groups as G
from equitune_jax.data import scan as S
from equitune_jax.invariant_maps import TemplateCanonicalizer
from equitune_jax.models.named_adapter import RawImageModel
from equitune_jax.models.seq2seq_gru import GruSeq2Seq
from equitune_jax.models.view_cnn import ClassifierHead, MultiViewCNN, MultiViewDesign1
from equitune_jax.scan_symmetry import REFERENCE_REPRESENTATIVES, scan_factor, scan_invariant_maps, scan_product
from equitune_jax.wrappers import MultiInputEquivariant, equitune, multi_equitune


def _forward(model, inputs):
    return jax.vmap(lambda e: model(e))(inputs)


def _gradient(model, inputs):
    """A fine-tuning step's work: the gradient of a scalar of the outputs w.r.t. the parameters."""
    return eqx.filter_grad(lambda m: jnp.sum(jax.nn.log_softmax(_forward(m, inputs))[..., 0]))(model)


def seconds_per_example(model, inputs, repeats: int, mode: str) -> float:
    run = eqx.filter_jit(_forward if mode == "forward" else _gradient)
    jax.block_until_ready(run(model, inputs))  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(model, inputs))
        best = min(best, time.perf_counter() - start)
    return best / jax.tree.leaves(inputs)[0].shape[0]


def compare(name, baseline, efficient, inputs, repeats, baseline_passes=None):
    """``baseline_passes`` overrides the baseline's count when the two count different units."""
    base = baseline_passes or baseline.forward_passes
    row = {"case": name, "baseline_passes": base, "efficient_passes": efficient.forward_passes,
           "pass_ratio": efficient.forward_passes / base}
    for mode in ("forward", "gradient"):
        t_base = seconds_per_example(baseline, inputs, repeats, mode)
        t_eff = seconds_per_example(efficient, inputs, repeats, mode)
        row[mode] = {"baseline_s_per_example": t_base, "efficient_s_per_example": t_eff, "time_ratio": t_eff / t_base}
    return row


class _Encoder(eqx.Module):
    """A ViT as a per-view feature extractor (its logits as features)."""

    vit: RawImageModel

    def __call__(self, x, *, key=None):
        return self.vit(x, key=key)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    key = jax.random.PRNGKey(0)
    results = []

    pairs = S.generate("scan_mini")
    enc = S.encode(pairs[:: len(pairs) // args.batch][: args.batch], *S.max_lengths(pairs))
    seq2seq = GruSeq2Seq(len(S.IN_VOCAB), len(S.OUT_VOCAB), 64, 64, key=key)
    factors = ("verb", "rl", "ud")
    results.append(compare(
        "scan_gru_verb_x_rl_x_ud", equitune(seq2seq, scan_product(factors), aggregate="log_softmax"),
        multi_equitune(seq2seq, [scan_factor(f) for f in factors], scan_invariant_maps(factors, REFERENCE_REPRESENTATIVES),
                       aggregate="log_softmax"),
        (jnp.asarray(enc.source), jnp.asarray(enc.prefix)), args.repeats))

    vit_config = ViTConfig(image_size=28, patch_size=7, num_channels=1, num_classes=10, hidden_dim=64, num_layers=4,
                           num_heads=4, mlp_dim=128, pool="mean")
    vit = RawImageModel(vit_config.build(key=key))
    images = jnp.asarray(np.random.default_rng(0).normal(size=(args.batch, 28, 28, 1)), jnp.float32)
    canon = TemplateCanonicalizer(G.d4("vflip"), (28, 28, 1), seed=0)
    results.append(compare(
        "vit_rot90_x_vflip", equitune(vit, G.d4("vflip"), aggregate="softmax"),
        multi_equitune(vit, [G.rot90(), G.vflip()], [canon, canon], aggregate="softmax", allow_noncommuting=True),
        images, args.repeats))

    views = (G.rot90(), G.rot90())
    head = ClassifierHead(20, 64, 10, key=key)
    product = equitune(MultiViewCNN(_Encoder(vit), head), G.per_input_product(*views), aggregate="logits")
    design1 = MultiViewDesign1(MultiInputEquivariant(_Encoder(vit), None, jnp.asarray(0.1), views), head)
    # design 1 counts encoder calls; each pass of the product's two-view model makes one per view
    results.append(compare("vit_two_c4_views", product, design1, (images, images[::-1]), args.repeats,
                           baseline_passes=product.forward_passes * len(views)))

    print(json.dumps({"device": str(jax.devices()[0]), "batch": args.batch, "results": results}, indent=2))


if __name__ == "__main__":
    main()
