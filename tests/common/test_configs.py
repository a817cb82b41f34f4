"""Every YAML under configs/ parses and builds an abstract model; bad configs fail naming the field."""

import fnmatch
from pathlib import Path

import draccus
import pytest
from levanter.utils.jax_utils import parameter_count

from common_jax.launch import parse_config
from common_jax.main.train_classifier import TrainClassifierConfig
from tests.config_entrypoints import entrypoints

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
YAMLS = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml"))


def _entry(relative: str):
    matches = [v for pattern, v in entrypoints().items() if fnmatch.fnmatch(relative, pattern)]
    assert len(matches) == 1, f"{relative} matches {len(matches)} entry-point patterns in tests/config_entrypoints.py"
    return matches[0]


@pytest.mark.parametrize("relative", YAMLS)
def test_config_parses_and_builds_abstract_model(relative):
    config_cls, abstract_model = _entry(relative)
    config = parse_config(config_cls, CONFIGS / relative)
    model = abstract_model(config)
    assert parameter_count(model) > 0


def _error_chain(exc: BaseException) -> str:
    messages = []
    while exc is not None:
        messages.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " | ".join(messages)


@pytest.mark.parametrize(
    "yaml_text, field",
    [
        ("model:\n  hidden_dimm: 64\n", "hidden_dimm"),  # unknown key
        ("model:\n  hidden_dim: sixty-four\n", "model.hidden_dim"),  # wrong type
        ("trainer:\n  num_train_steps: [1, 2]\n", "trainer.num_train_steps"),  # wrong type, nested
        ("model:\n  hidden_dim: 64\n  num_heads: 3\n", "model.num_heads"),  # impossible shape
        ("model:\n  patch_size: 5\n", "model.patch_size"),
        ("data:\n  source: cifar\n", "data.source"),
    ],
)
def test_bad_config_names_the_field(tmp_path, yaml_text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises((draccus.utils.DecodingError, draccus.utils.ParsingError, ValueError)) as info:
        parse_config(TrainClassifierConfig, path)
    assert field in _error_chain(info.value)


def test_command_line_override_wins_over_yaml():
    config = parse_config(TrainClassifierConfig, CONFIGS / "common/vit_mnist_tiny.yaml", ["--model.num_layers", "2"])
    assert config.model.num_layers == 2
