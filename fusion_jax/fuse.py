"""Fusing N models into the anchor's architecture (spec fusion.md §10, §11): a pure function.

``fuse(models, anchor, config, data)`` aligns every other model to ``models[anchor]`` with its family's
flow graph and returns ``sum_i w_i A~_i + w_B B`` written into a copy of the anchor; ``w`` comes from
``config.alpha`` / ``config.weights`` (default ``1/N`` each), inside blocks too unless
``reference_alpha_quirk`` is set. ``vanilla_average`` is the no-alignment baseline.
"""

import types

import numpy as np

from common_jax.models import ViT

from .adapters import vit as vit_adapter
from .align import Aligner
from .config import FusionConfig
from .params import check_same_shapes, read_params, write_params


def adapter_for(model) -> types.ModuleType:
    """The family adapter of ``model`` (ViT, or the common_jax BERT MLM model)."""
    if isinstance(model, ViT):
        return vit_adapter
    from common_jax.models.bert import BertMlm

    if isinstance(model, BertMlm):
        from .adapters import bert

        return bert
    raise TypeError(f"no fusion adapter for {type(model).__name__}")


def probe_subset(data, num_samples: int, seed: int):
    """``num_samples`` inputs drawn without replacement with ``seed`` (all of them if there are fewer)."""
    if len(data) <= num_samples:
        return data
    index = np.sort(np.random.default_rng(seed).choice(len(data), num_samples, replace=False))
    return data[index]


def fuse(models: list, anchor: int, config: FusionConfig, data=None):
    """The fused model: the anchor's architecture with every model's aligned parameters averaged.

    ``data``: probe inputs for the activation cost (images ``[N, H, W, C]`` for a ViT, token ids
    ``[N, seq]`` for BERT), subsampled to ``config.acts.num_samples``; required when ``config.cost`` is
    ``acts`` or the residual policy is weighted.
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
    needs_data = config.cost == "acts" or config.resid_policy in ("weighted_scalar", "weighted_matrix")
    if needs_data and data is None:
        raise ValueError(f"fusion.cost {config.cost!r} / resid_policy {config.resid_policy!r} needs probe data")
    probe = probe_subset(data, config.acts.num_samples, config.acts.seed) if needs_data else None
    collect = lambda m: adapter.collect_taps(m, probe, config.acts.batch_size) if needs_data else None  # noqa: E731

    aligner = Aligner(config)
    params_b = read_params(base, adapter.tensor_specs(base))
    taps_b = collect(base)
    weights = config.model_weights(len(models), anchor)
    block_weights = config.block_weights(len(models), anchor)
    fused = {name: _weight(name, anchor, weights, block_weights, adapter) * value for name, value in params_b.items()}
    for i, model in enumerate(models):
        if i == anchor:
            continue
        params_a = read_params(model, adapter.tensor_specs(model))
        aligned = adapter.align(aligner, model, base, params_a, params_b, collect(model), taps_b)
        check_same_shapes(aligned, params_b, f"model {i} aligned to the anchor")
        for name in fused:
            fused[name] = fused[name] + _weight(name, i, weights, block_weights, adapter) * aligned[name]
    return write_params(base, adapter.tensor_specs(base), fused)


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
