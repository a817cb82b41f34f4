"""Import and export of the reference implementation's PyTorch state_dict (spec crate.md §3).

A state_dict (``name -> array``) holds ``12 + 8L`` tensors; every key is consumed exactly once and a missing,
extra or mis-shaped tensor raises an error naming it. K and the patch size cannot be inferred from the weights
(768 = 16*16*3 either way), so they come from the config; d, L, P, N+1 and C are checked against it.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np

from .config import CrateConfig
from .model import Crate

LAYER_PREFIX = "transformer.layers.{i}."


@dataclass(frozen=True)
class TensorSpec:
    """One torch tensor: its name (``{i}`` = layer index), torch shape, and where it lives in the port.

    ``axes`` is the port parameter's axis order whose row-major flattening equals the torch layout.
    """

    name: str
    shape: tuple[int, ...]
    where: Callable  # model -> NamedArray leaf (stacked on ``layers`` for per-layer tensors)
    axes: tuple[str, ...]
    per_layer: bool = False


def tensor_specs(config: CrateConfig, *, include_head: bool = True) -> list[TensorSpec]:
    """The reference's key layout (spec §3 table) for ``config``."""
    d, P, n, C = config.hidden_dim, config.patch_dim, config.Pos.size, config.num_classes
    inner = config.Heads.size * config.HeadSize.size
    specs = []
    if config.patch_ln:
        specs += [TensorSpec("to_patch_embedding.1.weight", (P,), lambda m: m.patch_ln.weight, ("patch",)),
                  TensorSpec("to_patch_embedding.1.bias", (P,), lambda m: m.patch_ln.bias, ("patch",))]
    specs += [
        TensorSpec("to_patch_embedding.2.weight", (d, P), lambda m: m.patch_proj.weight, ("embed", "patch")),
        TensorSpec("to_patch_embedding.2.bias", (d,), lambda m: m.patch_proj.bias, ("embed",)),
        TensorSpec("to_patch_embedding.3.weight", (d,), lambda m: m.embed_ln.weight, ("embed",)),
        TensorSpec("to_patch_embedding.3.bias", (d,), lambda m: m.embed_ln.bias, ("embed",)),
        TensorSpec("cls_token", (1, 1, d), lambda m: m.cls_token, ("embed",)),
        TensorSpec("pos_embedding", (1, n, d), lambda m: m.pos_embed, ("position", "embed")),
    ]
    layer = [
        ("0.norm.weight", (d,), lambda m: m.layers.stacked.ln1.weight, ("embed",)),
        ("0.norm.bias", (d,), lambda m: m.layers.stacked.ln1.bias, ("embed",)),
        # one matrix despite its name; rows are head-major: (heads, head_size)
        ("0.fn.qkv.weight", (inner, d), lambda m: m.layers.stacked.mssa.U.weight, ("heads", "head_size", "embed")),
        ("0.fn.to_out.0.weight", (d, inner), lambda m: m.layers.stacked.mssa.out.weight,
         ("embed", "heads", "head_size")),
        ("0.fn.to_out.0.bias", (d,), lambda m: m.layers.stacked.mssa.out.bias, ("embed",)),
        ("1.norm.weight", (d,), lambda m: m.layers.stacked.ln2.weight, ("embed",)),
        ("1.norm.bias", (d,), lambda m: m.layers.stacked.ln2.bias, ("embed",)),
        ("1.fn.weight", (d, d), lambda m: m.layers.stacked.ista.dictionary, ("embed", "atoms")),
    ]
    specs += [TensorSpec(LAYER_PREFIX + suffix, shape, where, axes, per_layer=True)
              for suffix, shape, where, axes in layer]
    if include_head:
        specs += [
            TensorSpec("mlp_head.0.weight", (d,), lambda m: m.head_ln.weight, ("embed",)),
            TensorSpec("mlp_head.0.bias", (d,), lambda m: m.head_ln.bias, ("embed",)),
            TensorSpec("mlp_head.1.weight", (C, d), lambda m: m.head.weight, ("classes", "embed")),
            TensorSpec("mlp_head.1.bias", (C,), lambda m: m.head.bias, ("classes",)),
        ]
    return specs


def strip_module_prefix(state_dict: dict) -> dict:
    """Drop the ``module.`` prefix that DataParallel/DistributedDataParallel training adds to every key."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def load_torch_state_dict(config: CrateConfig, state_dict: dict, *, drop_head: bool = False, key=None) -> Crate:
    """A :class:`Crate` holding the weights of a reference state_dict (``name -> numpy array``, f32).

    ``drop_head=True`` ignores ``mlp_head.*`` and keeps a freshly initialised head (fine-tuning on new classes).
    """
    state_dict = strip_module_prefix(state_dict)
    key = jax.random.PRNGKey(0) if key is None else key
    build = lambda key: config.build(key=key)  # noqa: E731
    model = eqx.filter_jit(build)(key) if drop_head else eqx.filter_eval_shape(build, key)
    if drop_head:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("mlp_head.")}
    specs = tensor_specs(config, include_head=not drop_head)
    expected = {s.name.format(i=i) for s in specs for i in (range(config.num_layers) if s.per_layer else [0])}
    missing, extra = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing:
        raise KeyError(f"state_dict lacks tensor(s) {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if extra:
        raise KeyError(f"state_dict has unexpected tensor(s) {extra[:8]}{' ...' if len(extra) > 8 else ''} "
                       f"(check model.num_layers, model.patch_ln and the checkpoint's architecture)")
    for spec in specs:
        names = [spec.name.format(i=i) for i in range(config.num_layers)] if spec.per_layer else [spec.name]
        arrays = []
        for name in names:
            value = np.asarray(state_dict[name], np.float32)
            if value.shape != spec.shape:
                raise ValueError(f"tensor {name} has shape {value.shape}, expected {spec.shape} for this config")
            arrays.append(value)
        leaf = spec.where(model)
        order = (("layers",) if spec.per_layer else ()) + spec.axes
        sizes = [leaf.resolve_axis(a).size for a in order]
        stacked = np.stack(arrays) if spec.per_layer else arrays[0]
        value = hax.named(jnp.asarray(stacked.reshape(sizes)), tuple(leaf.resolve_axis(a) for a in order))
        model = eqx.tree_at(spec.where, model, value.rearrange(leaf.axes))
    return model


def export_torch_state_dict(model: Crate) -> dict[str, np.ndarray]:
    """The reference's state_dict of ``model`` (``name -> numpy f32``): the inverse of :func:`load_torch_state_dict`."""
    out = {}
    for spec in tensor_specs(model.config):
        leaf = spec.where(model)
        order = (("layers",) if spec.per_layer else ()) + spec.axes
        value = np.array(leaf.rearrange(order).array, np.float32)  # a writable copy
        if spec.per_layer:
            for i in range(model.config.num_layers):
                out[spec.name.format(i=i)] = value[i].reshape(spec.shape)
        else:
            out[spec.name] = value.reshape(spec.shape)
    return out


def read_torch_checkpoint(path: str | Path, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """The state_dict in a ``.pth`` file, as ``name -> numpy f32``, ``module.`` prefix stripped.

    Accepts the reference's ImageNet container (``{"state_dict": ...}``), its fine-tuning container
    (``{"model": ...}``) or a raw state_dict. Loads with ``weights_only=True`` unless ``allow_pickle``.
    Needs the optional ``torch`` extra.
    """
    try:
        import torch
    except ImportError:
        raise ImportError("reading a .pth checkpoint needs PyTorch: pip install 'transformer-papers-jax[torch]' "
                          "(or pass a numpy state_dict to crate_jax.load_torch_state_dict)") from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
    blob = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        blob = blob["state_dict"]
    elif isinstance(blob, dict) and isinstance(blob.get("model"), dict):
        blob = blob["model"]
    if not isinstance(blob, dict) or not all(hasattr(v, "shape") for v in blob.values()):
        raise ValueError(f"{path} holds neither a state_dict nor a {{'state_dict'|'model': state_dict}} container")
    return strip_module_prefix({k: v.detach().to(torch.float32).cpu().numpy() for k, v in blob.items()})
