"""Multi-view tuples from the embedded mnist10k (spec §9.1 on MNIST): N different same-class images per tuple.

Train tuples are drawn from the 8,000 train images, test tuples from the 2,000 test images, deterministically
from a seed. The "transformed" test applies an independent random element of G_i to view i of every tuple.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import equinox as eqx
import numpy as np
from haliax import Axis, NamedArray
from levanter.data import AsyncDataset

from common_jax.data.images import load_mnist10k

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


def load_multi_view(groups: Sequence[Group], train_tuples: int, test_tuples: int, seed: int) -> MultiViewSplits:
    """mnist10k tuples scaled to [0, 1]: train from images[:8000], test (clean and transformed) from [8000:]."""
    images, labels = load_mnist10k()
    images = images.astype(np.float32) / 255.0
    num_views = len(groups)
    train_idx = make_tuples(labels[:8000], train_tuples, num_views, seed)
    test_idx = make_tuples(labels[8000:], test_tuples, num_views, seed + 1) + 8000
    test_views = images[test_idx]
    return MultiViewSplits(
        MultiViewDataset(images[train_idx], labels[train_idx[:, 0]]),
        MultiViewDataset(test_views, labels[test_idx[:, 0]]),
        MultiViewDataset(transform_views(test_views, groups, seed + 2), labels[test_idx[:, 0]]),
    )
