"""The experiment entry points end to end on levanter's Trainer (tiny sizes; the full runs are slow)."""

import json

import pytest

from common_jax.launch import parse_config
from equitune_jax.config import MultiViewConfig, ScanConfig

from .test_configs import CONFIGS


def _run_args(root, run_id):
    return ["--trainer.id", run_id, "--trainer.log_dir", str(root / "logs"),
            "--trainer.checkpointer.base_path", str(root / "checkpoints")]


def test_multi_view_trains_and_product_equitune_is_invariant(in_tmp):
    from equitune_jax.main import multi_view

    config = parse_config(MultiViewConfig, CONFIGS / "equitune" / "multi_view.yaml",
                          _run_args(in_tmp, "mv") + ["--train_tuples", "64", "--test_tuples", "40",
                                                     "--trainer.num_train_steps", "2", "--finetune_steps", "1",
                                                     "--trainer.train_batch_size", "16", "--model.width", "4",
                                                     "--models", "[cnn, product_equitune]"])
    results = multi_view.main(config)
    assert set(results) == {"cnn", "product_equitune_zero_shot", "product_equitune_finetuned"}
    assert results["product_equitune_finetuned"]["forward_passes"] == 8
    assert results["product_equitune_finetuned"]["encoder_calls"] == 16 and results["cnn"]["encoder_calls"] == 2
    for name in ("product_equitune_zero_shot", "product_equitune_finetuned"):
        assert results[name]["clean"] == results[name]["transformed"]  # invariant: identical predictions
        assert results[name]["agreement"] == 1.0 and results[name]["invariance_gap"] < 1e-4
    assert results["cnn"]["invariance_gap"] > 1e-3  # the plain CNN is not invariant
    assert (in_tmp / "checkpoints" / "mv-product_equitune").exists()
    assert json.loads((in_tmp / "logs" / "mv" / "results.json").read_text()) == results


@pytest.mark.slow
def test_scan_pretrain_and_finetune(in_tmp):
    from equitune_jax.main import scan

    config = parse_config(ScanConfig, CONFIGS / "equitune" / "scan.yaml",
                          _run_args(in_tmp, "scan") + ["--trainer.num_train_steps", "3", "--finetune_steps", "2",
                                                       "--data.max_test_examples", "48", "--model.hidden", "16"])
    results = scan.main(config)
    assert results["forward_passes"] == {"pretrained": 1, "equitune": 8, "multi_equitune": 6}
    assert set(results["accuracy"]) == {"pretrained", "equitune_zero_shot", "equitune_finetuned",
                                        "multi_equitune_zero_shot", "multi_equitune_finetuned"}
    assert results["dataset"]["train"] == 5568 and results["dataset"]["tests"]["all"] == 5184


@pytest.mark.slow
def test_reproduce_smoke_writes_results_report_and_plot(in_tmp):
    from equitune_jax.main.reproduce import run_demo

    headline = run_demo(in_tmp / "equitune", "smoke")
    results = json.loads((in_tmp / "equitune" / "results.json").read_text())
    assert set(results["multi_view"]["design1"]) == {"clean", "transformed", "agreement", "invariance_gap",
                                                     "forward_passes", "encoder_calls", "train_seconds"}
    assert results["multi_view"]["design1"]["forward_passes"] == 12
    assert results["scan"]["seeds"] == [1] and "equitune" in results["scan"]["finetune_seconds"]
    assert (in_tmp / "equitune" / "report.md").exists()
    assert headline["figures"] == ["equitune/equitune.png"] and (in_tmp / "equitune" / "equitune.png").exists()
    assert headline["summary"].startswith("two-view mnist10k") and "\n" not in headline["summary"]


def test_reproduce_rejects_an_unknown_preset():
    from equitune_jax.main.reproduce import ReproduceConfig, run_demo

    with pytest.raises(ValueError, match="preset"):
        ReproduceConfig(preset="quick")
    with pytest.raises(ValueError, match="preset"):
        run_demo("unused", "fast")


def test_scan_reference_protocol_end_to_end(in_tmp):
    """``scan_reference.yaml`` at toy size on SCAN-mini: batch-1 torch-Adam stages with teacher forcing 0.5 and summed,
    EOS-cut losses, validation with best-model selection in both stages, independent decoding, the reference split."""
    from equitune_jax.main import scan

    toy = ["--data.variant", "scan_mini", "--data.primitive_fraction", "0.02", "--model.hidden", "8",
           "--model.embed_dim", "8", "--trainer.num_train_steps", "6", "--finetune_steps", "3",
           "--pretrain.validation_fraction", "0.01", "--pretrain.validation_first_step", "3",
           "--pretrain.validation_every", "3", "--finetune.validation_every", "2", "--data.max_test_examples", "24",
           "--methods", "[multi_equitune]"]
    config = parse_config(ScanConfig, CONFIGS / "equitune" / "scan_reference.yaml", _run_args(in_tmp, "ref") + toy)
    results = scan.main(config)
    assert results["decode_mode"] == "independent"
    assert results["forward_passes"] == {"pretrained": 1, "multi_equitune": 6}
    pre, tuned = results["validation"]["pretrain"], results["validation"]["multi_equitune"]
    assert [u for u, _ in pre["history"]] == [3, 6] and pre["examples"] == int(0.01 * (results["dataset"]["train"]))
    assert tuned["history"][0][0] == 0  # the reference validates after its first update: here on the start model
    assert {pre["kept"], tuned["kept"]} <= {"best", "final"}
    assert set(results["accuracy"]) == {"pretrained", "multi_equitune_zero_shot", "multi_equitune_finetuned"}
    assert results["dataset"]["decoded"] == 24
