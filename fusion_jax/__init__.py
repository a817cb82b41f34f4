"""fusion_jax: Transformer Fusion with Optimal Transport (Imfeld et al., ICLR 2024) in JAX/Equinox.

``fuse_with_maps(models, anchor, config, data)`` aligns transformers with exact or Sinkhorn OT (POT) over the
transport-map flow graph, averages them, and returns the fused model with its transport maps and costs
(``FusionResult``); given maps, it applies them instead of solving. ``fuse`` returns the model only;
``vanilla_average(models)`` is the baseline.
"""

from .config import ActsConfig, EmdConfig, FusionConfig, SinkhornConfig, WtsConfig
from .fuse import FusionResult, fuse, fuse_with_maps, vanilla_average

__all__ = ["ActsConfig", "EmdConfig", "FusionConfig", "FusionResult", "SinkhornConfig", "WtsConfig", "fuse",
           "fuse_with_maps", "vanilla_average"]
