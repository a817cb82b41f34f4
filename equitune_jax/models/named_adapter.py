"""Adapters between the wrappers' raw arrays and haliax models (e.g. the ``common_jax`` ViT)."""

import equinox as eqx
import haliax as hax

from common_jax.data.images import Channel, Height, Width


class RawImageModel(eqx.Module):
    """``image [H, W, C] (raw array) -> logits [classes] (raw array)`` around a haliax image classifier."""

    model: eqx.Module

    def __call__(self, x, *, key=None):
        return self.model(hax.named(x, (Height, Width, Channel)), key=key).array
