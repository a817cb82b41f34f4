"""The pre-LN ``common_jax.models.ViT`` for fusion: tensors, activation taps and flow graph (spec §5-§8).

Flow graph (``T`` = map on an edge, ``join`` = ``fusion.resid_policy``); each OT problem's stable name (the
keys of ``FusionResult.maps`` / ``costs``) in quotes::

    "patch": (no input) -> T_patch     "pos": table columns -> T_pos     T = join(T_patch, T_pos)
    cls: S(T) (``cls_map: residual``) or its own 1-D sorting map "cls" (``cls_map: own``, the reference)
    per block l:  ln1 <- S(T);  "layer{l}.q", "layer{l}.k": T -> (not propagated; ``qk_fusion: eq_t_map`` or
                  ``joint``: one map "layer{l}.qk");  "layer{l}.v": T -> T_V;  "layer{l}.o": T_V -> T_O
                  T = join(T, T_O);  ln2 <- S(T);  "layer{l}.fc1": T -> T_f1;  "layer{l}.fc2": T_f1 -> T_f2
                  T = join(T, T_f2)
    ln_final <- S(T);  head: incoming alignment only

Taps (activation cost; tap name = map name): ``patch`` (patch-embedding output, no CLS, every patch),
``layer{l}.q/k/v`` (projections before the head split, flattened heads-major; the ``acts.seq_filter`` window),
``layer{l}.o`` (attention output before the residual add), ``layer{l}.fc1`` (pre-GELU), ``layer{l}.fc2`` (the
window; the CLS token only in the last block with ``last_block_cls_only`` and CLS pooling), and for the weighted
residual policies ``layer{l}.resid_in`` / ``layer{l}.resid_mid`` (block input / after the attention join, on the
tokens of that block's ``o`` tap, whose magnitudes they are compared with).
"""

import equinox as eqx
import haliax as hax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

from common_jax.models import ViT

from ..align import Aligner, TensorMover
from ..config import FusionConfig
from ..cost import token_filter
from ..joins import WEIGHTED_POLICIES, join
from ..params import TensorSpec
from ..taps import Keep, collect_in_batches, select_tokens
from .encoder_block import QKV, E, block_tensor_specs, check_equal_config, tokens_by_units

INPUT_AXES = ("batch", "height", "width", "channel")


def tensor_specs(model: ViT) -> dict[str, TensorSpec]:
    """The ViT's tensors in canonical ``[units, features]`` layout (see ``fusion_jax.params``); no ``head.*`` for
    a headless ViT (``num_classes: 0``, e.g. an imported HF ``ViTModel``)."""
    blocks = lambda m: m.blocks.stacked  # noqa: E731
    specs = {
        "patch_embed.proj.weight": TensorSpec(lambda m: m.patch_embed.proj.weight, (E,), ("patch",)),
        "patch_embed.proj.bias": TensorSpec(lambda m: m.patch_embed.proj.bias, (E,)),
        "cls_token": TensorSpec(lambda m: m.cls_token, (E,)),
        "pos_embed": TensorSpec(lambda m: m.pos_embed, (E,), ("position",)),
        "ln_final.weight": TensorSpec(lambda m: m.ln_final.weight, (E,)),
        "ln_final.bias": TensorSpec(lambda m: m.ln_final.bias, (E,)),
    }
    if model.head is not None:
        specs["head.weight"] = TensorSpec(lambda m: m.head.weight, ("classes",), (E,))
        specs["head.bias"] = TensorSpec(lambda m: m.head.bias, ("classes",))
    specs.update(block_tensor_specs("blocks", blocks))
    return specs


def check_compatible(model: ViT, anchor: ViT, index: int) -> None:
    """Fusion keeps the anchor's config; depth, patching, pooling, classes and the MLP activation must agree
    (widths may not)."""
    check_equal_config(model, anchor, index, ("num_layers", "patch_size", "image_size", "num_channels",
                                               "num_classes", "pool", "activation"))


def taps_needed(model: ViT, config: FusionConfig) -> Keep:
    """The taps ``config`` needs, with their kept tokens (module docstring): none for the weight cost with an
    unweighted residual policy."""
    c = model.config
    window = token_filter(config.acts.seq_filter, c.image_size // c.patch_size)
    window = None if window is None else tuple(int(i) for i in window)
    cls_only = (0,) if config.acts.last_block_cls_only and c.pool == "cls" else window
    acts, weighted = config.cost == "acts", config.resid_policy in WEIGHTED_POLICIES
    keep: Keep = {"patch": None} if acts or weighted else {}
    for layer in range(c.num_layers):
        p = f"layer{layer}."
        late = cls_only if layer == c.num_layers - 1 else window
        if acts:
            keep.update({p + "q": window, p + "k": window, p + "v": window, p + "fc1": late})
        if acts or weighted:
            keep.update({p + "o": late, p + "fc2": late})
        if weighted:
            keep.update({p + "resid_in": late, p + "resid_mid": late})
    return keep


@eqx.filter_jit
def forward_with_taps(model: ViT, images: NamedArray, keep: Keep) -> dict[str, jnp.ndarray]:
    """The taps ``keep`` names (module docstring) of ``model(images)`` in inference mode, each
    ``[batch, kept tokens, units]``."""
    model = eqx.nn.inference_mode(model)
    taps = {"patch": model.patch_embed(images)}
    x = model.embed(images)
    for layer, block in enumerate(model.blocks.unstacked()):
        p = f"layer{layer}."
        taps[p + "resid_in"] = x
        h = block.ln1(x)
        q, k, v = (getattr(block.attn, proj)(h) for proj in QKV)
        probs = block.attn.weights(h)
        o = block.attn.o_proj(hax.dot(probs, v.rename({"position": "key_position"}), axis="key_position"))
        x = x + o
        taps.update({p + "q": q, p + "k": k, p + "v": v, p + "o": o, p + "resid_mid": x})
        f1 = block.mlp.fc1(block.ln2(x))
        f2 = block.mlp.fc2(block.mlp.activation(f1))
        x = x + f2
        taps.update({p + "fc1": f1, p + "fc2": f2})
    return {name: select_tokens(tokens_by_units(taps[name]), tokens) for name, tokens in keep.items()}


def collect_taps(model: ViT, images: np.ndarray, keep: Keep, batch_size: int) -> dict[str, np.ndarray]:
    """:func:`forward_with_taps` over ``images [N, H, W, C]``; numpy ``{tap: [N, kept tokens, units]}``."""
    return collect_in_batches(forward_with_taps, model, images, INPUT_AXES, jnp.float32, keep, batch_size)


def is_block_tensor(name: str) -> bool:
    return name.startswith("blocks.")


def align(aligner: Aligner, model_a: ViT, model_b: ViT, pa: dict, pb: dict, taps_a: dict | None,
          taps_b: dict | None) -> dict[str, np.ndarray]:
    """Model A's tensors moved into the anchor B's basis and shapes (``pb``'s keys), following the graph above."""
    cfg = aligner.config
    move = TensorMover(aligner, pa, pb, taps_a, taps_b)
    out = move.out

    # embeddings (§8)
    tmap_patch = move.linear("patch_embed.proj", None, "patch")
    tmap_pos = move.table("pos", "pos_embed")
    pos_magnitude = np.abs(pb["pos_embed"]).mean(axis=1) if move.weighted else None
    tmap = join(cfg.resid_policy, tmap_patch, tmap_pos, move.magnitude("patch"), pos_magnitude)
    if cfg.cls_map == "own":
        cls_a, cls_b = pa["cls_token"][:, None], pb["cls_token"][:, None]
        tmap_cls = aligner.couple("cls", lambda: move.table_features(cls_a, cls_b), (len(cls_a), len(cls_b)))
    else:
        tmap_cls = tmap
    out["cls_token"] = aligner.rows(pa["cls_token"], tmap_cls)

    for layer in range(model_b.config.num_layers):
        t, m = f"blocks.{layer}.", f"layer{layer}."
        move.layer_norm(t + "ln1", tmap)
        move.qk(t + "attn", m, tmap)
        tmap_v = move.linear(t + "attn.v_proj", tmap, m + "v")
        tmap_o = move.linear(t + "attn.o_proj", tmap_v, m + "o")
        tmap = move.join(tmap, tmap_o, m + "resid_in", m + "o")
        move.layer_norm(t + "ln2", tmap)
        tmap_f1 = move.linear(t + "mlp.fc1", tmap, m + "fc1")
        tmap_f2 = move.linear(t + "mlp.fc2", tmap_f1, m + "fc2")
        tmap = move.join(tmap, tmap_f2, m + "resid_mid", m + "fc2")

    move.layer_norm("ln_final", tmap)
    if "head.weight" in pa:  # output layer: incoming alignment only (§2)
        out["head.weight"] = aligner.cols(pa["head.weight"], tmap)
        out["head.bias"] = pa["head.bias"]
    return out
