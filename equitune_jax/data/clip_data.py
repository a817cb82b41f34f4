"""Images, prompts and test transforms of the CLIP zero-shot experiments (spec §6.4).

- Prompts: ``clip_prompts.json`` holds the reference's ImageNet (1,000 classes, 80 templates) and CIFAR-100 (100
  classes, 18 templates) class names and templates (provenance in the file).
- Images: the embedded mnist10k test digits (the CPU substitute), any HF image dataset (e.g. ``uoft-cs/cifar100``,
  split ``test``, columns ``img``/``fine_label``), or a local folder of the extracted ImageNetV2 matched-frequency
  tarball (``<class index>/<image>``, the layout ``imagenetv2_pytorch`` reads), always in a fixed order (the
  reference's loaders do not shuffle).
- Test transforms on ``[..., C, H, W]`` pixels, "flip" vertical (the reference's ``fliplr`` on [C, H, W] reverses H):
  the reference's *random* ones, ``flip`` ({id, flip}), ``rot90`` (C4) and ``rot90_flip`` (D4), drawn uniformly once
  per batch of ``draw_batch`` consecutive images (the reference: one draw per batch of 32) or per image; and *fixed*
  ones applying one element to every image, ``flip_fixed``, ``rot90_fixed``, ``rot90_flip_fixed`` (rot90 ∘ flip).
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import groups as G

PROMPTS_FILE = Path(__file__).resolve().parent / "clip_prompts.json"
PROMPT_SETS = ("imagenet", "cifar100")
# the groups on [..., C, H, W] pixels: the random test transforms, and the groups of equitune / equizero (``group``)
CLIP_GROUPS = {"flip": lambda: G.vflip(axes=(-2, -1)), "rot90": lambda: G.rot90(axes=(-2, -1)),
                     "rot90_flip": lambda: G.d4("vflip", axes=(-2, -1))}
FIXED_TRANSFORMS = {"none": (0, 0), "flip_fixed": (1, 0), "rot90_fixed": (0, 1), "rot90_flip_fixed": (1, 1)}
TRANSFORMS = (*FIXED_TRANSFORMS, *CLIP_GROUPS)
DRAWS = ("per_batch", "per_image")
SOURCES = ("mnist10k", "hf", "imagenetv2_folder")


def load_prompts(name: str) -> tuple[list[str], list[str]]:
    """(class names, templates) of the reference's ``imagenet`` or ``cifar100`` prompt set."""
    if name not in PROMPT_SETS:
        raise ValueError(f"prompt_set must be one of {PROMPT_SETS} (or give class_names and templates), got {name!r}")
    entry = json.loads(PROMPTS_FILE.read_text())[name]
    return list(entry["classes"]), list(entry["templates"])


def transform_pixels(pixels: np.ndarray, transform: str, draw: str, draw_batch: int, rng: np.random.Generator):
    """``pixels`` [N, C, H, W] under ``transform`` (module docstring); random transforms draw from ``rng``."""
    d4 = G.d4("vflip", axes=(-2, -1))
    if transform in FIXED_TRANSFORMS:
        return np.asarray(d4.act_input(FIXED_TRANSFORMS[transform], pixels))
    if transform not in CLIP_GROUPS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    if draw not in DRAWS:
        raise ValueError(f"transform_draw must be one of {DRAWS}, got {draw!r}")
    group = CLIP_GROUPS[transform]()
    if draw == "per_batch":
        picks = np.repeat(rng.integers(group.size, size=-(-len(pixels) // draw_batch)), draw_batch)[: len(pixels)]
    else:
        picks = rng.integers(group.size, size=len(pixels))
    out = pixels.copy()
    for index, g in enumerate(group.elements):
        chosen = picks == index
        if chosen.any():
            out[chosen] = np.asarray(group.act_input(g, pixels[chosen]))
    return out


@dataclass(frozen=True)
class ClipDataConfig:
    """Where the test images come from (module docstring). ``name`` is the HF id or the ImageNetV2 folder."""

    source: str = "mnist10k"  # mnist10k | hf | imagenetv2_folder
    name: str | None = None
    split: str = "test"
    image_key: str = "img"
    label_key: str = "fine_label"
    max_images: int | None = 2000

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {SOURCES}, got {self.source!r}")
        if self.source != "mnist10k" and not self.name:
            raise ValueError(f"data.name must name the HF dataset or the ImageNetV2 folder for source {self.source}")
        if self.max_images is not None and self.max_images <= 0:
            raise ValueError(f"data.max_images must be positive or null, got {self.max_images}")

    def images(self, chunk: int) -> Iterator[tuple[list, np.ndarray]]:
        """Chunks of (images: uint8 arrays [H, W, C] or PIL images, labels int32 [n]), in a fixed order."""
        if self.source == "mnist10k":
            from common_jax.data.images import load_mnist10k

            images, labels = load_mnist10k()
            images, labels = images[8000:][: self.max_images], labels[8000:][: self.max_images]
            for i in range(0, len(labels), chunk):
                yield list(images[i:i + chunk]), labels[i:i + chunk].astype(np.int32)
            return
        rows = self._hf_rows() if self.source == "hf" else self._imagenetv2_rows()
        batch_images, batch_labels = [], []
        for count, (image, label) in enumerate(rows):
            if self.max_images is not None and count >= self.max_images:
                break
            batch_images.append(image)
            batch_labels.append(label)
            if len(batch_labels) == chunk:
                yield batch_images, np.asarray(batch_labels, np.int32)
                batch_images, batch_labels = [], []
        if batch_labels:
            yield batch_images, np.asarray(batch_labels, np.int32)

    def _hf_rows(self):
        import datasets

        dataset = datasets.load_dataset(self.name, split=self.split)
        for column in (self.image_key, self.label_key):
            if column not in dataset.column_names:
                raise ValueError(f"data: {self.name} has no column {column!r} (columns: {dataset.column_names}); set "
                                 "data.image_key / data.label_key")
        for row in dataset:
            yield row[self.image_key], int(row[self.label_key])

    def _imagenetv2_rows(self):
        from PIL import Image

        root = Path(self.name)
        folders = sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)) \
            if root.is_dir() else []
        if not folders:
            raise ValueError(f"data.name {root} must be a folder of class folders named 0..999 (the extracted "
                             "imagenetv2-matched-frequency tarball)")
        for folder in folders:
            for file in sorted(folder.iterdir()):
                with Image.open(file) as image:
                    yield image.convert("RGB"), int(folder.name)
