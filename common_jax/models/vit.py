"""Vision Transformer (Dosovitskiy et al. 2021), pre-LayerNorm, with haliax named axes.

``images [..., height, width, channel] -> logits [..., classes]``. The parameter axes (``embed``, ``heads``,
``mlp``, ``layers``) are the ones levanter's axis mappings shard. ``num_classes: 0`` builds a headless encoder
(as timm's ``num_classes=0``): the call returns the pooled, final-LayerNormed features ``[..., embed]``.
"""

from dataclasses import dataclass

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax
from haliax import Axis, NamedArray
from haliax.jax_utils import maybe_rng_split
from haliax.nn.scan import Stacked

from .attention import Attention
from .classifier_config import ImageClassifierConfig
from .encoder_shape import EncoderShape
from .mlp import Mlp, check_activation
from .patch_embedding import PatchEmbedding

POOLINGS = ("cls", "mean", "mean_patches")


@ImageClassifierConfig.register_subclass("vit")
@dataclass(frozen=True)
class ViTConfig(ImageClassifierConfig, EncoderShape):
    image_size: int = 28
    patch_size: int = 4
    num_channels: int = 1
    num_classes: int = 10  # 0: no head, the model returns its features
    hidden_dim: int = 64
    num_layers: int = 4
    num_heads: int = 4
    mlp_dim: int = 128
    dropout: float = 0.0
    pool: str = "cls"
    activation: str = "gelu_tanh"  # of the MLP: gelu (exact erf) | gelu_tanh | quick_gelu | relu
    layer_norm_eps: float = 1e-5
    init_std: float = 0.02  # of the cls token and position embeddings
    gradient_checkpointing: bool = False

    def __post_init__(self):
        self.check_encoder_shape(("image_size", "patch_size", "num_channels"))
        if self.num_classes < 0:
            raise ValueError(f"model.num_classes must be >= 0 (0: headless), got {self.num_classes}")
        if self.image_size % self.patch_size:
            raise ValueError(f"model.patch_size ({self.patch_size}) must divide model.image_size ({self.image_size})")
        if self.pool not in POOLINGS:
            raise ValueError(f"model.pool must be one of {POOLINGS}, got {self.pool!r}")
        check_activation("model.activation", self.activation)

    Channels = property(lambda self: Axis("channel", self.num_channels))
    Classes = property(lambda self: Axis("classes", self.num_classes))
    # patches plus the cls token
    Pos = property(lambda self: Axis("position", (self.image_size // self.patch_size) ** 2 + 1))

    def build(self, *, key) -> "ViT":
        return ViT.init(self, key=key)


class ViTBlock(eqx.Module):
    """``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``."""

    ln1: hnn.LayerNorm
    attn: Attention
    ln2: hnn.LayerNorm
    mlp: Mlp

    @staticmethod
    def init(config: ViTConfig, *, key) -> "ViTBlock":
        k_attn, k_mlp = maybe_rng_split(key, 2)
        return ViTBlock(
            hnn.LayerNorm.init(config.Embed, eps=config.layer_norm_eps),
            Attention.init(config.Embed, config.Heads, config.HeadSize, dropout=config.dropout, key=k_attn),
            hnn.LayerNorm.init(config.Embed, eps=config.layer_norm_eps),
            Mlp.init(config.Embed, config.Mlp, activation=config.activation, dropout=config.dropout, key=k_mlp),
        )

    def __call__(self, x: NamedArray, *, key=None) -> NamedArray:
        k_attn, k_mlp = maybe_rng_split(key, 2)
        x = x + self.attn(self.ln1(x), key=k_attn)
        return x + self.mlp(self.ln2(x), key=k_mlp)


class ViT(eqx.Module):
    config: ViTConfig = eqx.field(static=True)
    patch_embed: PatchEmbedding
    cls_token: NamedArray  # [embed]
    pos_embed: NamedArray  # [position, embed]
    embed_dropout: hnn.Dropout
    blocks: Stacked[ViTBlock]
    ln_final: hnn.LayerNorm
    head: hnn.Linear | None  # embed -> classes; None when num_classes is 0

    @staticmethod
    def init(config: ViTConfig, *, key) -> "ViT":
        k_patch, k_cls, k_pos, k_blocks, k_head = jax.random.split(key, 5)
        blocks = Stacked.init(config.Layers, ViTBlock, gradient_checkpointing=config.gradient_checkpointing)(
            config, key=jax.random.split(k_blocks, config.num_layers)
        )
        return ViT(
            config,
            PatchEmbedding.init(config.patch_size, config.Channels, config.Embed, key=k_patch),
            hax.random.normal(k_cls, config.Embed) * config.init_std,
            hax.random.normal(k_pos, (config.Pos, config.Embed)) * config.init_std,
            hnn.Dropout(config.dropout),
            blocks,
            hnn.LayerNorm.init(config.Embed, eps=config.layer_norm_eps),
            hnn.Linear.init(In=config.Embed, Out=config.Classes, key=k_head) if config.num_classes else None,
        )

    def embed(self, images: NamedArray, *, key=None) -> NamedArray:
        """Patch tokens with the cls token prepended and position embeddings added: ``[..., position, embed]``."""
        patches = self.patch_embed(images)
        batch = [ax for ax in patches.axes if ax.name not in ("position", "embed")]
        cls = hax.broadcast_to(self.cls_token, (*batch, Axis("position", 1), self.config.Embed))
        x = hax.concatenate("position", [cls, patches.rearrange((*batch, "position", "embed"))])
        return self.embed_dropout(x + self.pos_embed, key=key)

    def features(self, images: NamedArray, *, key=None) -> NamedArray:
        """The pooled, final-LayerNormed representation ``[..., embed]``."""
        k_embed, k_blocks = maybe_rng_split(key, 2)
        x = self.embed(images, key=k_embed)
        keys = maybe_rng_split(k_blocks, self.config.num_layers) if k_blocks is not None else None
        return self.pool(self.blocks.fold(x, key=keys))

    def pool(self, x: NamedArray) -> NamedArray:
        """``[..., position, embed]`` -> ``[..., embed]``: the configured pooling, then the final LayerNorm."""
        if self.config.pool == "cls":
            pooled = x["position", 0]
        elif self.config.pool == "mean":
            pooled = hax.mean(x, "position")
        else:  # timm's global average pool over the patch tokens, cls excluded (crate.md §2.2)
            pooled = hax.mean(x["position", 1:], "position")
        return self.ln_final(pooled)

    def __call__(self, images: NamedArray, *, key=None) -> NamedArray:
        """Logits ``[..., classes]``, or the features ``[..., embed]`` of a headless model."""
        features = self.features(images, key=key)
        return features if self.head is None else self.head(features)
