"""Entry points: ``python -m crate_jax.main.{train,import_torch,measure,reproduce} ...``."""
