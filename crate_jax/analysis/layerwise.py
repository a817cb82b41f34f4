"""Per-layer R^c and sparsity of a CRATE model over a batch of images (spec crate.md §4.1, §4.2).

R^c per image is the sum over heads of :func:`coding_rate` at the chosen measure point; reported as mean and
std over images (ddof=1, torch's default). The non-zero fraction ``||Z^{l+1}||_0 / (n d)`` of each ISTA output is
reported as mean and std over images (ddof=0, numpy's default).
"""

from dataclasses import asdict, dataclass

import equinox as eqx
import numpy as np

from .coding_rate import DEFAULT_EPS, per_head_coding_rate
from .sparsity import zero_fraction

# mssa_input: W^l = U^l LN1^l(Z^l), what the reference's script measures; caption: U^l LN1^l(Z^{l+1/2})
MEASURE_POINTS = ("mssa_input", "caption")


@dataclass(frozen=True)
class LayerStats:
    coding_rate_mean: float
    coding_rate_std: float
    coding_rate_per_head_mean: list[float]
    nonzero_fraction: float
    nonzero_fraction_std: float

    def as_dict(self) -> dict:
        return asdict(self)


@eqx.filter_jit
def _trace(model, images):
    return model.forward_with_intermediates(images)[1]


def measure_layers(model, images, *, measure_point: str = "mssa_input", eps: float = DEFAULT_EPS,
                   batch_size: int = 100) -> list[LayerStats]:
    """One :class:`LayerStats` per layer for ``images`` (a NamedArray ``[batch, height, width, channel]``)."""
    if measure_point not in MEASURE_POINTS:
        raise ValueError(f"measure_point must be one of {MEASURE_POINTS}, got {measure_point!r}")
    rates, zeros = [], []
    Batch = images.axes[0]
    for start in range(0, Batch.size, batch_size):
        trace = _trace(model, images[Batch.name, start:start + batch_size])
        projection = trace.projection if measure_point == "mssa_input" else trace.caption_projection
        rates.append(np.asarray(per_head_coding_rate(projection.rearrange(("layers", Batch.name, ...)), eps)))
        z = trace.z_next.rearrange(("layers", Batch.name, "position", "embed")).array
        zeros.append(np.asarray(zero_fraction(z)))
    return layer_stats(np.concatenate(rates, axis=1), 1.0 - np.concatenate(zeros, axis=1))


def layer_stats(per_head: np.ndarray, nonzero: np.ndarray) -> list[LayerStats]:
    """One :class:`LayerStats` per layer of per-image coding rates ``[layers, images, heads]`` (summed over heads)
    and non-zero fractions ``[layers, images]``."""
    total = per_head.sum(-1)
    ddof = 1 if total.shape[1] > 1 else 0
    return [
        LayerStats(float(total[layer].mean()), float(total[layer].std(ddof=ddof)),
                   [float(v) for v in per_head[layer].mean(0)], float(nonzero[layer].mean()),
                   float(nonzero[layer].std()))
        for layer in range(total.shape[0])
    ]
