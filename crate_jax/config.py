"""The CRATE model config (spec crate.md §2 "Config"), registered as ``model: {type: crate}`` for
``common_jax.main.train_classifier``."""

from dataclasses import dataclass

from haliax import Axis

from common_jax.models import ImageClassifierConfig

POOLINGS = ("cls", "mean")


@ImageClassifierConfig.register_subclass("crate")
@dataclass(frozen=True)
class CrateConfig(ImageClassifierConfig):
    """CRATE (Yu et al. 2023) as the reference implementation builds it.

    ``head_dim`` defaults to ``hidden_dim // num_heads``; ``eta`` (ISTA step) and ``lam`` (sparsity weight) are
    static. ``patch_ln=false`` skips the LayerNorm over each flattened patch (spec §7.6: on 1-channel 2x2 or 4x4
    patches it erases absolute intensity). Defaults are CRATE-T at 224x224, patch 16, 1000 classes.
    """

    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    num_classes: int = 1000
    hidden_dim: int = 384
    num_heads: int = 6
    head_dim: int | None = None
    num_layers: int = 12
    eta: float = 0.1
    lam: float = 0.1
    patch_ln: bool = True
    pool: str = "cls"
    ln_eps: float = 1e-5
    gradient_checkpointing: bool = False

    def __post_init__(self):
        for name in ("image_size", "patch_size", "num_channels", "num_classes", "hidden_dim", "num_heads",
                     "num_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.head_dim is None and self.hidden_dim % self.num_heads:
            raise ValueError(f"model.num_heads ({self.num_heads}) must divide model.hidden_dim ({self.hidden_dim}) "
                             "unless model.head_dim is set")
        if self.head_dim is not None and self.head_dim <= 0:
            raise ValueError(f"model.head_dim must be positive, got {self.head_dim}")
        if self.image_size % self.patch_size:
            raise ValueError(f"model.patch_size ({self.patch_size}) must divide model.image_size ({self.image_size})")
        if self.pool not in POOLINGS:
            raise ValueError(f"model.pool must be one of {POOLINGS}, got {self.pool!r}")
        if self.eta < 0 or self.lam < 0:
            raise ValueError(f"model.eta and model.lam must be >= 0, got {self.eta}, {self.lam}")
        if self.ln_eps <= 0:
            raise ValueError(f"model.ln_eps must be positive, got {self.ln_eps}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def patch_dim(self) -> int:
        return self.patch_size * self.patch_size * self.num_channels

    Embed = property(lambda self: Axis("embed", self.hidden_dim))
    Atoms = property(lambda self: Axis("atoms", self.hidden_dim))  # the complete dictionary's atoms
    Heads = property(lambda self: Axis("heads", self.num_heads))
    HeadSize = property(lambda self: Axis("head_size", self.head_dim or self.hidden_dim // self.num_heads))
    Patch = property(lambda self: Axis("patch", self.patch_dim))
    Layers = property(lambda self: Axis("layers", self.num_layers))
    Classes = property(lambda self: Axis("classes", self.num_classes))
    Pos = property(lambda self: Axis("position", self.num_patches + 1))  # patches plus the cls token

    def expected_parameter_count(self) -> int:
        """Spec §2.1: ``2P + C + d(P+N+7+C) + L(3d^2+5d)`` (without the ``2P`` of the patch LN when it is off);
        with ``head_dim`` set, U and out hold ``d*K*p`` each instead of ``d^2``."""
        d, P, N, C, L = self.hidden_dim, self.patch_dim, self.num_patches, self.num_classes, self.num_layers
        inner = self.Heads.size * self.HeadSize.size
        per_layer = 2 * d * inner + d * d + 5 * d
        return (2 * P if self.patch_ln else 0) + C + d * (P + N + 7 + C) + L * per_layer

    def build(self, *, key):
        from .model import Crate

        return Crate.init(self, key=key)

