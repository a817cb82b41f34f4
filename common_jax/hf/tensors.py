"""One table per architecture maps checkpoint tensors onto a project model's leaves, in both directions.

A :class:`TensorSpec` names a checkpoint tensor, its shape, and the project leaf (a ``NamedArray``) it becomes;
``axes`` is the leaf's axis order whose row-major flattening equals the checkpoint layout, so most tensors move by a
reshape. ``permute`` reorders a checkpoint tensor first (a conv kernel ``(out, c, p1, p2)`` against the project's
``(p1 p2 c)`` patches) and ``part`` takes one of several equal row blocks (timm's fused ``qkv``). Every checkpoint
tensor is consumed exactly once; a missing, unexpected or mis-shaped tensor raises :class:`TensorMismatchError`
naming it.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

from .errors import TensorMismatchError

SHOWN = 8  # names listed in an error before "..."


@dataclass(frozen=True)
class TensorSpec:
    name: str  # checkpoint name; "{i}" stands for the layer index of a per-layer tensor
    shape: tuple[int, ...]  # its shape in the checkpoint
    where: Callable[[Any], NamedArray]  # model -> the leaf (stacked on "layers" when per_layer)
    axes: tuple[str, ...]  # leaf axes, in the order whose row-major flattening is the (permuted) checkpoint layout
    per_layer: bool = False
    permute: tuple[int, ...] | None = None  # checkpoint axes order before flattening into ``axes``
    part: tuple[int, int] = (0, 1)  # (k, n): the leaf is row block k of n equal blocks of the (permuted) tensor

    def names(self, num_layers: int) -> list[str]:
        return [self.name.format(i=i) for i in range(num_layers)] if self.per_layer else [self.name]


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" ... ({len(names)} in all)" if len(names) > SHOWN else "")


def expected_shapes(specs: Iterable[TensorSpec], num_layers: int) -> dict[str, tuple[int, ...]]:
    """``checkpoint name -> shape`` of every tensor the table consumes."""
    return {name: spec.shape for spec in specs for name in spec.names(num_layers)}


def check_tensors(shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]], *, source: str,
                  ignore: Sequence[str] = (), hint: str = "") -> list[str]:
    """The checkpoint names to read: those of ``shapes`` (``name -> shape`` of a checkpoint) not starting with a
    prefix in ``ignore``, after checking that they are exactly the ``expected`` names and shapes; otherwise
    :class:`TensorMismatchError` naming the missing, unexpected or mis-shaped tensors."""
    kept = [k for k in shapes if not any(k.startswith(p) for p in ignore)]
    missing = sorted(set(expected) - set(kept))
    if missing:
        raise TensorMismatchError(missing, f"{source} lacks tensor(s) {_listing(missing)}{hint}")
    extra = sorted(set(kept) - set(expected))
    if extra:
        raise TensorMismatchError(extra, f"{source} has unexpected tensor(s) {_listing(extra)}{hint}; pass "
                                  f"ignore=(prefix, ...) to load_pretrained to drop tensors on purpose")
    wrong = [k for k in sorted(expected) if tuple(shapes[k]) != tuple(expected[k])]
    if wrong:
        details = "; ".join(f"{k}: found {tuple(shapes[k])}, expected {tuple(expected[k])}" for k in wrong[:SHOWN])
        raise TensorMismatchError(wrong, f"{source} has mis-shaped tensor(s): {details}{hint}")
    return kept


def _order(spec: TensorSpec) -> tuple[str, ...]:
    return (("layers",) if spec.per_layer else ()) + spec.axes


def _permuted_shape(spec: TensorSpec) -> tuple[int, ...]:
    return spec.shape if spec.permute is None else tuple(spec.shape[p] for p in spec.permute)


def _block(spec: TensorSpec, value: np.ndarray) -> np.ndarray:
    """The leaf's part of one checkpoint tensor, permuted."""
    value = value if spec.permute is None else value.transpose(spec.permute)
    k, n = spec.part
    rows = value.shape[0] // n
    return value[k * rows:(k + 1) * rows]


def load_tensors(abstract_model, specs: Sequence[TensorSpec], state_dict: dict[str, np.ndarray],
                 num_layers: int):
    """``abstract_model`` (e.g. ``eqx.filter_eval_shape(config.build, key=...)``) with every leaf of ``specs``
    filled from ``state_dict`` (already checked by :func:`check_tensors`), in the leaf's dtype."""
    model = abstract_model
    for spec in specs:
        leaf = spec.where(model)
        blocks = [_block(spec, np.asarray(state_dict[name])) for name in spec.names(num_layers)]
        stacked = np.stack(blocks) if spec.per_layer else blocks[0]
        axes = tuple(leaf.resolve_axis(a) for a in _order(spec))
        value = jnp.asarray(stacked.reshape([a.size for a in axes]), dtype=leaf.dtype)
        model = eqx.tree_at(spec.where, model, hax.named(value, axes).rearrange(leaf.axes))
    unfilled = [jax.tree_util.keystr(path) for path, leaf in jax.tree_util.tree_leaves_with_path(model)
                if isinstance(leaf, jax.ShapeDtypeStruct)]
    if unfilled:
        raise RuntimeError(f"the tensor table leaves model leaves unset: {_listing(unfilled)}")
    return model


def export_tensors(model, specs: Sequence[TensorSpec], num_layers: int) -> dict[str, np.ndarray]:
    """The checkpoint tensors of ``model``: the inverse of :func:`load_tensors` (dtype kept)."""
    blocks: dict[str, list] = {}
    permutes: dict[str, tuple[int, ...] | None] = {}
    for spec in specs:
        value = np.asarray(spec.where(model).rearrange(_order(spec)).array)
        k, n = spec.part
        shape = _permuted_shape(spec)
        for i, name in enumerate(spec.names(num_layers)):
            layer = value[i] if spec.per_layer else value
            blocks.setdefault(name, [None] * n)[k] = layer.reshape(shape[0] // n, *shape[1:])
            permutes[name] = spec.permute
    joined = {name: np.concatenate(parts, axis=0) for name, parts in blocks.items()}
    return {name: value if permutes[name] is None else value.transpose(np.argsort(permutes[name]))
            for name, value in joined.items()}


def linear_specs(name: str, module: Callable, out: tuple[str, ...], in_: tuple[str, ...], shape: tuple[int, int], *,
                 per_layer: bool = False, part: tuple[int, int] = (0, 1)) -> list[TensorSpec]:
    """``name.weight`` ``(out, in)`` and ``name.bias`` ``(out,)`` of a torch ``nn.Linear`` as the ``weight`` and
    ``bias`` of the haliax ``Linear`` ``module(model)`` (axes ``out`` then ``in_``)."""
    return [TensorSpec(f"{name}.weight", shape, lambda m: module(m).weight, out + in_, per_layer, part=part),
            TensorSpec(f"{name}.bias", shape[:1], lambda m: module(m).bias, out, per_layer, part=part)]


def norm_specs(name: str, module: Callable, width: int, *, per_layer: bool = False) -> list[TensorSpec]:
    """``name.weight`` and ``name.bias`` ``(width,)`` of a torch ``nn.LayerNorm`` as the haliax ``LayerNorm``
    ``module(model)``."""
    return [TensorSpec(f"{name}.weight", (width,), lambda m: module(m).weight, ("embed",), per_layer),
            TensorSpec(f"{name}.bias", (width,), lambda m: module(m).bias, ("embed",), per_layer)]


def encoder_block_specs(config, block: Callable, names: dict[str, str], *, fused_qkv: bool = False) -> list[TensorSpec]:
    """The per-layer tensors of a stacked block with ``ln1``, ``attn`` (:class:`Attention`), ``ln2``, ``mlp``
    (:class:`Mlp`). ``names`` maps ``ln1 ln2 q k v o fc1 fc2`` (``qkv`` instead of ``q k v`` when ``fused_qkv``)
    to checkpoint module names containing ``{i}``. ``config`` is an :class:`EncoderShape`."""
    d, m = config.hidden_dim, config.mlp_dim
    heads = ("heads", "head_size")
    attn = lambda m_: block(m_).attn  # noqa: E731
    specs = norm_specs(names["ln1"], lambda m_: block(m_).ln1, d, per_layer=True)
    specs += norm_specs(names["ln2"], lambda m_: block(m_).ln2, d, per_layer=True)
    projections = {"q": lambda m_: attn(m_).q_proj, "k": lambda m_: attn(m_).k_proj, "v": lambda m_: attn(m_).v_proj}
    for k, (key, proj) in enumerate(projections.items()):
        if fused_qkv:
            specs += linear_specs(names["qkv"], proj, heads, ("embed",), (3 * d, d), per_layer=True, part=(k, 3))
        else:
            specs += linear_specs(names[key], proj, heads, ("embed",), (d, d), per_layer=True)
    specs += linear_specs(names["o"], lambda m_: attn(m_).o_proj, ("embed",), heads, (d, d), per_layer=True)
    specs += linear_specs(names["fc1"], lambda m_: block(m_).mlp.fc1, ("mlp",), ("embed",), (m, d), per_layer=True)
    specs += linear_specs(names["fc2"], lambda m_: block(m_).mlp.fc2, ("embed",), ("mlp",), (d, m), per_layer=True)
    return specs


def build_from_tensors(config, specs: Sequence[TensorSpec], state_dict: dict[str, np.ndarray], *, source: str,
                       ignore: Sequence[str] = (), hint: str = ""):
    """The model ``config.build`` describes, holding the checked tensors of ``state_dict``."""
    kept = check_tensors({k: v.shape for k, v in state_dict.items()}, expected_shapes(specs, config.num_layers),
                         source=source, ignore=ignore, hint=hint)
    abstract = eqx.filter_eval_shape(lambda: config.build(key=jax.random.PRNGKey(0)))
    return load_tensors(abstract, specs, {k: state_dict[k] for k in kept}, config.num_layers)
