"""Training-time image augmentation in pure JAX, with explicit keys (jit- and vmap-friendly).

Images are ``[batch, height, width, channel]`` float arrays (already normalised). ``AugmentConfig`` bundles the
recipes the papers use: RandomResizedCrop + horizontal flip (ViT/CRATE ImageNet recipe), zero-padded random crops +
horizontal flip (the equitune multi-image recipe) and small wrap-around shifts (tiny CPU runs).
"""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from haliax import NamedArray


def random_resized_crop(key, images, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), method: str = "linear"):
    """torchvision's RandomResizedCrop to the input size, one crop per image: area fraction ~ U(scale),
    log aspect ratio ~ U(log ratio), position uniform; the crop is resized back to ``(height, width)``.

    Unlike torchvision's 10 rejection tries with a centre-crop fallback, an oversized crop is clipped to the
    image (one draw, no loop), which keeps the function jit-friendly.
    """
    batch, height, width, _ = images.shape
    k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
    area = jax.random.uniform(k_area, (batch,), minval=scale[0], maxval=scale[1]) * height * width
    log_r = jax.random.uniform(k_ratio, (batch,), minval=math.log(ratio[0]), maxval=math.log(ratio[1]))
    w = jnp.clip(jnp.sqrt(area * jnp.exp(log_r)), 1.0, width)
    h = jnp.clip(jnp.sqrt(area / jnp.exp(log_r)), 1.0, height)
    y0 = jax.random.uniform(k_y, (batch,)) * (height - h)
    x0 = jax.random.uniform(k_x, (batch,)) * (width - w)

    def crop(image, h, w, y0, x0):
        scale_yx = jnp.stack([height / h, width / w])
        translation = -jnp.stack([y0, x0]) * scale_yx
        return jax.image.scale_and_translate(image, image.shape, (0, 1), scale_yx, translation, method=method)

    return jax.vmap(crop)(images, h, w, y0, x0)


def random_crop(key, images, padding: int):
    """torchvision's ``RandomCrop(size, padding)``: zero-pad each side by ``padding``, then cut a uniformly placed
    window of the input size, one offset per image."""
    batch, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (batch, 2), 0, 2 * padding + 1)
    cut = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (height, width, channels))  # noqa: E731
    return jax.vmap(cut)(padded, offsets)


def horizontal_flip(key, images, probability: float = 0.5):
    """Mirror each image left-right with ``probability``."""
    flip = jax.random.bernoulli(key, probability, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1, :], images)


def random_shift(key, images, max_shift: int):
    """Roll each image by an integer offset in ``{-max_shift, ..., max_shift}`` per axis, wrapping around."""
    shifts = jax.random.randint(key, (images.shape[0], 2), -max_shift, max_shift + 1)
    return jax.vmap(lambda image, s: jnp.roll(image, (s[0], s[1]), axis=(0, 1)))(images, shifts)


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations training applies, in this order: crop, flip, shift. All off by default.

    The crop is either ``random_resized_crop`` or a zero-padded ``random_crop_padding`` crop, not both.
    """

    random_resized_crop: bool = False
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    random_crop_padding: int = 0
    horizontal_flip: bool = False
    max_shift: int = 0

    def __post_init__(self):
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"augment.crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"augment.crop_ratio must satisfy 0 < lo <= hi, got {self.crop_ratio}")
        if self.max_shift < 0:
            raise ValueError(f"augment.max_shift must be >= 0, got {self.max_shift}")
        if self.random_crop_padding < 0:
            raise ValueError(f"augment.random_crop_padding must be >= 0, got {self.random_crop_padding}")
        if self.random_crop_padding and self.random_resized_crop:
            raise ValueError("augment.random_crop_padding and augment.random_resized_crop are exclusive crops")

    @property
    def enabled(self) -> bool:
        return self.random_resized_crop or self.random_crop_padding > 0 or self.horizontal_flip or self.max_shift > 0

    def __call__(self, images: NamedArray, key) -> NamedArray:
        """Augment a batch ``[batch, height, width, channel]``; ``key=None`` (evaluation) returns it unchanged."""
        if key is None or not self.enabled:
            return images
        order = ("batch", "height", "width", "channel")
        x = self.apply(images.rearrange(order).array, key)
        return NamedArray(x, tuple(images.resolve_axis(name) for name in order)).rearrange(images.axes)

    def apply(self, x, key):
        """Augment a plain array batch ``[batch, height, width, channel]`` with ``key``."""
        k_crop, k_flip, k_shift = jax.random.split(key, 3)
        if self.random_resized_crop:
            x = random_resized_crop(k_crop, x, self.crop_scale, self.crop_ratio)
        if self.random_crop_padding > 0:
            x = random_crop(k_crop, x, self.random_crop_padding)
        if self.horizontal_flip:
            x = horizontal_flip(k_flip, x)
        if self.max_shift > 0:
            x = random_shift(k_shift, x, self.max_shift)
        return x
