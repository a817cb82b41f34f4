"""Zoo checkpoints as predictor training data: selection, seeded run-disjoint splits, levanter datasets (nfn.md §5.5)."""

from dataclasses import dataclass
from typing import Sequence

import equinox as eqx
import jax
import numpy as np
from haliax import NamedArray
from levanter.data import AsyncDataset

from .weights import ZooWeights

SPLIT_NAMES = ("train", "val", "test")


class PredictorExample(eqx.Module):
    """One zoo model's weights (slots ``[C, ...]``) and its test accuracy (a batch once the loader stacks them)."""

    weights: ZooWeights
    accuracy: NamedArray  # float32 [] (named so levanter's loader finds the batch axis)


def take(weights: ZooWeights, index) -> ZooWeights:
    """The models at ``index`` (an int drops the model axis; an index array keeps it)."""
    return jax.tree.map(lambda x: x[index], weights)


def split_indices(n: int, seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> dict[str, np.ndarray]:
    """Seeded random 70/15/15 train/val/test split of ``n`` models (one checkpoint per run: run-disjoint)."""
    if n < 3:
        raise ValueError(f"need at least 3 models to split, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = max(int(round(fractions[1] * n)), 1)
    return {"train": perm[:n_train], "val": perm[n_train : n_train + n_val], "test": perm[n_train + n_val :]}


@dataclass(frozen=True)
class PredictorSplit:
    weights: ZooWeights  # host numpy leaves, [N, ...]
    accuracy: np.ndarray  # [N]


class PredictorDataset(AsyncDataset[PredictorExample]):
    """A finite dataset of :class:`PredictorExample` over one split."""

    def __init__(self, split: PredictorSplit):
        super().__init__()
        self.split = split

    async def async_len(self) -> int:
        return len(self.split.accuracy)

    def is_finite(self) -> bool:
        return True

    async def get_batch(self, indices: Sequence[int]) -> Sequence[PredictorExample]:
        return [PredictorExample(take(self.split.weights, int(i)), NamedArray(np.float32(self.split.accuracy[int(i)]), ()))
                for i in indices]
