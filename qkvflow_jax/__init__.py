"""qkvflow_jax: DiffEqFormer, Neural ODE transformers with time-dependent weights (Tong et al., ICLR 2025).

Importing the package registers ``diffeqformer``, ``diffeqformer_llama`` and ``parallel_transformer`` in
levanter's ``LmConfig`` registry. See qkvflow_jax/README_SECTION.md and ../shared/specs/qkvflow.md.
"""

from .config import DiffEqFormerConfig, DiffEqFormerLlamaConfig, ParallelTransformerConfig, abstract_lm
from .discrete import DiscreteParallelTransformer, add_lora, discretise
from .llama import DiffEqFormerLlamaLMHeadModel
from .model import DiffEqFormerLMHeadModel, ParallelVectorField
from .solvers import SolverConfig

__all__ = ["DiffEqFormerConfig", "DiffEqFormerLlamaConfig", "ParallelTransformerConfig", "SolverConfig",
           "DiffEqFormerLMHeadModel", "DiffEqFormerLlamaLMHeadModel", "DiscreteParallelTransformer",
           "ParallelVectorField", "abstract_lm", "add_lora", "discretise"]
