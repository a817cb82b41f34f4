"""Train CRATE (or a ViT baseline) on levanter's Trainer: ``common_jax.main.train_classifier`` with the
``crate`` model type registered.

    python -m crate_jax.main.train --config_path configs/crate/tiny_mnist.yaml [--trainer.num_train_steps 500]

A YAML selects ``model: {type: crate, ...}`` (:class:`crate_jax.CrateConfig`) or ``model: {type: vit, ...}``.
Metrics go to ``<trainer.log_dir>/<run id>/metrics.jsonl`` (``eval/test/accuracy``), checkpoints to
``trainer.checkpointer.base_path``; relaunching with the same ``--trainer.id`` resumes.
"""

from common_jax.launch import run_main
from common_jax.main.train_classifier import TrainClassifierConfig, main

from .. import config as _registers_crate  # noqa: F401  (registers model type "crate")

__all__ = ["TrainClassifierConfig", "main"]

if __name__ == "__main__":
    run_main(main)
