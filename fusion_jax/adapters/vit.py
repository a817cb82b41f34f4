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

from ..align import Aligner, align_qk, mean_abs
from ..cost import token_filter
from ..joins import join
from ..params import TensorSpec

E, HEADS, HS, MLP = "embed", "heads", "head_size", "mlp"
QKV = ("q_proj", "k_proj", "v_proj")


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
    for ln in ("ln1", "ln2"):
        for p in ("weight", "bias"):
            specs[f"blocks.{ln}.{p}"] = TensorSpec(lambda m, ln=ln, p=p: getattr(getattr(blocks(m), ln), p), (E,),
                                                   stacked=True)
    for proj in QKV:
        get = lambda m, proj=proj: getattr(blocks(m).attn, proj)  # noqa: E731
        specs[f"blocks.attn.{proj}.weight"] = TensorSpec(lambda m, g=get: g(m).weight, (HEADS, HS), (E,), stacked=True)
        specs[f"blocks.attn.{proj}.bias"] = TensorSpec(lambda m, g=get: g(m).bias, (HEADS, HS), stacked=True)
    specs["blocks.attn.o_proj.weight"] = TensorSpec(lambda m: blocks(m).attn.o_proj.weight, (E,), (HEADS, HS),
                                                    stacked=True)
    specs["blocks.attn.o_proj.bias"] = TensorSpec(lambda m: blocks(m).attn.o_proj.bias, (E,), stacked=True)
    specs["blocks.mlp.fc1.weight"] = TensorSpec(lambda m: blocks(m).mlp.fc1.weight, (MLP,), (E,), stacked=True)
    specs["blocks.mlp.fc1.bias"] = TensorSpec(lambda m: blocks(m).mlp.fc1.bias, (MLP,), stacked=True)
    specs["blocks.mlp.fc2.weight"] = TensorSpec(lambda m: blocks(m).mlp.fc2.weight, (E,), (MLP,), stacked=True)
    specs["blocks.mlp.fc2.bias"] = TensorSpec(lambda m: blocks(m).mlp.fc2.bias, (E,), stacked=True)
    return specs


def check_compatible(model: ViT, anchor: ViT, index: int) -> None:
    """Fusion keeps the anchor's config; depth, patching, pooling and classes must agree (widths may not)."""
    for name in ("num_layers", "patch_size", "image_size", "num_channels", "num_classes", "pool"):
        if getattr(model.config, name) != getattr(anchor.config, name):
            raise ValueError(f"model {index}: model.{name} is {getattr(model.config, name)!r} but the anchor's is "
                             f"{getattr(anchor.config, name)!r}; fusion needs them equal")


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
    pooled = x["position", 0] if model.config.pool == "cls" else hax.mean(x, "position")
    logits = model.head(model.ln_final(pooled))
    flat = {name: _tokens_by_units(t) for name, t in taps.items()}
    return logits, flat


def _tokens_by_units(t: NamedArray) -> jnp.ndarray:
    units = [a.name for a in t.axes if a.name in (E, HEADS, HS, MLP)]
    lead = [a.name for a in t.axes if a.name not in units and a.name != "position"]
    arranged = t.rearrange((*lead, "position", *units)).array
    return arranged.reshape(*arranged.shape[: len(lead) + 1], -1)


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
    acts = cfg.cost == "acts"
    n_layers = model_b.config.num_layers
    grid = model_b.config.image_size // model_b.config.patch_size
    window = token_filter(cfg.acts.seq_filter, grid)
    cls_only = np.array([0]) if cfg.acts.last_block_cls_only and model_b.config.pool == "cls" else window
    weighted = cfg.resid_policy in ("weighted_scalar", "weighted_matrix")
    if weighted and taps_b is None:
        raise ValueError(f"fusion.resid_policy {cfg.resid_policy!r} needs activations of the anchor (pass data)")
    out: dict[str, np.ndarray] = {}

    def features(tap: str, weight_b: np.ndarray, tokens=None):
        """Cost inputs of one layer: its taps (acts) or its incoming-aligned weight rows (wts)."""
        if acts:
            return lambda _: (aligner.act_features(taps_a[tap], tokens), aligner.act_features(taps_b[tap], tokens))
        return lambda w_hat: (aligner.weight_features(w_hat), aligner.weight_features(weight_b))

    def magnitude(tap: str):
        return mean_abs(taps_b[tap]) if weighted else None

    def linear(name: str, plan_in, feats):
        w, b, plan = aligner.linear(pa[f"{name}.weight"], pa[f"{name}.bias"], plan_in, feats)
        out[f"{name}.weight"], out[f"{name}.bias"] = w, b
        return plan

    # embeddings (§8)
    plan_patch = linear("patch_embed.proj", None, features("patch", pb["patch_embed.proj.weight"]))
    pos_a, pos_b = pa["pos_embed"], pb["pos_embed"]
    if pos_a.shape[1] != pos_b.shape[1]:
        raise ValueError(f"tensor pos_embed has {pos_a.shape[1]} positions but the anchor's has {pos_b.shape[1]}")
    table = (lambda x: x) if acts else aligner.weight_features
    plan_pos = aligner.couple(table(pos_a), table(pos_b))
    out["pos_embed"] = aligner.rows(pos_a, plan_pos)
    pos_magnitude = np.abs(pos_b).mean(axis=1) if weighted else None
    plan = join(cfg.resid_policy, plan_patch, plan_pos, magnitude("patch"), pos_magnitude)
    if cfg.cls_map == "own":
        cls_a, cls_b = pa["cls_token"][:, None], pb["cls_token"][:, None]
        plan_cls = aligner.couple(table(cls_a), table(cls_b))
    else:
        plan_cls = plan
    out["cls_token"] = aligner.rows(pa["cls_token"], plan_cls)

    for layer in range(n_layers):
        name = lambda group: f"blocks.{layer}.{group}"  # noqa: E731
        last = layer == n_layers - 1
        for p in ("weight", "bias"):
            out[name(f"ln1.{p}")] = aligner.rows(pa[name(f"ln1.{p}")], plan)
        align_qk(aligner, pa, pb, taps_a, taps_b, f"blocks.{layer}.attn", f"{layer}.", plan, window, out)
        plan_v = linear(name("attn.v_proj"), plan, features(f"{layer}.v", pb[name("attn.v_proj.weight")], window))
        plan_o = linear(name("attn.o_proj"), plan_v,
                        features(f"{layer}.o", pb[name("attn.o_proj.weight")], cls_only if last else window))
        plan = join(cfg.resid_policy, plan, plan_o, magnitude(f"{layer}.resid_in"), magnitude(f"{layer}.o"))
        for p in ("weight", "bias"):
            out[name(f"ln2.{p}")] = aligner.rows(pa[name(f"ln2.{p}")], plan)
        tokens = cls_only if last else window
        plan_f1 = linear(name("mlp.fc1"), plan, features(f"{layer}.fc1", pb[name("mlp.fc1.weight")], tokens))
        plan_f2 = linear(name("mlp.fc2"), plan_f1, features(f"{layer}.fc2", pb[name("mlp.fc2.weight")], tokens))
        plan = join(cfg.resid_policy, plan, plan_f2, magnitude(f"{layer}.resid_mid"), magnitude(f"{layer}.fc2"))

    for p in ("weight", "bias"):
        out[f"ln_final.{p}"] = aligner.rows(pa[f"ln_final.{p}"], plan)
    out["head.weight"] = aligner.cols(pa["head.weight"], plan)  # output layer: incoming alignment only (§2)
    out["head.bias"] = pa["head.bias"]
    return out
