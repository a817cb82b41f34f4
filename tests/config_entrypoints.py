"""Which entry point reads which YAML under configs/, and how to build its abstract model.

Every YAML must match exactly one pattern (tests/common/test_configs.py checks it); paper issues add rows.
"""

import equinox as eqx
import jax


def _abstract_lm(config):
    from haliax import Axis

    from common_jax.data.tokenizers import EMBEDDED_TOKENIZERS

    vocab = {"gpt2": 50257, "bytes": 257}[config.data.tokenizer] if config.data.tokenizer in EMBEDDED_TOKENIZERS else None
    if vocab is None:
        raise ValueError(f"no offline vocabulary size for tokenizer {config.data.tokenizer!r}")
    return eqx.filter_eval_shape(lambda: config.model.build(Axis("vocab", vocab), key=jax.random.PRNGKey(0)))


def entrypoints():
    """``{glob pattern relative to configs/: (config class, abstract-model builder)}``."""
    from common_jax.main.train_classifier import TrainClassifierConfig, abstract_model
    from common_jax.main.train_lm import TrainLmConfig

    import crate_jax.main.train  # noqa: F401  (registers model type "crate")
    from equitune_jax.config import ENTRYPOINTS as EQUITUNE  # importing it registers model type "equitune_vit"
    from fusion_jax.entrypoints import abstract_bert_parent, abstract_fusion_parents
    from fusion_jax.main.fuse import FuseJobConfig
    from fusion_jax.main.train_bert import TrainBertConfig
    from nfn_jax.config import TrainPredictorConfig, ZooConfig, abstract_predictor, abstract_zoo_member
    from qkvflow_jax.config import abstract_lm as qkvflow_abstract_lm  # importing qkvflow registers its LmConfigs
    from qkvflow_jax.main.finetune import FinetuneConfig

    return {
        "common/vit_*.yaml": (TrainClassifierConfig, abstract_model),
        "common/gpt2_*.yaml": (TrainLmConfig, _abstract_lm),
        "crate/*.yaml": (TrainClassifierConfig, abstract_model),
        "fusion/parents/vit_*.yaml": (TrainClassifierConfig, abstract_model),
        "fusion/parents/bert_*.yaml": (TrainBertConfig, abstract_bert_parent),
        "fusion/tiny_mnist.yaml": (FuseJobConfig, abstract_fusion_parents),
        "fusion/vit_*.yaml": (FuseJobConfig, abstract_fusion_parents),
        "fusion/bert_*.yaml": (FuseJobConfig, abstract_fusion_parents),
        **EQUITUNE,
        "qkvflow/tiny*.yaml": (TrainLmConfig, qkvflow_abstract_lm),
        "qkvflow/owt/*.yaml": (TrainLmConfig, qkvflow_abstract_lm),
        "qkvflow/wikitext/*.yaml": (TrainLmConfig, qkvflow_abstract_lm),
        "qkvflow/finetune/pretrain_*.yaml": (TrainLmConfig, qkvflow_abstract_lm),
        "qkvflow/finetune/tiny.yaml": (FinetuneConfig, qkvflow_abstract_lm),
        "qkvflow/finetune/wiki_owt.yaml": (FinetuneConfig, qkvflow_abstract_lm),
        "qkvflow/finetune/owt_wiki.yaml": (FinetuneConfig, qkvflow_abstract_lm),
        "nfn/*_full.yaml": (ZooConfig, abstract_zoo_member),
        "nfn/tiny_*.yaml": (ZooConfig, abstract_zoo_member),
        "nfn/nfn_*.yaml": (TrainPredictorConfig, abstract_predictor),
    }
