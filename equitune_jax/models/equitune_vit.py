"""An equituned ``common_jax`` ViT registered as ``model: {type: equitune_vit}`` for
``common_jax.main.train_classifier`` (run it through ``equitune_jax.main.train_classifier``, which registers it).

``images [..., height, width, channel] -> logits [..., classes]``: every image's orbit under ``group`` goes
through the ViT in one vmapped call and the logits are averaged (exactly invariant), |G| passes per image.
"""

from dataclasses import dataclass

import equinox as eqx
import haliax as hax
import jax
from haliax import Axis, NamedArray

from common_jax.models.classifier_config import ImageClassifierConfig
from common_jax.models.vit import ViT, ViTConfig

from .. import groups as G
from ..wrappers import Equitune
from .named_adapter import RawImageModel

VIT_GROUPS = {"rot90": G.rot90, "hflip": G.hflip, "vflip": G.vflip, "d4": G.d4}


class EquituneImageClassifier(eqx.Module):
    equitune: Equitune

    @property
    def forward_passes(self) -> int:
        return self.equitune.forward_passes

    def __call__(self, images: NamedArray, *, key=None) -> NamedArray:
        raw = images.array
        lead, image_shape = raw.shape[:-3], raw.shape[-3:]
        flat = raw.reshape((-1, *image_shape))
        if key is None:
            logits = jax.vmap(lambda x: self.equitune(x))(flat)
        else:
            logits = jax.vmap(lambda x, k: self.equitune(x, key=k))(flat, jax.random.split(key, flat.shape[0]))
        classes = Axis("classes", logits.shape[-1])
        return hax.named(logits.reshape((*lead, classes.size)), (*images.axes[:-3], classes))


@ImageClassifierConfig.register_subclass("equitune_vit")
@dataclass(frozen=True)
class EquituneViTConfig(ViTConfig):
    """The ViT fields plus ``group`` (rot90 | hflip | vflip | d4) and ``aggregate`` (logits | softmax |
    log_softmax) of the orbit average."""

    group: str = "rot90"
    aggregate: str = "logits"

    def __post_init__(self):
        super().__post_init__()
        if self.group not in VIT_GROUPS:
            raise ValueError(f"model.group must be one of {tuple(VIT_GROUPS)}, got {self.group!r}")
        if self.aggregate not in ("logits", "softmax", "log_softmax"):
            raise ValueError(f"model.aggregate must be logits, softmax or log_softmax, got {self.aggregate!r}")

    def build(self, *, key) -> EquituneImageClassifier:
        vit = RawImageModel(ViT.init(self, key=key))
        return EquituneImageClassifier(Equitune(vit, VIT_GROUPS[self.group](), self.aggregate))
