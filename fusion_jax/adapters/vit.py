"""The pre-LN ``common_jax.models.ViT`` for fusion: tensors, activation taps and flow graph (spec §5-§8).

Flow graph (``T`` = coupling on an edge, ``join`` = ``fusion.resid_policy``)::

    patch: (no input) -> T_patch        pos: columns -> T_pos        T = join(T_patch, T_pos)
    cls: S(T) (``cls_map: residual``) or its own 1-D sorting map (``cls_map: own``, the reference)
    per block:  ln1 <- S(T);  Q, K, V: T -> T_Q, T_K, T_V (``qk_fusion``);  O: T_V -> T_O
                T = join(T, T_O);  ln2 <- S(T);  fc1: T -> T_f1;  fc2: T_f1 -> T_f2;  T = join(T, T_f2)
    ln_final <- S(T);  head: incoming alignment only
"""

import equinox as eqx
import haliax as hax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

from common_jax.models import ViT

from ..align import Aligner, TensorMover, align_qk
from ..cost import token_filter
from ..joins import join
from ..params import TensorSpec
from .encoder_block import QKV, E, block_tensor_specs, check_equal_config, tokens_by_units


def tensor_specs(model: ViT) -> dict[str, TensorSpec]:
    """The ViT's tensors in canonical ``[units, features]`` layout (see ``fusion_jax.params``)."""
    blocks = lambda m: m.blocks.stacked  # noqa: E731
    specs = {
        "patch_embed.proj.weight": TensorSpec(lambda m: m.patch_embed.proj.weight, (E,), ("patch",)),
        "patch_embed.proj.bias": TensorSpec(lambda m: m.patch_embed.proj.bias, (E,)),
        "cls_token": TensorSpec(lambda m: m.cls_token, (E,)),
        "pos_embed": TensorSpec(lambda m: m.pos_embed, (E,), ("position",)),
        "ln_final.weight": TensorSpec(lambda m: m.ln_final.weight, (E,)),
        "ln_final.bias": TensorSpec(lambda m: m.ln_final.bias, (E,)),
        "head.weight": TensorSpec(lambda m: m.head.weight, ("classes",), (E,)),
        "head.bias": TensorSpec(lambda m: m.head.bias, ("classes",)),
    }
    specs.update(block_tensor_specs("blocks", blocks))
    return specs


def check_compatible(model: ViT, anchor: ViT, index: int) -> None:
    """Fusion keeps the anchor's config; depth, patching, pooling and classes must agree (widths may not)."""
    check_equal_config(model, anchor, index, ("num_layers", "patch_size", "image_size", "num_channels",
                                               "num_classes", "pool"))


@eqx.filter_jit
def forward_with_taps(model: ViT, images: NamedArray) -> tuple[NamedArray, dict[str, jnp.ndarray]]:
    """``model(images)`` in inference mode plus the fusion taps (§3.1), each ``[batch, tokens, units]``:

    ``patch`` (patch-embedding output, no CLS), and per block ``l``: ``{l}.resid_in`` (block input),
    ``{l}.q/k/v`` (projections before the head split, flattened heads-major), ``{l}.o`` (attention output
    before the residual add), ``{l}.resid_mid`` (after it), ``{l}.fc1`` (pre-GELU), ``{l}.fc2``.
    """
    model = eqx.nn.inference_mode(model)
    taps = {"patch": model.patch_embed(images)}
    x = model.embed(images)
    for layer, block in enumerate(model.blocks.unstacked()):
        taps[f"{layer}.resid_in"] = x
        h = block.ln1(x)
        q, k, v = (getattr(block.attn, p)(h) for p in QKV)
        probs = block.attn.weights(h)
        o = block.attn.o_proj(hax.dot(probs, v.rename({"position": "key_position"}), axis="key_position"))
        x = x + o
        taps.update({f"{layer}.q": q, f"{layer}.k": k, f"{layer}.v": v, f"{layer}.o": o, f"{layer}.resid_mid": x})
        h = block.ln2(x)
        f1 = block.mlp.fc1(h)
        f2 = block.mlp.fc2(block.mlp.activation(f1))
        x = x + f2
        taps.update({f"{layer}.fc1": f1, f"{layer}.fc2": f2})
    logits = model.head(model.pool(x))
    flat = {name: tokens_by_units(t) for name, t in taps.items()}
    return logits, flat


def collect_taps(model: ViT, images: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """:func:`forward_with_taps` over ``images [N, H, W, C]`` in batches; numpy ``[N, tokens, units]``."""
    axes = ("batch", "height", "width", "channel")
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        chunk = hax.named(jnp.asarray(images[start : start + batch_size], jnp.float32), axes)
        _, taps = forward_with_taps(model, chunk)
        for name, value in taps.items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(values) for name, values in parts.items()}


def is_block_tensor(name: str) -> bool:
    return name.startswith("blocks.")


def align(aligner: Aligner, model_a: ViT, model_b: ViT, pa: dict, pb: dict, taps_a: dict | None,
          taps_b: dict | None) -> dict[str, np.ndarray]:
    """Model A's tensors moved into the anchor B's basis and shapes (``pb``'s keys), following the graph above."""
    cfg = aligner.config
    n_layers = model_b.config.num_layers
    grid = model_b.config.image_size // model_b.config.patch_size
    window = token_filter(cfg.acts.seq_filter, grid)
    cls_only = np.array([0]) if cfg.acts.last_block_cls_only and model_b.config.pool == "cls" else window
    move = TensorMover(aligner, pa, pb, taps_a, taps_b)
    out = move.out

    # embeddings (§8)
    plan_patch = move.linear("patch_embed.proj", None, "patch")
    pos_a, pos_b = pa["pos_embed"], pb["pos_embed"]
    if pos_a.shape[1] != pos_b.shape[1]:
        raise ValueError(f"tensor pos_embed has {pos_a.shape[1]} positions but the anchor's has {pos_b.shape[1]}")
    plan_pos = aligner.couple(move.table(pos_a), move.table(pos_b))
    out["pos_embed"] = aligner.rows(pos_a, plan_pos)
    pos_magnitude = np.abs(pos_b).mean(axis=1) if move.weighted else None
    plan = join(cfg.resid_policy, plan_patch, plan_pos, move.magnitude("patch"), pos_magnitude)
    if cfg.cls_map == "own":
        cls_a, cls_b = pa["cls_token"][:, None], pb["cls_token"][:, None]
        plan_cls = aligner.couple(move.table(cls_a), move.table(cls_b))
    else:
        plan_cls = plan
    out["cls_token"] = aligner.rows(pa["cls_token"], plan_cls)

    for layer in range(n_layers):
        name = lambda group: f"blocks.{layer}.{group}"  # noqa: E731
        tokens = cls_only if layer == n_layers - 1 else window
        move.layer_norm(name("ln1"), plan)
        align_qk(aligner, pa, pb, taps_a, taps_b, f"blocks.{layer}.attn", f"{layer}.", plan, window, out)
        plan_v = move.linear(name("attn.v_proj"), plan, f"{layer}.v", window)
        plan_o = move.linear(name("attn.o_proj"), plan_v, f"{layer}.o", tokens)
        plan = move.join(plan, plan_o, f"{layer}.resid_in", f"{layer}.o")
        move.layer_norm(name("ln2"), plan)
        plan_f1 = move.linear(name("mlp.fc1"), plan, f"{layer}.fc1", tokens)
        plan_f2 = move.linear(name("mlp.fc2"), plan_f1, f"{layer}.fc2", tokens)
        plan = move.join(plan, plan_f2, f"{layer}.resid_mid", f"{layer}.fc2")

    move.layer_norm("ln_final", plan)
    out["head.weight"] = aligner.cols(pa["head.weight"], plan)  # output layer: incoming alignment only (§2)
    out["head.bias"] = pa["head.bias"]
    return out
