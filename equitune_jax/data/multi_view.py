"""Multi-view tuples: N same-class images per tuple, labelled by class.

Two sources (``MultiViewConfig.data``):

- the embedded mnist10k (spec §9.1 on MNIST): N *different* same-class images drawn at random, train tuples from
  the 8,000 train images, test tuples from the 2,000 test images, deterministically from a seed;
- any HF image dataset (spec §6.1: Caltech101, 15Scene): one pool split, a seeded 80/20 image split
  (``random_state`` 1234 in the reference), then *consecutive* same-class images grouped into N-tuples, in the
  split's random order (the reference: ``train_test_split`` returns the items permuted) or in dataset order.

The "transformed" test applies an independent random element of G_i to view i of every tuple.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import equinox as eqx
import numpy as np
from haliax import Axis, NamedArray
from levanter.data import AsyncDataset

from common_jax.data.images import ImageDataConfig, load_mnist10k

from ..groups import Group


class MultiViewExample(eqx.Module):
    """``views`` float32 [view, height, width, channel], ``label`` int32 [], ``weight`` float32 []."""

    views: NamedArray
    label: NamedArray
    weight: NamedArray


def make_tuples(labels: np.ndarray, count: int, num_views: int, seed: int) -> np.ndarray:
    """[count, num_views] indices: each row holds ``num_views`` distinct images of one class."""
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    classes = rng.choice(sorted(by_class), size=count)
    return np.stack([rng.choice(by_class[c], size=num_views, replace=False) for c in classes])


def seeded_split(count: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of ``range(count)``, exactly sklearn's ``train_test_split(range(count),
    test_size=test_fraction, random_state=seed)`` (ceil(fraction·count) test items, RandomState permutation)."""
    n_test = math.ceil(test_fraction * count)
    perm = np.random.RandomState(seed).permutation(count)
    return perm[n_test:], perm[:n_test]


def consecutive_tuples(labels: np.ndarray, indices: np.ndarray, num_views: int, order: str = "dataset") -> np.ndarray:
    """[T, num_views] rows of consecutive same-class images: per class (ascending), the class's ``indices`` in
    dataset order (``order="dataset"``) or in the order ``indices`` lists them (``"split"``, the reference's) cut into
    N-tuples; a class's last fewer-than-N images are dropped."""
    rows = []
    for c in np.unique(labels[indices]):
        members = indices[labels[indices] == c]
        members = np.sort(members) if order == "dataset" else members
        rows.append(members[:len(members) // num_views * num_views].reshape(-1, num_views))
    return np.concatenate(rows) if rows else np.zeros((0, num_views), np.int64)


def transform_views(views: np.ndarray, groups: Sequence[Group], seed: int) -> np.ndarray:
    """An independent random element of ``groups[i]`` applied to view i of every tuple ([N, V, H, W, C])."""
    rng = np.random.default_rng(seed)
    out = views.copy()
    for i, group in enumerate(groups):
        picks = rng.integers(group.size, size=len(views))
        for e, g in enumerate(group.elements):
            sel = picks == e
            if sel.any():
                out[sel, i] = np.asarray(group.act_input(g, views[sel, i]))
    return out


class MultiViewDataset(AsyncDataset[MultiViewExample]):
    def __init__(self, views: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.views, self.labels = views.astype(np.float32), labels.astype(np.int32)
        self._axes = tuple(Axis(n, s) for n, s in zip(("view", "height", "width", "channel"), self.views.shape[1:]))

    async def async_len(self) -> int:
        return len(self.labels)

    def is_finite(self) -> bool:
        return True

    async def get_batch(self, indices):
        return [MultiViewExample(NamedArray(self.views[i], self._axes), NamedArray(self.labels[i], ()),
                                 NamedArray(np.float32(1.0), ())) for i in indices]


@dataclass(frozen=True)
class MultiViewSplits:
    train: MultiViewDataset
    test: MultiViewDataset
    test_transformed: MultiViewDataset
    train_index: np.ndarray  # [train tuples, N] image indices into the source
    test_index: np.ndarray  # [test tuples, N]


def load_multi_view(groups: Sequence[Group], seed: int, data: ImageDataConfig, *, train_tuples: int,
                    test_tuples: int, test_fraction: float, split_seed: int,
                    tuple_order: str = "dataset") -> MultiViewSplits:
    """Tuples of ``data`` scaled to [0, 1], then normalised by ``data.mean``/``data.std``.

    mnist10k: ``train_tuples``/``test_tuples`` random tuples from images[:8000]/[8000:] (seeds ``seed``,
    ``seed + 1``). HF: every image of ``data.train_split``, split by :func:`seeded_split` (``test_fraction``,
    ``split_seed``) and grouped by :func:`consecutive_tuples` in ``tuple_order``. The transformed test (``groups``)
    uses seed ``seed + 2``.
    """
    num_views = len(groups)
    if data.source == "mnist10k":
        images, labels = load_mnist10k()
        train_idx = make_tuples(labels[:8000], train_tuples, num_views, seed)
        test_idx = make_tuples(labels[8000:], test_tuples, num_views, seed + 1) + 8000
    else:
        source = data.hf_split(data.train_split)
        rows = [source[i] for i in range(len(source))]
        images, labels = np.stack([r[0] for r in rows]), np.asarray([r[1] for r in rows])
        train, test = seeded_split(len(labels), test_fraction, split_seed)
        train_idx, test_idx = (consecutive_tuples(labels, idx, num_views, tuple_order) for idx in (train, test))
        if not len(train_idx) or not len(test_idx):
            raise ValueError(f"data: {len(labels)} images give {len(train_idx)} train and {len(test_idx)} test "
                             f"tuples of {num_views} views; both must be non-empty")
    mean, std = np.asarray(data.mean, np.float32), np.asarray(data.std, np.float32)
    views = lambda idx: (images[idx].astype(np.float32) / 255.0 - mean) / std
    test_views = views(test_idx)
    return MultiViewSplits(
        MultiViewDataset(views(train_idx), labels[train_idx[:, 0]]),
        MultiViewDataset(test_views, labels[test_idx[:, 0]]),
        MultiViewDataset(transform_views(test_views, groups, seed + 2), labels[test_idx[:, 0]]),
        train_idx, test_idx,
    )
