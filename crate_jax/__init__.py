"""CRATE white-box transformer (Yu et al., NeurIPS 2023): model, official-checkpoint import, coding-rate and
sparsity measurement. See crate_jax/README_SECTION.md."""

from .config import CrateConfig
from .model import Crate
from .torch_import import export_torch_state_dict, load_torch_state_dict

__all__ = ["Crate", "CrateConfig", "export_torch_state_dict", "load_torch_state_dict"]
