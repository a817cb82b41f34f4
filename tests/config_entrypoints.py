"""Which entry point reads which YAML under configs/, and how to build its abstract model.

Every YAML must match exactly one pattern (tests/common/test_configs.py checks it); paper issues add rows.
"""

import equinox as eqx
import jax


def _abstract_classifier(config):
    return eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))


def _abstract_lm(config):
    from haliax import Axis

    from common_jax.data.tokenizers import EMBEDDED_TOKENIZERS

    vocab = {"gpt2": 50257, "bytes": 257}[config.data.tokenizer] if config.data.tokenizer in EMBEDDED_TOKENIZERS else None
    if vocab is None:
        raise ValueError(f"no offline vocabulary size for tokenizer {config.data.tokenizer!r}")
    return eqx.filter_eval_shape(lambda: config.model.build(Axis("vocab", vocab), key=jax.random.PRNGKey(0)))


def entrypoints():
    """``{glob pattern relative to configs/: (config class, abstract-model builder)}``."""
    from common_jax.main.train_classifier import TrainClassifierConfig
    from common_jax.main.train_lm import TrainLmConfig

    return {
        "common/vit_*.yaml": (TrainClassifierConfig, _abstract_classifier),
        "common/gpt2_*.yaml": (TrainLmConfig, _abstract_lm),
    }
