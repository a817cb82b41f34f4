"""Layers and models shared by the paper packages."""

from .attention import Attention
from .mlp import Mlp
from .patch_embedding import PatchEmbedding, patchify
from .vit import ViT, ViTBlock, ViTConfig

__all__ = ["Attention", "Mlp", "PatchEmbedding", "ViT", "ViTBlock", "ViTConfig", "patchify"]
