"""What the fusion CLI fuses and how it scores the result: image classification (ViT) or masked LM (BERT)."""

from .base import FusionTaskConfig, LoadedTask
from .image import ImageTaskConfig
from .mlm import MlmTaskConfig

__all__ = ["FusionTaskConfig", "ImageTaskConfig", "LoadedTask", "MlmTaskConfig"]
