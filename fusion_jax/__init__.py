"""fusion_jax: Transformer Fusion with Optimal Transport (Imfeld et al., ICLR 2024) in JAX/Equinox.

``fuse(models, anchor, config, data)`` aligns transformers with exact or Sinkhorn OT over the
transport-map flow graph and averages them; ``vanilla_average(models)`` is the baseline.
"""

from .config import ActsConfig, FusionConfig, SinkhornConfig, WtsConfig
from .fuse import fuse, vanilla_average

__all__ = ["ActsConfig", "FusionConfig", "SinkhornConfig", "WtsConfig", "fuse", "vanilla_average"]
