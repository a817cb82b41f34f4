"""Layers and models shared by the paper packages."""

from .attention import Attention
from .classifier_config import ImageClassifierConfig
from .mlp import Mlp
from .patch_embedding import PatchEmbedding, patchify
from .vit import ViT, ViTBlock, ViTConfig

__all__ = ["Attention", "ImageClassifierConfig", "Mlp", "PatchEmbedding", "ViT", "ViTBlock", "ViTConfig", "patchify"]
