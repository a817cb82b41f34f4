"""What the ViT and BERT adapters share: the stacked encoder block's tensors, tap layout and config checks."""

import jax.numpy as jnp
from haliax import NamedArray

from ..params import TensorSpec

E, HEADS, HS, MLP = "embed", "heads", "head_size", "mlp"
QKV = ("q_proj", "k_proj", "v_proj")


def block_tensor_specs(prefix: str, stacked) -> dict[str, TensorSpec]:
    """``{prefix}.{ln1,ln2,attn.*,mlp.*}`` of a ``Stacked`` block of ``Attention`` + ``Mlp`` + two LayerNorms
    (``stacked(model)`` returns the stacked block), in canonical ``[units, features]`` layout."""
    specs = {}
    for ln in ("ln1", "ln2"):
        for p in ("weight", "bias"):
            specs[f"{prefix}.{ln}.{p}"] = TensorSpec(lambda m, ln=ln, p=p: getattr(getattr(stacked(m), ln), p), (E,),
                                                     stacked=True)
    for proj in QKV:
        get = lambda m, proj=proj: getattr(stacked(m).attn, proj)  # noqa: E731
        specs[f"{prefix}.attn.{proj}.weight"] = TensorSpec(lambda m, g=get: g(m).weight, (HEADS, HS), (E,),
                                                           stacked=True)
        specs[f"{prefix}.attn.{proj}.bias"] = TensorSpec(lambda m, g=get: g(m).bias, (HEADS, HS), stacked=True)
    attn, mlp = (lambda m: stacked(m).attn), (lambda m: stacked(m).mlp)
    specs[f"{prefix}.attn.o_proj.weight"] = TensorSpec(lambda m: attn(m).o_proj.weight, (E,), (HEADS, HS),
                                                       stacked=True)
    specs[f"{prefix}.attn.o_proj.bias"] = TensorSpec(lambda m: attn(m).o_proj.bias, (E,), stacked=True)
    specs[f"{prefix}.mlp.fc1.weight"] = TensorSpec(lambda m: mlp(m).fc1.weight, (MLP,), (E,), stacked=True)
    specs[f"{prefix}.mlp.fc1.bias"] = TensorSpec(lambda m: mlp(m).fc1.bias, (MLP,), stacked=True)
    specs[f"{prefix}.mlp.fc2.weight"] = TensorSpec(lambda m: mlp(m).fc2.weight, (E,), (MLP,), stacked=True)
    specs[f"{prefix}.mlp.fc2.bias"] = TensorSpec(lambda m: mlp(m).fc2.bias, (E,), stacked=True)
    return specs


def check_equal_config(model, anchor, index: int, names: tuple[str, ...]) -> None:
    """Fusion keeps the anchor's config: each of ``names`` must agree (widths may not)."""
    for name in names:
        if getattr(model.config, name) != getattr(anchor.config, name):
            raise ValueError(f"model {index}: model.{name} is {getattr(model.config, name)!r} but the anchor's is "
                             f"{getattr(anchor.config, name)!r}; fusion needs them equal")


def tokens_by_units(t: NamedArray) -> jnp.ndarray:
    """A tap ``[batch..., position, units...]`` as ``[batch..., position, prod(units)]`` (heads-major)."""
    units = [a.name for a in t.axes if a.name in (E, HEADS, HS, MLP)]
    lead = [a.name for a in t.axes if a.name not in units and a.name != "position"]
    arranged = t.rearrange((*lead, "position", *units)).array
    return arranged.reshape(*arranged.shape[: len(lead) + 1], -1)
