"""Every configs/nfn YAML parses into its entry point's config and builds an abstract model; paper parameter counts."""

from pathlib import Path

import draccus
import jax
import pytest
from levanter.utils.jax_utils import parameter_count

from common_jax.launch import parse_config
from nfn_jax.config import TrainPredictorConfig, ZooConfig, abstract_predictor, abstract_zoo_member

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "nfn"
ZOO_YAMLS = ["mnist_full.yaml", "agnews_full.yaml", "tiny_mnist.yaml"]
PREDICTOR_YAMLS = ["nfn_tiny.yaml", "nfn_mnist_paper.yaml", "nfn_agnews_paper.yaml"]


def _count(tree) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(tree))


def test_every_yaml_is_covered():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(ZOO_YAMLS + PREDICTOR_YAMLS)


@pytest.mark.parametrize("name", ZOO_YAMLS)
def test_zoo_yamls(name):
    config = parse_config(ZooConfig, CONFIGS / name)
    shapes = abstract_zoo_member(config)
    if name == "mnist_full.yaml":
        assert _count(shapes) == 18_506  # nfn.md §5.1
        assert len(config.runs()) == 16_000  # two sweeps of 8,000 (nfn.md §5.3)
    if name == "agnews_full.yaml":
        assert _count(shapes) == 18_506 - 544 and len(config.runs()) == 16_000  # embedding frozen, not stored
    if name == "tiny_mnist.yaml":
        assert len(config.runs()) == 256 and all(len(c) <= config.chunk_size for c in config.chunks())


@pytest.mark.parametrize("name", PREDICTOR_YAMLS)
def test_predictor_yamls(name):
    config = parse_config(TrainPredictorConfig, CONFIGS / name)
    model = abstract_predictor(config)
    if name == "nfn_mnist_paper.yaml":
        assert parameter_count(model) == 1_812_181  # nfn.md §4
        assert parameter_count(model.encoder.equivariant[0][0]) == 783_820
        assert parameter_count(model.encoder.invariant[0]) == 112_210
        # the reference's baselines (InvariantNFN with enc/cls modes mlp or statnn), counted from its layer sizes:
        # MLP 16,576 -> 10 -> 10, 1,386 -> 10 -> 10 -> 10, 544 -> 10, 30 -> 1; STATNN 112 -> 10 -> 10, 28 -> 10 -> 10
        for model_type, count in (("mlp", 185_451), ("statnn", 7_121)):
            baseline = parse_config(TrainPredictorConfig, CONFIGS / name, ["--model.type", model_type])
            assert parameter_count(abstract_predictor(baseline)) == count, model_type


def _error_chain(err: BaseException) -> str:
    parts = []
    while err is not None:
        parts.append(str(err))
        err = err.__cause__ or err.__context__
    return " | ".join(parts)


@pytest.mark.parametrize("cls,yaml,overrides,field", [
    (TrainPredictorConfig, "nfn_tiny.yaml", ["--model.enc_mode", "graph"], "model.enc_mode"),
    (TrainPredictorConfig, "nfn_tiny.yaml", ["--model.weight_space.h", "0"], "weight_space.h"),
    (TrainPredictorConfig, "nfn_tiny.yaml", ["--model.encoder_channels", "[]"], "encoder_channels"),
    (TrainPredictorConfig, "nfn_tiny.yaml", ["--cut_off", "1.5"], "cut_off"),
    (ZooConfig, "tiny_mnist.yaml", ["--architecture.num_heads", "3"], "num_heads"),
    (ZooConfig, "tiny_mnist.yaml", ["--sweeps", "[{optimizers: [lbfgs]}]"], "optimizers"),
])
def test_bad_configs_name_the_field(cls, yaml, overrides, field):
    with pytest.raises((draccus.utils.DecodingError, draccus.utils.ParsingError, ValueError)) as info:
        parse_config(cls, CONFIGS / yaml, overrides)
    assert field in _error_chain(info.value)
