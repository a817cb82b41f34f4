"""nfn_jax: Transformer-NFN (Tran et al., ICLR 2025) and the Small Transformer Zoo generator. See nfn.md."""

from .baselines.neural import MlpPredictorConfig, MlpWidePredictorConfig, StatNNPredictorConfig, StatNNWidePredictorConfig
from .hnps import HnpsClassifierBranch, HnpsLayer, HnpsPool
from .layers import EquivariantLayer, InvariantLayer, relu_mlp_slots
from .model import TransformerNFN, TransformerNFNConfig
from .predictor import PredictorConfig
from .weights import (
    BlockGroupElement,
    BlockWeights,
    WeightSpaceSpec,
    ZooWeights,
    act,
    random_group_element,
    zoo_weights_from_state_dicts,
    zoo_weights_to_state_dicts,
)

__all__ = [
    "BlockGroupElement",
    "BlockWeights",
    "EquivariantLayer",
    "HnpsClassifierBranch",
    "HnpsLayer",
    "HnpsPool",
    "InvariantLayer",
    "MlpPredictorConfig",
    "MlpWidePredictorConfig",
    "PredictorConfig",
    "StatNNPredictorConfig",
    "StatNNWidePredictorConfig",
    "TransformerNFN",
    "TransformerNFNConfig",
    "WeightSpaceSpec",
    "ZooWeights",
    "act",
    "random_group_element",
    "relu_mlp_slots",
    "zoo_weights_from_state_dicts",
    "zoo_weights_to_state_dicts",
]
