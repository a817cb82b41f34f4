"""equitune_jax: equitune, λ-equitune, equizero and the efficient multi-group equivariant wrappers
(Baltaji, Basu, Varshney, TMLR 2024) around any callable model. Usage, configs and measured results: the
``equitune_jax`` section of the repository's README.md."""

from .groups import (
                     Group,
                     ImageGroup,
                     PerInputProductGroup,
                     PermutationGroup,
                     ProductGroup,
                     check_axioms,
                     commute,
                     d4,
                     hflip,
                     identity,
                     per_input_product,
                     product,
                     reynolds,
                     rot90,
                     vflip,
                     vocab_cycle,
                     vocab_permutation,
                     vocab_swaps,
)
from .invariant_maps import OrbitAverage, OrbitCollapse, TemplateCanonicalizer
from .wrappers import (
                     Equitune,
                     Equizero,
                     ISBlock,
                     LambdaEquitune,
                     MultiEquitune,
                     MultiInputEquivariant,
                     RelaxedEquivariant,
                     equitune,
                     equizero,
                     lambda_equitune,
                     multi_equitune,
                     multi_input_equivariant,
                     relaxed,
)

__all__ = ["Equitune", "Equizero", "Group", "ISBlock", "ImageGroup", "LambdaEquitune", "MultiEquitune",
           "MultiInputEquivariant", "OrbitAverage", "OrbitCollapse", "PerInputProductGroup", "PermutationGroup",
           "ProductGroup", "RelaxedEquivariant", "TemplateCanonicalizer", "check_axioms", "commute", "d4", "equitune",
           "equizero", "hflip", "identity", "lambda_equitune", "multi_equitune", "multi_input_equivariant",
           "per_input_product", "product", "relaxed", "reynolds", "rot90", "vflip", "vocab_cycle", "vocab_permutation",
           "vocab_swaps"]
