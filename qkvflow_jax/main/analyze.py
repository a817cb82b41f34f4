"""Spectra, Lyapunov exponents and the clustering toy of a trained DiffEqFormer (spec §4).

    python -m qkvflow_jax.main.analyze --config_path configs/qkvflow/tiny.yaml \
        --checkpoint checkpoints/qkvflow/tiny/<run id> --out reports/qkvflow_analysis

``config_path`` is the training YAML of the checkpoint (it gives the model and the tokenizer). Writes
``analysis.json`` (complex eigenvalues as [re, im] pairs), ``analysis.npz`` and PNG plots to ``out``.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
from levanter.models.lm_model import LmConfig
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.trainer import TrainerConfig

import qkvflow_jax  # noqa: F401  (registers the qkvflow LmConfig subclasses)
from common_jax.checkpoints import load_model
from common_jax.data.lm import LmCorpusConfig
from common_jax.launch import run_main
from common_jax.training.run_setup import default_trainer_config

from ..analysis.lyapunov import ANALYSIS_GRIDS
from ..analysis.run import prompt_from_text, run_analyses
from ..config import DiffEqFormerConfig
from ..evaluation import vocab_axis

DEFAULT_PROMPT = "The quick brown fox jumps over the lazy dog because it"


@dataclass
class AnalyzeConfig:
    checkpoint: str = ""
    out: str = "reports/qkvflow_analysis"
    data: LmCorpusConfig = field(default_factory=LmCorpusConfig)  # only its tokenizer is used
    model: LmConfig = field(default_factory=DiffEqFormerConfig)
    trainer: TrainerConfig = field(default_factory=default_trainer_config)  # for the vocab rounding
    optimizer: OptimizerConfig = field(default_factory=AdamConfig)  # accepted (training YAMLs carry it), unused
    prompt: str = DEFAULT_PROMPT
    prompt_tokens: int = 32
    num_times: int = 64
    analysis_grid: str = "forward"  # "legacy": the reference's off-by-one grid (F5)

    def __post_init__(self):
        if not isinstance(self.model, DiffEqFormerConfig):
            raise ValueError(f"model.type must be diffeqformer, got {type(self.model).__name__}")
        if self.analysis_grid not in ANALYSIS_GRIDS:
            raise ValueError(f"analysis_grid must be one of {ANALYSIS_GRIDS}, got {self.analysis_grid!r}")
        if self.prompt_tokens < 2 or self.num_times < 2:
            raise ValueError("prompt_tokens and num_times must be >= 2")


def main(config: AnalyzeConfig) -> dict:
    if not config.checkpoint:
        raise ValueError("checkpoint is required")
    tokenizer = config.data.lm_data_config().the_tokenizer
    Vocab = vocab_axis(tokenizer, config.trainer)
    abstract = eqx.filter_eval_shape(lambda: config.model.build(Vocab, key=jax.random.PRNGKey(0)))
    model = load_model(abstract, config.checkpoint)
    ids, tokens = prompt_from_text(config.prompt, tokenizer, min(config.prompt_tokens, config.model.max_seq_len))
    summary = run_analyses(model, ids, tokens, Path(config.out), config.num_times, config.analysis_grid)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    run_main(main)
