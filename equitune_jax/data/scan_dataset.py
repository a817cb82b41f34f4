"""SCAN pairs as a levanter ``AsyncDataset`` of :class:`Seq2SeqExample` (padded id arrays)."""

import equinox as eqx
import numpy as np
from haliax import Axis, NamedArray
from levanter.data import AsyncDataset

from .scan import EncodedPairs


class Seq2SeqExample(eqx.Module):
    """``source`` int32 [source_pos], ``prefix`` and ``target`` int32 [target_pos], ``weight`` float32 []."""

    source: NamedArray
    prefix: NamedArray
    target: NamedArray
    weight: NamedArray


class Seq2SeqDataset(AsyncDataset[Seq2SeqExample]):
    def __init__(self, pairs: EncodedPairs):
        super().__init__()
        self.pairs = pairs
        self._src = (Axis("source_pos", pairs.source.shape[1]),)
        self._tgt = (Axis("target_pos", pairs.target.shape[1]),)

    async def async_len(self) -> int:
        return len(self.pairs.source)

    def is_finite(self) -> bool:
        return True

    async def get_batch(self, indices):
        p = self.pairs
        return [Seq2SeqExample(NamedArray(p.source[i], self._src), NamedArray(p.prefix[i], self._tgt),
                               NamedArray(p.target[i], self._tgt), NamedArray(np.float32(1.0), ()))
                for i in indices]
