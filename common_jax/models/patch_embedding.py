"""ViT patch embedding: cut an image into non-overlapping p x p patches and project each to ``embed``."""

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
from haliax import Axis, NamedArray

Height, Width, Channel, Pos = "height", "width", "channel", "position"


def patchify(images: NamedArray, patch_size: int) -> NamedArray:
    """``[..., height, width, channel] -> [..., position, patch]``.

    Patches are numbered row-major; each patch is flattened in ``(p1, p2, channel)`` order, i.e. einops'
    ``b (h p1) (w p2) c -> b (h w) (p1 p2 c)`` (the layout of vit-pytorch and CRATE's reference).
    """
    H, W = images.resolve_axis(Height), images.resolve_axis(Width)
    if H.size % patch_size or W.size % patch_size:
        raise ValueError(f"image of {H.size}x{W.size} is not divisible into {patch_size}x{patch_size} patches")
    x = hax.unflatten_axis(images, Height, (Axis("patch_row", H.size // patch_size), Axis("p1", patch_size)))
    x = hax.unflatten_axis(x, Width, (Axis("patch_col", W.size // patch_size), Axis("p2", patch_size)))
    batch = [ax for ax in x.axes if ax.name not in ("patch_row", "p1", "patch_col", "p2", Channel)]
    x = x.rearrange((*batch, "patch_row", "patch_col", "p1", "p2", Channel))
    x = hax.flatten_axes(x, ("patch_row", "patch_col"), Pos)
    return hax.flatten_axes(x, ("p1", "p2", Channel), "patch")


class PatchEmbedding(eqx.Module):
    """``[..., height, width, channel] -> [..., position, embed]`` by :func:`patchify` then a linear map."""

    proj: hnn.Linear  # patch -> embed
    patch_size: int = eqx.field(static=True)

    @staticmethod
    def init(patch_size: int, Channels: Axis, Embed: Axis, *, key) -> "PatchEmbedding":
        Patch = Axis("patch", patch_size * patch_size * Channels.size)
        return PatchEmbedding(hnn.Linear.init(In=Patch, Out=Embed, key=key), patch_size)

    def __call__(self, images: NamedArray) -> NamedArray:
        return self.proj(patchify(images, self.patch_size))
