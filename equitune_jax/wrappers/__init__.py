"""Model-agnostic equivariant wrappers around any ``model(x, *, key) -> y`` (spec §2, §5)."""

from .design1 import ISBlock, MultiInputEquivariant, multi_input_equivariant
from .design2 import MultiEquitune, multi_equitune
from .equitune_wrapper import Equitune, equitune
from .equizero_wrapper import PROXY_LOSSES, Equizero, entropy_loss, equizero, neg_max_prob_loss
from .lambda_equitune_wrapper import LambdaEquitune, lambda_equitune
from .orbit import AGGREGATES, batched_call

__all__ = [
           "AGGREGATES",
           "PROXY_LOSSES",
           "Equitune",
           "Equizero",
           "ISBlock",
           "LambdaEquitune",
           "MultiEquitune",
           "MultiInputEquivariant",
           "batched_call",
           "entropy_loss",
           "equitune",
           "equizero",
           "lambda_equitune",
           "multi_equitune",
           "multi_input_equivariant",
           "neg_max_prob_loss",
]
