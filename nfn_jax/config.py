"""Entry-point config classes and abstract-model builders (for tests/config_entrypoints.py)."""

import equinox as eqx
import jax

from .main.train import TrainPredictorConfig
from .zoo.config import ZooConfig
from .zoo.model import init_params

__all__ = ["TrainPredictorConfig", "ZooConfig", "abstract_predictor", "abstract_zoo_member"]


def abstract_zoo_member(config: ZooConfig):
    """Shapes of one zoo member's trainable parameters (``{state-dict name: ShapeDtypeStruct}``)."""
    return eqx.filter_eval_shape(lambda: init_params(config.architecture, 0.1, jax.random.PRNGKey(0)))


def abstract_predictor(config: TrainPredictorConfig):
    """Shapes of the accuracy predictor the config trains."""
    return eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))
