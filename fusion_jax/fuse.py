"""Fusing N models into the anchor's architecture (spec fusion.md §10, §11): pure functions.

``fuse_with_maps(models, anchor, config, data, maps=None)`` aligns every other model to ``models[anchor]`` with
its family's flow graph and returns the fused model ``sum_i w_i A~_i + w_B B`` (written into a copy of the anchor)
with the transport maps and cost matrices it used; ``w`` comes from ``config.alpha`` / ``config.weights``
(default ``1/N`` each), inside blocks too unless ``reference_alpha_quirk`` is set. ``fuse`` returns the model
only; ``vanilla_average`` is the no-alignment baseline.
"""

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from common_jax.models import ViT

from .adapters import vit as vit_adapter
from .align import Aligner
from .config import FusionConfig
from .params import check_same_shapes, read_params, write_params
from .probes import probe_indices

Maps = dict[int, dict[str, np.ndarray]]


@dataclass(frozen=True)
class FusionResult:
    """What a fusion computed.

    ``model``: the fused model (the anchor's architecture). ``maps[i][name]``: the transport map
    ``T~ = n_A T`` (float32 ``[n_model_i, n_anchor]``, row sums 1; a permutation matrix under exact OT with
    equal widths) that aligned model ``i`` to the anchor on OT problem ``name``, for every model ``i`` except
    the anchor; names as in the adapters' flow graphs (ViT: ``"patch"``, ``"pos"``, ``"cls"`` with
    ``cls_map: own``, ``"layer{l}.q"``, ``.k`` (or ``.qk``), ``.v``, ``.o``, ``.fc1``, ``.fc2``; BERT:
    ``"word"``, ``"position"``, ``"token_type"``, the same per-layer names, ``"transform"``). The maps of the
    residual stream are not stored: ``fusion.resid_policy`` derives them from these. ``costs[i][name]``: the
    max-normalised ground cost (float32, same shape) each map was solved on; empty when ``maps`` were given.
    """

    model: object
    maps: Maps
    costs: Maps


def adapter_for(model) -> types.ModuleType:
    """The family adapter of ``model`` (ViT, or the common_jax BERT MLM model)."""
    if isinstance(model, ViT):
        return vit_adapter
    from common_jax.models.bert import BertMlm

    if isinstance(model, BertMlm):
        from .adapters import bert

        return bert
    raise TypeError(f"no fusion adapter for {type(model).__name__}")


def probe_subset(data, config: FusionConfig):
    """The probe inputs: ``data`` itself if it has at most ``acts.num_samples`` items, else the items chosen by
    ``acts.sampling`` with ``acts.seed`` (``fusion_jax.probes``), ``data`` taken as the training set."""
    acts = config.acts
    if len(data) <= acts.num_samples:
        return data
    return data[probe_indices(len(data), acts.num_samples, acts.seed, acts.sampling)]


def fuse_with_maps(models: list, anchor: int, config: FusionConfig, data=None,
                   maps: Mapping[int, Mapping[str, np.ndarray]] | None = None) -> FusionResult:
    """Fuse ``models`` into ``models[anchor]``'s architecture; the fused model, maps and costs.

    ``data``: probe inputs for the activation cost (images ``[N, H, W, C]`` for a ViT, token ids ``[N, seq]``
    for BERT), subsampled to ``config.acts.num_samples`` by ``acts.sampling`` (:func:`probe_subset`); required
    when ``config.cost`` is ``acts`` or the residual policy is weighted. ``maps`` (as returned in
    :attr:`FusionResult.maps`): apply these instead of solving any OT problem; then ``data`` is needed only for
    a weighted residual policy, and re-applying a result's maps reproduces its model exactly.
    """
    if len(models) < 2:
        raise ValueError(f"fusion needs at least two models, got {len(models)}")
    if not 0 <= anchor < len(models):
        raise ValueError(f"models.anchor must index one of the {len(models)} models, got {anchor}")
    adapter = adapter_for(models[anchor])
    base = models[anchor]
    for i, model in enumerate(models):
        if adapter_for(model) is not adapter:
            raise ValueError(f"model {i} is a {type(model).__name__}, the anchor a {type(base).__name__}")
        adapter.check_compatible(model, base, i)
    aligned_models = [i for i in range(len(models)) if i != anchor]
    if maps is not None and sorted(maps) != aligned_models:
        raise ValueError(f"maps must hold one dict of maps for each model but the anchor, i.e. for models "
                         f"{aligned_models}; got {sorted(maps)}")
    # given maps need no cost: activations only for a weighted residual policy's magnitudes (as with cost: wts)
    keep = adapter.taps_needed(base, config if maps is None else dataclasses.replace(config, cost="wts"))
    if keep and data is None:
        raise ValueError(f"fusion.cost {config.cost!r} / resid_policy {config.resid_policy!r} needs probe data")
    probe = probe_subset(data, config) if keep else None

    def collect(model):
        return adapter.collect_taps(model, probe, keep, config.acts.batch_size) if keep else None

    params_b = read_params(base, adapter.tensor_specs(base))
    taps_b = collect(base)
    weights = config.model_weights(len(models), anchor)
    block_weights = config.block_weights(len(models), anchor)
    fused = {name: _weight(name, anchor, weights, block_weights, adapter) * value for name, value in params_b.items()}
    used_maps, costs = {}, {}
    for i in aligned_models:
        model = models[i]
        aligner = Aligner(config, None if maps is None else maps[i], f"OT maps, model {i} -> anchor {anchor}")
        params_a = read_params(model, adapter.tensor_specs(model))
        aligned = adapter.align(aligner, model, base, params_a, params_b, collect(model), taps_b)
        aligner.finish()
        check_same_shapes(aligned, params_b, f"model {i} aligned to the anchor")
        for name, value in fused.items():
            fused[name] = value + _weight(name, i, weights, block_weights, adapter) * aligned[name]
        used_maps[i], costs[i] = aligner.maps, aligner.costs
    return FusionResult(write_params(base, adapter.tensor_specs(base), fused), used_maps, costs)


def fuse(models: list, anchor: int, config: FusionConfig, data=None):
    """The fused model of :func:`fuse_with_maps` (maps solved, then discarded)."""
    return fuse_with_maps(models, anchor, config, data).model


def _weight(name: str, index: int, weights, block_weights, adapter) -> float:
    return (block_weights if adapter.is_block_tensor(name) else weights)[index]


def vanilla_average(models: list, weights: list[float] | None = None):
    """The plain parameter average of same-shaped models (no alignment), in a copy of ``models[0]``.

    Raises ``ValueError`` naming the first tensor whose shapes differ.
    """
    if len(models) < 2:
        raise ValueError(f"averaging needs at least two models, got {len(models)}")
    weights = [1.0 / len(models)] * len(models) if weights is None else [w / sum(weights) for w in weights]
    adapter = adapter_for(models[0])
    params = [read_params(m, adapter.tensor_specs(m)) for m in models]
    for i, p in enumerate(params[1:], start=1):
        check_same_shapes(p, params[0], f"model {i} vs model 0 (vanilla averaging needs equal shapes)")
    averaged = {name: sum(w * p[name] for w, p in zip(weights, params)) for name in params[0]}
    return write_params(models[0], adapter.tensor_specs(models[0]), averaged)
