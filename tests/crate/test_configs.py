"""Every YAML under configs/crate/ parses into the training config and builds an abstract model; the paper
sizes have the spec's exact parameter counts (spec crate.md §2.1, §2.2, §8.1)."""

from pathlib import Path

import pytest
from levanter.utils.jax_utils import parameter_count

from common_jax.launch import parse_config
from common_jax.main.train_classifier import abstract_model as abstract_classifier
from crate_jax.config import CrateConfig
from crate_jax.main.train import TrainClassifierConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "crate"
YAMLS = sorted(p.name for p in CONFIGS.glob("*.yaml"))
EXPECTED = {
    "crate_tiny_imagenet.yaml": 6_090_856, "crate_small_imagenet.yaml": 13_116_328,
    "crate_base_imagenet.yaml": 22_796_008, "crate_large_imagenet.yaml": 77_641_192,
    "vit_tiny_imagenet.yaml": 5_717_416, "vit_small_imagenet.yaml": 22_050_664,
}


def test_every_paper_size_has_a_config():
    assert set(EXPECTED) <= set(YAMLS)
    for size in ("tiny", "small", "base", "large"):
        assert f"crate_{size}_cifar10_finetune.yaml" in YAMLS
    assert "tiny_mnist.yaml" in YAMLS


@pytest.mark.parametrize("name", YAMLS)
def test_config_parses_and_builds_abstract_model(name):
    config = parse_config(TrainClassifierConfig, CONFIGS / name)
    count = parameter_count(abstract_classifier(config))
    if name in EXPECTED:
        assert count == EXPECTED[name]
    if isinstance(config.model, CrateConfig):
        assert count == config.model.expected_parameter_count()


def test_imagenet_recipe_is_the_papers():
    config = parse_config(TrainClassifierConfig, CONFIGS / "crate_base_imagenet.yaml")
    opt = config.optimizer
    assert type(opt).__name__ == "LionConfig" and opt.learning_rate == 2.4e-4 and opt.weight_decay == 0.5
    assert opt.max_grad_norm is None and opt.weight_decay_modules == ".*"
    assert config.trainer.train_batch_size == 2048 and config.label_smoothing == 0.1
    steps_per_epoch = -(-1_281_167 // 2048)
    assert config.trainer.num_train_steps == 150 * steps_per_epoch
    assert abs(opt.warmup * 150 - 5) < 1e-3


def test_bad_crate_field_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  type: crate\n  hidden_dim: 64\n  num_heads: 3\n")
    with pytest.raises(Exception) as info:
        parse_config(TrainClassifierConfig, path)
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert "model.num_heads" in " | ".join(chain)
