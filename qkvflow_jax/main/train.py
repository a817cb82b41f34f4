"""Train DiffEqFormer (or a baseline) on levanter's Trainer and LM data.

    python -m qkvflow_jax.main.train --config_path configs/qkvflow/tiny.yaml [--trainer.num_train_steps 100]

This is ``common_jax.main.train_lm`` with the qkvflow models registered in levanter's ``LmConfig`` registry:
``model.type`` may be ``diffeqformer``, ``diffeqformer_llama``, ``parallel_transformer`` (untied 1/L parallel
baseline), or levanter's ``gpt2`` / ``llama``.
"""


import qkvflow_jax  # noqa: F401  (registers the qkvflow LmConfig subclasses)
from common_jax.launch import run_main
from common_jax.main.train_lm import TrainLmConfig, main

__all__ = ["TrainLmConfig", "main"]

if __name__ == "__main__":
    run_main(main)
