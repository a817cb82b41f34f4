"""Masked-LM data for BERT: WordPiece-tokenized text packed into fixed-length chunks, masked per chunk.

Every chunk is ``[CLS] t_1 ... t_{L-2} [SEP]`` cut from the concatenated articles of a split. 15 % of the
non-special positions are selected (BERT's recipe): 80 % become ``[MASK]``, 10 % a random token, 10 % stay.
The masking of chunk ``i`` is seeded by ``(seed, i)``, so the stream is a pure function of the index and a
resumed run sees exactly the examples it would have seen.
"""

import os
from dataclasses import dataclass, field
from typing import Sequence

import equinox as eqx
import haliax as hax
import jax.numpy as jnp
import numpy as np
from haliax import Axis, NamedArray
from levanter.data import AsyncDataset

from common_jax.data import enwiki106
from common_jax.data.bert_vocab import bert_tokenizer

MLM_SOURCES = ("enwiki106", "jsonl")


class MlmExample(eqx.Module):
    """One chunk (or a batch with a leading ``batch`` axis once levanter's loader stacks them)."""

    input_ids: NamedArray  # int32 [position], masked
    targets: NamedArray  # int32 [position], the original tokens
    loss_mask: NamedArray  # float32 [position], 1 at the selected positions


class MlmDataset(AsyncDataset[MlmExample]):
    """Finite dataset of masked chunks ``[n, seq_len]``."""

    def __init__(self, chunks: np.ndarray, vocab_size: int, special: dict[str, int], mask_prob: float, seed: int):
        super().__init__()
        self.chunks, self.vocab_size, self.special = chunks, vocab_size, special
        self.mask_prob, self.seed = mask_prob, seed

    async def async_len(self) -> int:
        return len(self.chunks)

    def is_finite(self) -> bool:
        return True

    async def get_batch(self, indices: Sequence[int]) -> Sequence[MlmExample]:
        return [self.example(int(i)) for i in indices]

    def masked(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, loss_mask)`` of chunk ``index``."""
        tokens = self.chunks[index]
        rng = np.random.default_rng([self.seed, index])
        selectable = ~np.isin(tokens, [self.special["cls"], self.special["sep"], self.special["pad"]])
        selected = selectable & (rng.random(len(tokens)) < self.mask_prob)
        action = rng.random(len(tokens))
        ids = tokens.copy()
        ids[selected & (action < 0.8)] = self.special["mask"]
        random_positions = selected & (action >= 0.8) & (action < 0.9)
        ids[random_positions] = rng.integers(0, self.vocab_size, random_positions.sum())
        return ids.astype(np.int32), selected.astype(np.float32)

    def example(self, index: int) -> MlmExample:
        ids, mask = self.masked(index)
        Pos = (Axis("position", len(ids)),)
        return MlmExample(NamedArray(ids, Pos), NamedArray(self.chunks[index].astype(np.int32), Pos),
                          NamedArray(mask, Pos))


@dataclass(frozen=True)
class MlmSplits:
    train: MlmDataset
    validation: MlmDataset
    vocab_size: int


@dataclass(frozen=True)
class MlmDataConfig:
    """``source: enwiki106`` (the embedded articles' train/validation split) or ``jsonl`` (local files with a
    ``text`` field); bert-base-uncased WordPiece; ``seq_len`` tokens per chunk."""

    source: str = "enwiki106"
    train_files: list[str] = field(default_factory=list)
    validation_files: list[str] = field(default_factory=list)
    seq_len: int = 128
    mask_prob: float = 0.15
    seed: int = 0
    max_validation_chunks: int | None = None

    def __post_init__(self):
        if self.source not in MLM_SOURCES:
            raise ValueError(f"data.source must be one of {MLM_SOURCES}, got {self.source!r}")
        if self.source == "jsonl" and not (self.train_files and self.validation_files):
            raise ValueError("data.train_files and data.validation_files are required when data.source is 'jsonl'")
        if self.seq_len < 8:
            raise ValueError(f"data.seq_len must be >= 8, got {self.seq_len}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"data.mask_prob must be in (0, 1), got {self.mask_prob}")

    def _texts(self, split: str) -> list[str]:
        if self.source == "enwiki106":
            return [a["text"] for a in enwiki106.split_articles(split)]
        import json

        files = self.train_files if split == "train" else self.validation_files
        texts = []
        for path in files:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                texts += [json.loads(line)["text"] for line in f if line.strip()]
        return texts

    def load(self) -> MlmSplits:
        tokenizer = bert_tokenizer()
        special = {name: tokenizer.token_to_id(tok) for name, tok in
                   (("cls", "[CLS]"), ("sep", "[SEP]"), ("pad", "[PAD]"), ("mask", "[MASK]"))}
        vocab_size = tokenizer.get_vocab_size()

        def chunks(split: str, limit: int | None) -> np.ndarray:
            encoded = tokenizer.encode_batch(self._texts(split), add_special_tokens=False)
            stream = np.concatenate([np.append(np.asarray(e.ids, np.int64), special["sep"]) for e in encoded])
            body = self.seq_len - 2
            n = len(stream) // body if limit is None else min(limit, len(stream) // body)
            if n == 0:
                raise ValueError(f"data split {split!r} has fewer than {body} tokens")
            out = np.empty((n, self.seq_len), np.int64)
            out[:, 0], out[:, -1] = special["cls"], special["sep"]
            out[:, 1:-1] = stream[: n * body].reshape(n, body)
            return out

        make = lambda c: MlmDataset(c, vocab_size, special, self.mask_prob, self.seed)  # noqa: E731
        validation = chunks("validation", self.max_validation_chunks)
        return MlmSplits(make(chunks("train", None)), make(validation), vocab_size)


def mlm_loss(model, batch: MlmExample, *, key=None):
    """Cross-entropy over the selected positions; ``(loss, {"accuracy", "masked_loss"})`` as weighted means."""
    from levanter.metrics import Metric, ReductionType

    logits = model(batch.input_ids, key=key).astype(jnp.float32)
    Vocab = logits.resolve_axis("vocab")
    log_probs = hax.nn.log_softmax(logits, axis=Vocab)
    nll = -hax.take(log_probs, Vocab, batch.targets)  # a gather: no [batch, position, vocab] one-hot
    weight = batch.loss_mask
    total = hax.maximum(hax.sum(weight), 1.0)
    loss = (hax.sum(nll * weight) / total).scalar()
    correct = (hax.argmax(logits, Vocab) == batch.targets).astype(jnp.float32)
    mean = lambda v: Metric(_value=hax.sum(v * weight).array, _count=hax.sum(weight).array,  # noqa: E731
                            reduction=ReductionType.MEAN)
    return loss, {"accuracy": mean(correct), "masked_loss": mean(nll)}
