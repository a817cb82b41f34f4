"""``common_jax.main.train_classifier`` with the ``equitune_vit`` model type registered.

    python -m equitune_jax.main.train_classifier --config_path configs/equitune/vit_rot90_mnist.yaml
"""


from common_jax.launch import run_main
from common_jax.main.train_classifier import TrainClassifierConfig, main

from ..models import equitune_vit  # noqa: F401  (registers model type "equitune_vit")

__all__ = ["TrainClassifierConfig", "main"]

if __name__ == "__main__":
    run_main(main)
