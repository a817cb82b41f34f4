"""Layer-wise measurements of CRATE: the compression term R^c, sparsity, attention maps (spec crate.md §4)."""

from .coding_rate import coding_rate, coding_rate_gram, per_head_coding_rate
from .layerwise import MEASURE_POINTS, LayerStats, measure_layers
from .sparsity import zero_fraction

__all__ = ["MEASURE_POINTS", "LayerStats", "coding_rate", "coding_rate_gram", "measure_layers",
           "per_head_coding_rate", "zero_fraction"]
