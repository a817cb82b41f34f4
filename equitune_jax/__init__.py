"""equitune_jax: equitune, λ-equitune, equizero and the efficient multi-group equivariant wrappers
(Baltaji, Basu, Varshney, TMLR 2024) for any Equinox model. See equitune_jax/README_SECTION.md."""

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
                     equitune,
                     equizero,
                     lambda_equitune,
                     multi_equitune,
                     multi_input_equivariant,
)

__all__ = ["Equitune", "Equizero", "Group", "ISBlock", "ImageGroup", "LambdaEquitune", "MultiEquitune",
           "MultiInputEquivariant", "OrbitAverage", "OrbitCollapse", "PerInputProductGroup", "PermutationGroup",
           "ProductGroup", "TemplateCanonicalizer", "check_axioms", "commute", "d4", "equitune", "equizero", "hflip",
           "lambda_equitune", "multi_equitune", "multi_input_equivariant", "per_input_product", "product",
           "reynolds", "rot90", "vflip", "vocab_cycle", "vocab_permutation", "vocab_swaps"]
