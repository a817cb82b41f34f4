"""Zoo checkpoints as predictor training data: the reference's split and epoch batches (nfn.md §5.5, §6).

- Split: the selected models in metadata order, shuffled by Python's ``random.shuffle`` seeded with the split seed
  (the reference's seed 3), then cut ``int(0.7 n)`` / ``int(0.15 n)`` / the rest into train / val / test.
- Batches: every epoch visits the training models once in its own seeded random order; its last batch holds the
  remaining ``n mod batch_size`` models, as torch's ``DataLoader`` (``drop_last=False``) in the reference. Levanter's
  loader needs a fixed batch size, so that batch is padded with weight-0 examples and the loss is the weighted mean:
  the same loss and gradient as the reference's smaller batch.
"""

import math
import random
from dataclasses import dataclass
from typing import Sequence

import equinox as eqx
import jax
import numpy as np
from haliax import NamedArray
from levanter.data import AsyncDataset

from .weights import ZooWeights

SPLIT_NAMES = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.15)  # train, val; test = the rest


class PredictorExample(eqx.Module):
    """One zoo model's weights (slots ``[C, ...]``), its test accuracy and its weight in the loss (1, or 0 for padding);
    a batch once the loader stacks them."""

    weights: ZooWeights
    accuracy: NamedArray  # float32 [] (named so levanter's loader finds the batch axis)
    weight: NamedArray  # float32 []


def take(weights: ZooWeights, index) -> ZooWeights:
    """The models at ``index`` (an int drops the model axis; an index array keeps it)."""
    return jax.tree.map(lambda x: x[index], weights)


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    """The reference's split of ``n`` models: ``random.Random(seed).shuffle``, sizes ``int(0.7 n)``, ``int(0.15 n)``, rest."""
    if n < 3:
        raise ValueError(f"need at least 3 models to split, got {n}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_train, n_val = int(float(n * SPLIT_FRACTIONS[0])), int(float(n * SPLIT_FRACTIONS[1]))
    order = np.asarray(order)
    return {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}


@dataclass(frozen=True)
class PredictorSplit:
    weights: ZooWeights  # host numpy leaves, [N, ...]
    accuracy: np.ndarray  # [N]

    def __len__(self) -> int:
        return len(self.accuracy)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch with the last partial batch kept: ``ceil(n / batch_size)``."""
    return math.ceil(n / batch_size)


class EpochBatchStream(AsyncDataset[PredictorExample]):
    """Infinite stream of training examples for levanter's loader, ``batch_size`` per step (module docstring).

    Stream index ``i`` is slot ``i mod B`` of step ``i // B``; step ``s`` is batch ``s mod S`` of epoch ``s // S``
    (``S`` = :func:`steps_per_epoch`); epoch ``e`` visits the models in the order ``default_rng([seed, e])`` draws.
    A pure function of ``(seed, i)``, so a resumed run sees the same batches.
    """

    def __init__(self, split: PredictorSplit, batch_size: int, seed: int):
        super().__init__()
        if len(split) < 1:
            raise ValueError("the training split is empty")
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.steps_per_epoch = steps_per_epoch(len(split), batch_size)
        self._order: dict[int, np.ndarray] = {}

    async def async_len(self) -> int:
        raise ValueError("EpochBatchStream is infinite")

    def is_finite(self) -> bool:
        return False

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if epoch not in self._order:
            self._order = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.split))}
        return self._order[epoch]

    def example(self, i: int) -> PredictorExample:
        step, slot = divmod(i, self.batch_size)
        epoch, batch = divmod(step, self.steps_per_epoch)
        position = batch * self.batch_size + slot
        order = self._epoch_order(epoch)
        real = position < len(order)
        model = int(order[position if real else 0])
        return PredictorExample(take(self.split.weights, model), NamedArray(np.float32(self.split.accuracy[model]), ()),
                                NamedArray(np.float32(real), ()))

    async def get_batch(self, indices: Sequence[int]) -> Sequence[PredictorExample]:
        return [self.example(int(i)) for i in indices]
