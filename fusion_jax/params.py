"""Model parameters as a flat dict of float64 matrices in the fusion's canonical layout, and back.

Fusion works on numpy ``[units, features]`` matrices (spec fusion.md §2: weights are out x in): a Linear's
weight is ``[prod(Out), prod(In)]`` (Q/K/V outputs flattened heads-major over ``(heads, head_size)``), a
bias, LayerNorm parameter or CLS token is ``[units]``, an embedding table is ``[embed, rows]`` (the hidden
dimension is the neuron axis, positions/vocabulary the features, §8). ``Stacked`` layers are unstacked into
one entry per layer (``"blocks.3.attn.q_proj.weight"``) and restacked on write-back.
"""

from dataclasses import dataclass
from typing import Callable

import equinox as eqx
import haliax as hax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

LAYERS = "layers"


@dataclass(frozen=True)
class TensorSpec:
    """Where one parameter lives in the module and how its axes map to ``[rows, cols]``."""

    get: Callable[[eqx.Module], NamedArray]
    rows: tuple[str, ...]  # axis names flattened (in order) into the unit axis
    cols: tuple[str, ...] = ()  # axis names flattened into the feature axis (empty: a vector)
    stacked: bool = False  # has a leading ``layers`` axis


def entry_name(group: str, layer: int | None) -> str:
    """``"blocks.attn.q_proj.weight"``, layer 3 -> ``"blocks.3.attn.q_proj.weight"``."""
    if layer is None:
        return group
    prefix, _, rest = group.partition(".")
    return f"{prefix}.{layer}.{rest}"


def read_params(model: eqx.Module, specs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    """``{entry name: float64 matrix}`` for every tensor in ``specs`` (one entry per layer if stacked)."""
    params = {}
    for group, spec in specs.items():
        array = spec.get(model)
        if spec.stacked:
            for layer in range(array.resolve_axis(LAYERS).size):
                params[entry_name(group, layer)] = _to_matrix(array[LAYERS, layer], spec)
        else:
            params[group] = _to_matrix(array, spec)
    return params


def _to_matrix(array: NamedArray, spec: TensorSpec) -> np.ndarray:
    arranged = array.rearrange((*spec.rows, *spec.cols))
    rows = int(np.prod([array.resolve_axis(n).size for n in spec.rows]))
    shape = (rows,) if not spec.cols else (rows, -1)
    return np.asarray(arranged.array, np.float64).reshape(shape)


def write_params(anchor: eqx.Module, specs: dict[str, TensorSpec], params: dict[str, np.ndarray]) -> eqx.Module:
    """A copy of ``anchor`` with every tensor of ``specs`` replaced by ``params`` (cast to the anchor's dtype).

    Raises ``ValueError`` naming the tensor whose matrix does not have the anchor's shape.
    """
    getters, values = [], []
    for group, spec in specs.items():
        original = spec.get(anchor)
        if spec.stacked:
            layers = original.resolve_axis(LAYERS).size
            parts = [_from_matrix(original[LAYERS, i], spec, params, entry_name(group, i)) for i in range(layers)]
            new = hax.stack(original.resolve_axis(LAYERS), parts).rearrange(original.axes)
        else:
            new = _from_matrix(original, spec, params, group)
        getters.append(spec.get)
        values.append(new)
    return eqx.tree_at(lambda m: [g(m) for g in getters], anchor, values)


def _from_matrix(original: NamedArray, spec: TensorSpec, params: dict[str, np.ndarray], name: str) -> NamedArray:
    if name not in params:
        raise ValueError(f"no fused value for tensor {name}")
    arranged = original.rearrange((*spec.rows, *spec.cols))
    matrix = np.asarray(params[name])
    rows = int(np.prod([original.resolve_axis(n).size for n in spec.rows]))
    cols = int(np.prod([original.resolve_axis(n).size for n in spec.cols]))
    expected = (rows, cols) if spec.cols else (rows,)
    if matrix.shape != expected:
        raise ValueError(f"tensor {name} has shape {matrix.shape} but the anchor's is {expected}")
    values = jnp.asarray(matrix.reshape(arranged.array.shape), dtype=original.dtype)
    return hax.named(values, arranged.axes).rearrange(original.axes)


def check_same_shapes(params_a: dict[str, np.ndarray], params_b: dict[str, np.ndarray], what: str) -> None:
    """ValueError naming the first tensor that is missing or shaped differently in ``params_a`` vs ``params_b``."""
    for name, value in params_b.items():
        if name not in params_a:
            raise ValueError(f"{what}: tensor {name} is missing")
        if params_a[name].shape != value.shape:
            raise ValueError(f"{what}: tensor {name} has shape {params_a[name].shape}, expected {value.shape}")
