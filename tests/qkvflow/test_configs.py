"""Spec §9 test 8 (parameter counts, every row of §1.7, exact) and the YAML launches of configs/qkvflow/."""

from pathlib import Path

import draccus
import equinox as eqx
import jax
import pytest
from haliax import Axis
from levanter.models.gpt2 import Gpt2Config
from levanter.models.llama import LlamaConfig

from common_jax.launch import parse_config
from qkvflow_jax import DiffEqFormerConfig, DiffEqFormerLlamaConfig, abstract_lm
from qkvflow_jax.main.finetune import FinetuneConfig
from qkvflow_jax.main.train import TrainLmConfig
from qkvflow_jax.units import count_parameters

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "qkvflow"


def _count(config, vocab: int) -> int:
    abstract = eqx.filter_eval_shape(lambda: config.build(Axis("vocab", vocab), key=jax.random.PRNGKey(0)))
    return count_parameters(abstract)


@pytest.mark.parametrize("D,L,H,d,K,expected_ode,expected_gpt", [
    (768, 12, 12, 20, 128, 188_254_152, 124_439_808),
    (1024, 24, 16, 48, 128, 669_803_872, 354_823_168),
    (1024, 24, 16, 96, 128, 1_274_538_688, 354_823_168),
    (1024, 24, 16, 144, 512, 1_879_964_704, 354_823_168),
    (1024, 18, 16, 100, 256, 1_325_088_104, 279_245_824),
    (1280, 36, 20, 96, 128, 1_974_541_760, 774_030_080),
    (1280, 36, 20, 48, 128, 1_029_908_576, 774_030_080),
    (1280, 36, 20, 144, 128, 2_919_202_592, 774_030_080),
])
def test_gpt_variant_parameter_counts(D, L, H, d, K, expected_ode, expected_gpt):
    ode = DiffEqFormerConfig(hidden_dim=D, num_layers=L, num_heads=H, time_embed_dim=d, sinusoidal_dim=K)
    assert _count(ode, 50257) == expected_ode
    assert _count(Gpt2Config(hidden_dim=D, num_layers=L, num_heads=H), 50257) == expected_gpt


def test_llama_and_tiny_parameter_counts():
    for d, expected in ((20, 1_540_620_332), (96, 6_641_948_192)):
        assert _count(DiffEqFormerLlamaConfig(time_embed_dim=d), 32000) == expected
    llama = LlamaConfig(max_seq_len=2048, hidden_dim=2048, intermediate_dim=8192, num_layers=16, num_heads=16,
                        num_kv_heads=16)
    assert _count(llama, 32000) == 1_204_881_408
    tiny = DiffEqFormerConfig(max_seq_len=64, hidden_dim=64, num_layers=4, num_heads=4, time_embed_dim=8,
                              sinusoidal_dim=8)
    assert _count(tiny, 256) == 470_928
    assert _count(Gpt2Config(max_seq_len=64, hidden_dim=64, num_layers=4, num_heads=4), 256) == 220_544


# full paper configs: (yaml, parameter count at the config's own vocabulary)
PAPER_COUNTS = {
    "owt/small.yaml": 188_254_152, "owt/medium.yaml": 1_274_538_688, "owt/large.yaml": 1_974_541_760,
    "wikitext/small.yaml": 188_254_152, "wikitext/medium.yaml": 669_803_872,
    "finetune/pretrain_wiki.yaml": 1_325_088_104, "finetune/pretrain_owt.yaml": 1_325_088_104,
    "owt/llama_1b.yaml": 6_641_948_192, "owt/llama_1b_baseline.yaml": 1_204_881_408,
    "owt/gpt2_small.yaml": 124_439_808, "owt/gpt2_medium.yaml": 354_823_168, "owt/gpt2_large.yaml": 774_030_080,
    "wikitext/gpt2_small.yaml": 124_439_808, "wikitext/gpt2_medium.yaml": 354_823_168,
}


@pytest.mark.parametrize("yaml", sorted(PAPER_COUNTS))
def test_paper_yaml_parses_and_counts(yaml):
    config = parse_config(TrainLmConfig, CONFIGS / yaml)
    assert count_parameters(abstract_lm(config)) == PAPER_COUNTS[yaml]


def test_every_train_yaml_builds_an_abstract_model():
    train_yamls = sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name != "finetune" or "pretrain" in p.name)
    assert len(train_yamls) >= 18
    for path in train_yamls:
        abstract_lm(parse_config(TrainLmConfig, path))


def _error_chain(exc: BaseException | None) -> str:
    texts = []
    while exc is not None:
        texts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " | ".join(texts)


@pytest.mark.parametrize("yaml,overrides,field", [
    ("tiny.yaml", ["--model.solver.name", "rk4"], "model.solver.name"),
    ("owt/small.yaml", ["--model.solver.name", "tsit5"], "model.embed_pdrop"),
    ("tiny.yaml", ["--model.num_heads", "3"], "model.num_heads"),
])
def test_bad_yaml_override_names_the_field(yaml, overrides, field):
    with pytest.raises((draccus.utils.ParsingError, draccus.utils.DecodingError, ValueError)) as info:
        parse_config(TrainLmConfig, CONFIGS / yaml, overrides)
    assert field in _error_chain(info.value)


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="model.num_heads"):
        DiffEqFormerConfig(hidden_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="model.time_grid"):
        DiffEqFormerConfig(time_grid="chebyshev")


@pytest.mark.parametrize("yaml", ["finetune/tiny.yaml", "finetune/wiki_owt.yaml", "finetune/owt_wiki.yaml"])
def test_finetune_yaml_parses_and_builds_the_pretrained_model(yaml):
    config = parse_config(FinetuneConfig, CONFIGS / yaml)
    expected = 470_992 if yaml == "finetune/tiny.yaml" else 1_325_088_104  # tiny: V = 257 bytes
    assert count_parameters(abstract_lm(config)) == expected
    with pytest.raises((draccus.utils.ParsingError, draccus.utils.DecodingError, ValueError)) as info:
        parse_config(FinetuneConfig, CONFIGS / yaml, ["--finetune_mode", "prefix"])
    assert "finetune_mode" in _error_chain(info.value)
