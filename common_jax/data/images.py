"""Image classification data as levanter ``AsyncDataset``s of :class:`ImageExample`.

Sources: the embedded ``mnist10k`` (offline default, deterministic 8k/2k split), any HF ``datasets`` image
dataset by name or local folder (MNIST, CIFAR-10/100, ImageNet-1k, ...), and ``tfds`` data sources
(array_record, read without TensorFlow). Every source is random access, so a resumed run sees exactly the
examples it would have seen.
"""

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import equinox as eqx
import haliax as hax
import numpy as np
from PIL import Image
from haliax import Axis, NamedArray
from levanter.data import AsyncDataset

from ..launch import ConfigError
from .embedded import embedded_path

Height, Width, Channel = "height", "width", "channel"
IMAGE_SOURCES = ("mnist10k", "hf", "tfds")


class ImageExample(eqx.Module):
    """One labelled image (or, once levanter's loader has stacked examples, a batch with a leading ``batch`` axis).

    ``weight`` is 1 for real examples and 0 for the loader's padding examples.
    """

    image: NamedArray  # float32 [height, width, channel], normalised by the data config's mean/std
    label: NamedArray  # int32 []
    weight: NamedArray  # float32 []


class RandomAccessImages(Protocol):
    """Anything indexable that yields ``(uint8 image [H, W, C], int label)``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]: ...


@dataclass(frozen=True)
class ArrayImages:
    """In-memory ``images`` uint8 [N, H, W, C] and ``labels`` int [N]."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise ValueError(f"expected images [N, H, W, C] and labels [N], got {self.images.shape}, {self.labels.shape}")

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])


class ImageClassificationDataset(AsyncDataset[ImageExample]):
    """A finite dataset of normalised :class:`ImageExample` over a random-access image source."""

    def __init__(self, source: RandomAccessImages, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.source = source
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    async def async_len(self) -> int:
        return len(self.source)

    def is_finite(self) -> bool:
        return True

    async def get_batch(self, indices: Sequence[int]) -> Sequence[ImageExample]:
        return [self._example(i) for i in indices]

    def _example(self, index: int) -> ImageExample:
        image, label = self.source[int(index)]
        pixels = (np.asarray(image, np.float32) / 255.0 - self.mean) / self.std
        # NamedArray(...) directly: hax.named() costs ~0.3 ms per call, too slow for a per-example loader.
        return ImageExample(
            image=NamedArray(pixels, self._axes_for(pixels.shape)),
            label=NamedArray(np.asarray(label, np.int32), ()),
            weight=NamedArray(np.asarray(1.0, np.float32), ()),
        )

    @staticmethod
    def _axes_for(shape) -> tuple[Axis, Axis, Axis]:
        return tuple(Axis(name, size) for name, size in zip((Height, Width, Channel), shape))


class EpochShuffledDataset(AsyncDataset):
    """Infinite stream of epochs over a finite dataset, each epoch in its own seeded random order.

    Index ``i`` is example ``perm_e[i mod n]`` of epoch ``e = i // n``, so the stream is a pure function of
    ``(seed, i)``: resuming at any step reproduces the uninterrupted run.
    """

    def __init__(self, dataset: AsyncDataset, seed: int):
        super().__init__()
        self.dataset = dataset
        self.seed = seed
        self._perms: dict[int, np.ndarray] = {}

    async def async_len(self) -> int:
        raise ValueError("EpochShuffledDataset is infinite")

    def is_finite(self) -> bool:
        return False

    def _perm(self, epoch: int, n: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(n)}
        return self._perms[epoch]

    async def get_batch(self, indices: Sequence[int]) -> Sequence[Any]:
        n = await self.dataset.async_len()
        inner = [int(self._perm(i // n, n)[i % n]) for i in indices]
        return await self.dataset.get_batch(inner)


@dataclass(frozen=True)
class ImageSplits:
    train: ImageClassificationDataset
    test: ImageClassificationDataset
    image_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int


def load_mnist10k() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 embedded MNIST digits: uint8 images [10000, 28, 28, 1] and uint8 labels [10000]."""
    with np.load(embedded_path("mnist10k.npz")) as data:
        return data["images"][..., None], data["labels"]


class _HfImages:
    """Rows of an HF image dataset as uint8 ``[H, W, C]`` arrays.

    ``size`` alone resizes to a ``size x size`` square; with ``crop_from`` the shorter side is first resized to
    ``crop_from`` (aspect kept) and the centre ``size x size`` is cut out, torchvision's
    ``Resize(crop_from) + CenterCrop(size)`` evaluation transform.
    """

    def __init__(self, dataset, image_key: str, label_key: str, mode: str | None, size: int | None,
                 crop_from: int | None = None):
        self.dataset, self.image_key, self.label_key, self.mode = dataset, image_key, label_key, mode
        self.size, self.crop_from = size, crop_from

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        row = self.dataset[index]
        image = row[self.image_key]
        if hasattr(image, "convert"):  # PIL image
            if self.mode is not None:
                image = image.convert(self.mode)
            if self.crop_from is not None:
                image = resize_center_crop(image, self.crop_from, self.size)
            elif self.size is not None and image.size != (self.size, self.size):
                image = image.resize((self.size, self.size), Image.BILINEAR)
        image = np.asarray(image, np.uint8)
        return (image[..., None] if image.ndim == 2 else image), int(row[self.label_key])


def resize_center_crop(image: "Image.Image", shorter_side: int, size: int) -> "Image.Image":
    """Resize so the shorter side is ``shorter_side`` (bilinear, aspect kept), then cut the centre ``size x size``
    (torchvision's ``Resize(shorter_side)`` then ``CenterCrop(size)``, including its rounding)."""
    width, height = image.size
    if width <= height:
        new_w, new_h = shorter_side, int(shorter_side * height / width)
    else:
        new_w, new_h = int(shorter_side * width / height), shorter_side
    image = image.resize((new_w, new_h), Image.BILINEAR)
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


class _TfdsImages:
    def __init__(self, source, image_key: str, label_key: str):
        self.source, self.image_key, self.label_key = source, image_key, label_key

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        row = self.source[index]
        return np.asarray(row[self.image_key], np.uint8), int(row[self.label_key])


@dataclass(frozen=True)
class ImageDataConfig:
    """Where images come from.

    - ``source: mnist10k``: embedded MNIST, train = first 8,000, test = last 2,000 (offline default).
    - ``source: hf``: ``name`` is an HF dataset id (``ylecun/mnist``, ``uoft-cs/cifar10``, ``ILSVRC/imagenet-1k``)
      or a local folder of data files; ``image_key``/``label_key`` name the columns.
    - ``source: tfds``: ``name`` is a TFDS dataset (``mnist``, ``cifar10``), read with ``tfds.data_source``.
    """

    source: str = "mnist10k"
    name: str | None = None
    subset: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    image_key: str = "image"
    label_key: str = "label"
    image_mode: str | None = None  # PIL mode to convert HF images to, e.g. "RGB" or "L"
    image_size: int | None = None  # resize HF images to a square of this side
    test_resize: int | None = None  # test split only: shorter side to this, then centre-crop image_size (e.g. 256)
    data_dir: str | None = None  # tfds data_dir / HF cache_dir
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self):
        if self.source not in IMAGE_SOURCES:
            raise ValueError(f"data.source must be one of {IMAGE_SOURCES}, got {self.source!r}")
        if self.source != "mnist10k" and not self.name:
            raise ValueError(f"data.name is required when data.source is {self.source!r}")
        if self.test_resize is not None and (self.image_size is None or self.test_resize < self.image_size):
            raise ValueError(f"data.test_resize ({self.test_resize}) needs data.image_size <= it, got "
                             f"{self.image_size}")
        if len(self.mean) != len(self.std) or min(self.std) <= 0:
            raise ValueError(f"data.mean and data.std must have equal length and std > 0, got {self.mean}, {self.std}")

    def hf_split(self, split: str, crop_from: int | None = None) -> _HfImages:
        """One split of an HF dataset (``source: hf``) as random-access uint8 ``[H, W, C]`` images and int labels
        (``split`` may combine splits, e.g. ``train+test``)."""
        import datasets

        ds = datasets.load_dataset(self.name, self.subset, split=split, cache_dir=self.data_dir)
        return _HfImages(ds, self.image_key, self.label_key, self.image_mode, self.image_size, crop_from)

    def load(self) -> ImageSplits:
        if self.source == "mnist10k":
            images, labels = load_mnist10k()
            train, test = ArrayImages(images[:8000], labels[:8000]), ArrayImages(images[8000:], labels[8000:])
            num_classes = 10
        elif self.source == "hf":
            train, test = self.hf_split(self.train_split), self.hf_split(self.test_split, self.test_resize)
            num_classes = train.dataset.features[self.label_key].num_classes
        else:
            import tensorflow_datasets as tfds

            builder = tfds.builder(self.name, data_dir=self.data_dir)
            train = _TfdsImages(builder.as_data_source(split=self.train_split), self.image_key, self.label_key)
            test = _TfdsImages(builder.as_data_source(split=self.test_split), self.image_key, self.label_key)
            num_classes = builder.info.features[self.label_key].num_classes
        image_shape = tuple(np.asarray(train[0][0]).shape)
        if len(self.mean) not in (1, image_shape[-1]):
            raise ConfigError(f"data.mean has {len(self.mean)} entries but the images have {image_shape[-1]} channels")
        make = lambda src: ImageClassificationDataset(src, self.mean, self.std)  # noqa: E731
        return ImageSplits(make(train), make(test), image_shape, num_classes)
