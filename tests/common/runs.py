"""Helpers to launch the project's entry points in-process on a YAML plus overrides, inside a temp dir."""

from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from common_jax.checkpoints import load_model
from common_jax.launch import parse_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_overrides(run_id: str, steps: int, root: Path) -> list[str]:
    return [
        "--trainer.id", run_id, "--trainer.num_train_steps", str(steps),
        "--trainer.log_dir", str(root / "logs"), "--trainer.checkpointer.base_path", str(root / "checkpoints"),
    ]


def launch(main_module, config_cls, yaml: str, run_id: str, steps: int, root: Path, extra: list[str] = ()):
    config = parse_config(config_cls, CONFIGS / yaml, run_overrides(run_id, steps, root) + list(extra))
    return config, main_module.main(config)


def final_model(abstract_model, root: Path, run_id: str):
    """The model saved in the latest checkpoint of a run."""
    return load_model(abstract_model, str(root / "checkpoints" / run_id))


def assert_trees_equal(a, b):
    leaves_a, leaves_b = jax.tree.leaves(eqx.filter(a, eqx.is_array)), jax.tree.leaves(eqx.filter(b, eqx.is_array))
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
