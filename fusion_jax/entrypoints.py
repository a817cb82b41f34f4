"""Abstract-model builders of the fusion YAMLs (rows of ``tests/config_entrypoints.py``)."""

import equinox as eqx
import jax


def abstract_fusion_parents(config) -> list[eqx.Module]:
    """``configs/fusion/{tiny_mnist,vit_*,bert_*}.yaml`` (a ``FuseJobConfig``): every parent's abstract model."""
    return [config.task.abstract_model(i) for i in range(config.task.num_parents())]


def abstract_bert_parent(config) -> eqx.Module:
    """``configs/fusion/parents/bert_*.yaml`` (a ``TrainBertConfig``): the BERT MLM parent's abstract model."""
    return eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))
