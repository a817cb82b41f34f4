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


def numpy_tree(tree):
    """Every array leaf copied to host numpy; other leaves unchanged."""
    return jax.tree.map(lambda x: np.asarray(x) if eqx.is_array(x) else x, tree)


def assert_single_device_step_matches(optimizer, loss_fn, model_before, batch, sharded_loss, sharded_after):
    """Recompute one ``loss_fn``/``optimizer`` step on the first device from host copies of the model and batch
    taken before a sharded levanter step, and compare loss and parameters with that step's to 1e-5."""
    device = jax.devices()[0]
    model, batch = jax.tree.map(lambda x: jax.device_put(x, device) if isinstance(x, np.ndarray) else x,
                                (model_before, batch))
    params = eqx.filter(model, eqx.is_inexact_array)
    (loss, _), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, batch)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    single_after = numpy_tree(eqx.apply_updates(model, updates))
    np.testing.assert_allclose(sharded_loss, float(loss), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(eqx.filter(sharded_after, eqx.is_array)),
                    jax.tree.leaves(eqx.filter(single_after, eqx.is_array))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
