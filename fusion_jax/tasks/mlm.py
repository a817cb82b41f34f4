"""Masked language modelling: BERT parents on enwiki106 (WordPiece), masked-token loss / accuracy."""

import math
from dataclasses import dataclass, field

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np

from common_jax.launch import ConfigError
from common_jax.models.bert import BertConfig

from ..mlm_data import MlmDataConfig, MlmSplits, mlm_loss
from ..probes import probe_indices
from .base import FusionTaskConfig, LoadedTask


@eqx.filter_jit
def _log_probs(model, input_ids):
    logits = eqx.nn.inference_mode(model)(input_ids).astype(jnp.float32)
    return hax.nn.log_softmax(logits, axis="vocab").array


@FusionTaskConfig.register_subclass("mlm")
@dataclass(frozen=True)
class MlmTaskConfig(FusionTaskConfig):
    data: MlmDataConfig = field(default_factory=MlmDataConfig)
    parents: list[BertConfig] = field(default_factory=lambda: [BertConfig(), BertConfig()])
    eval_batch_size: int = 32

    def __post_init__(self):
        if len(self.parents) < 2:
            raise ValueError(f"task.parents must list at least two models, got {len(self.parents)}")
        for i, parent in enumerate(self.parents):
            if self.data.seq_len > parent.max_position:
                raise ValueError(f"task.parents[{i}].max_position ({parent.max_position}) is below "
                                 f"task.data.seq_len ({self.data.seq_len})")

    def num_parents(self) -> int:
        return len(self.parents)

    def abstract_model(self, index: int):
        return eqx.filter_eval_shape(lambda: self.parents[index].build(key=jax.random.PRNGKey(0)))

    def load(self) -> "MlmTask":
        splits = self.data.load()
        for i, parent in enumerate(self.parents):
            if parent.vocab_size != splits.vocab_size:
                raise ValueError(f"task.parents[{i}].vocab_size is {parent.vocab_size}, the tokenizer has "
                                 f"{splits.vocab_size}")
        return MlmTask(splits, self.eval_batch_size)


class MlmTask(LoadedTask):
    """Masked-token loss (primary, lower is better), accuracy and perplexity on the validation chunks."""

    primary = "loss"
    higher_is_better = False

    def __init__(self, splits: MlmSplits, eval_batch_size: int):
        self.splits, self.eval_batch_size = splits, eval_batch_size
        masked = [splits.validation.masked(i) for i in range(len(splits.validation.chunks))]
        self._inputs = np.stack([m[0] for m in masked])
        self._weights = np.stack([m[1] for m in masked])
        self._targets = splits.validation.chunks.astype(np.int64)

    def probe(self, num_samples: int, seed: int, sampling: str) -> np.ndarray:
        chunks = self.splits.train.chunks
        return chunks[probe_indices(len(chunks), num_samples, seed, sampling)].astype(np.int32)

    def check_model(self, model, name: str) -> None:
        if model.config.vocab_size != self.splits.vocab_size:
            raise ConfigError(f"{name}: vocab_size is {model.config.vocab_size}, the tokenizer has "
                              f"{self.splits.vocab_size}")
        if model.config.max_position < self.splits.validation.chunks.shape[1]:
            raise ConfigError(f"{name}: max_position ({model.config.max_position}) is below the sequence length "
                              f"({self.splits.validation.chunks.shape[1]})")

    def _target_log_probs(self, models: list) -> tuple[np.ndarray, np.ndarray]:
        """log p(target) at every position under the mean of the models' probabilities, and correctness."""
        logp_parts, correct_parts = [], []
        for s in range(0, len(self._inputs), self.eval_batch_size):
            ids = hax.named(jnp.asarray(self._inputs[s : s + self.eval_batch_size]), ("batch", "position"))
            probs = np.mean([np.exp(np.asarray(_log_probs(m, ids), np.float64)) for m in models], axis=0)
            targets = self._targets[s : s + self.eval_batch_size]
            logp_parts.append(np.log(np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]))
            correct_parts.append(probs.argmax(-1) == targets)
        return np.concatenate(logp_parts), np.concatenate(correct_parts)

    def _metrics(self, models: list) -> dict[str, float]:
        logp, correct = self._target_log_probs(models)
        w = self._weights
        loss = float(-(logp * w).sum() / w.sum())
        return {"loss": loss, "accuracy": float((correct * w).sum() / w.sum()), "perplexity": math.exp(loss)}

    def evaluate(self, model) -> dict[str, float]:
        return self._metrics([model])

    def evaluate_ensemble(self, models: list) -> dict[str, float]:
        """The probability ensemble (mean of the models' predictive distributions)."""
        return self._metrics(models)

    def loss(self, model, batch, *, key=None):
        return mlm_loss(model, batch, key=key)

    def train_set(self):
        return self.splits.train

    def evaluate_trained(self, trainer, model) -> dict[str, float]:
        from ..main.train_bert import evaluate_mlm

        return evaluate_mlm(trainer, model, self.splits.validation)
