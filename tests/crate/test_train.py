"""End to end on levanter's Trainer: a short CRATE run on mnist10k, the measurement CLI on its checkpoint and
the .pth import CLI (spec crate.md §3, §4; issue items 3-5)."""

import json
from pathlib import Path

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common_jax.checkpoints import load_model
from common_jax.launch import parse_config
from crate_jax import export_torch_state_dict
from crate_jax.main import import_torch, measure, reproduce, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "crate"
STEPS = 6


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("crate_run")
    overrides = ["--trainer.id", "crate", "--trainer.num_train_steps", str(STEPS), "--trainer.steps_per_eval",
                 str(STEPS), "--trainer.train_batch_size", "32", "--trainer.log_dir", str(root / "logs"),
                 "--trainer.checkpointer.base_path", str(root / "checkpoints")]
    config = parse_config(train.TrainClassifierConfig, CONFIGS / "tiny_mnist.yaml", overrides)
    result = train.main(config)
    return root, config, result


def _abstract(config):
    return eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))


def test_training_logs_accuracy_and_checkpoints(trained_run):
    root, config, result = trained_run
    assert result["steps"] == STEPS and 0.0 <= result["accuracy"] <= 1.0
    metrics = (root / "logs" / "crate" / "metrics.jsonl").read_text()
    assert "eval/test/accuracy" in metrics
    model = load_model(_abstract(config), str(root / "checkpoints" / "crate"))
    initial = measure.initial_model(config)
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(eqx.filter(model, eqx.is_array)),
                                                            jax.tree.leaves(eqx.filter(initial, eqx.is_array)))]
    assert max(moved) > 0  # the checkpoint holds trained weights, and initial_model is what training started from


def test_measure_cli_writes_json_and_plots(trained_run, tmp_path):
    root, _, _ = trained_run
    out = tmp_path / "measure"
    result = measure.main(["--config", str(CONFIGS / "tiny_mnist.yaml"), "--checkpoint", str(root / "checkpoints" /
                           "crate"), "--out", str(out), "--num_images", "12", "--init_baseline"])
    saved = json.loads((out / "layers.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved["curves"]) == {"init", "checkpoint"} and saved["measure_point"] == "mssa_input"
    for stats in saved["curves"].values():
        assert len(stats) == 4
        for layer in stats:
            assert 0 < layer["coding_rate_mean"] <= 4 * 17 / 2 * np.log(1 + 16 / (17 * 0.01))
            assert 0 < layer["nonzero_fraction"] < 1
    for png in ("coding_rate.png", "sparsity.png", "attention_maps.png"):
        assert (out / png).stat().st_size > 1000


def test_import_cli_round_trips_a_pth(trained_run, tmp_path):
    torch = pytest.importorskip("torch")
    root, config, _ = trained_run
    model = load_model(_abstract(config), str(root / "checkpoints" / "crate"))
    pth = tmp_path / "crate.pth"
    state = {f"module.{k}": torch.from_numpy(v) for k, v in export_torch_state_dict(model).items()}
    torch.save({"epoch": 1, "arch": "crate", "state_dict": state}, pth)
    out = tmp_path / "imported"
    import_torch.main(["--checkpoint", str(pth), "--config", str(CONFIGS / "tiny_mnist.yaml"), "--out", str(out)])
    imported = load_model(_abstract(config), str(out))
    images = hax.random.normal(jax.random.PRNGKey(0), (hax.Axis("batch", 4), hax.Axis("height", 28),
                                                       hax.Axis("width", 28), hax.Axis("channel", 1)))
    np.testing.assert_allclose(np.asarray(imported(images).array), np.asarray(model(images).array), atol=1e-6)
    with pytest.raises(FileExistsError):
        import_torch.main(["--checkpoint", str(pth), "--config", str(CONFIGS / "tiny_mnist.yaml"), "--out", str(out)])


def test_import_cli_without_file_fails_clearly(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        import_torch.main(["--checkpoint", str(tmp_path / "missing.pth"), "--config",
                           str(CONFIGS / "tiny_mnist.yaml"), "--out", str(tmp_path / "out")])


@pytest.mark.slow
def test_imported_checkpoint_initialises_fine_tuning(tmp_path):
    torch = pytest.importorskip("torch")
    yaml = str(CONFIGS / "tiny_mnist.yaml")
    config = parse_config(train.TrainClassifierConfig, yaml)
    source = eqx.filter_jit(lambda key: config.model.build(key=key))(jax.random.PRNGKey(42))
    pth = tmp_path / "source.pth"
    torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in export_torch_state_dict(source).items()}}, pth)
    import_torch.main(["--checkpoint", str(pth), "--config", yaml, "--out", str(tmp_path / "imported")])
    overrides = ["--trainer.id", "ft", "--trainer.num_train_steps", "1", "--trainer.steps_per_eval", "1",
                 "--trainer.train_batch_size", "32", "--trainer.log_dir", str(tmp_path / "logs"),
                 "--trainer.checkpointer.base_path", str(tmp_path / "checkpoints"),
                 "--trainer.initialize_from", str(tmp_path / "imported" / "step-0"),
                 "--trainer.allow_partial_checkpoint", "true",
                 "--optimizer.learning_rate", "0.0", "--optimizer.weight_decay", "0.0"]
    config = parse_config(train.TrainClassifierConfig, yaml, overrides)
    train.main(config)
    after = load_model(_abstract(config), str(tmp_path / "checkpoints" / "ft"))  # lr 0: still the imported weights
    leaves = lambda tree: jax.tree.leaves(eqx.filter(tree, eqx.is_array))  # noqa: E731
    for a, b in zip(leaves(after), leaves(source)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_reproduction_reaches_the_spec_threshold(tmp_path):
    headline = reproduce.run_demo(tmp_path / "crate", "full")
    results = json.loads((tmp_path / "crate" / "results.json").read_text())
    assert results["crate_test_accuracy"] >= 0.95
    assert results["crate_params"] == 55_690 and len(results["layers"]) == len(results["layers_at_init"]) == 4
    for png in headline["figures"]:
        assert (tmp_path / png).is_file()
