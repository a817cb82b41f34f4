"""Model-agnostic equivariant wrappers around any callable ``model(x) -> y`` or ``model(x, *, key) -> y`` (spec §2,
§5); ``key`` is passed only when the model's signature takes it."""

from .design1 import FUSION_RULES, ISBlock, MultiInputEquivariant, multi_input_equivariant
from .design2 import BRANCH_WEIGHTINGS, MultiEquitune, multi_equitune
from .equitune_wrapper import Equitune, equitune
from .equizero_wrapper import PROXY_LOSSES, Equizero, entropy_loss, equizero, neg_max_prob_loss
from .lambda_equitune_wrapper import LAMBDA_WEIGHTINGS, LambdaEquitune, lambda_equitune
from .orbit import AGGREGATES, accepts_key, batched_call
from .relaxed import RelaxedEquivariant, relaxed

__all__ = [
           "AGGREGATES",
           "BRANCH_WEIGHTINGS",
           "FUSION_RULES",
           "LAMBDA_WEIGHTINGS",
           "PROXY_LOSSES",
           "Equitune",
           "Equizero",
           "ISBlock",
           "LambdaEquitune",
           "MultiEquitune",
           "MultiInputEquivariant",
           "RelaxedEquivariant",
           "accepts_key",
           "batched_call",
           "entropy_loss",
           "equitune",
           "equizero",
           "lambda_equitune",
           "multi_equitune",
           "multi_input_equivariant",
           "neg_max_prob_loss",
           "relaxed",
]
