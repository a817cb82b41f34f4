"""Every fusion YAML parses into its entry point's config and builds abstract models of the paper's size."""

import fnmatch
from pathlib import Path

import draccus
import pytest
from levanter.utils.jax_utils import parameter_count

from common_jax.launch import parse_config
from common_jax.main.train_classifier import TrainClassifierConfig
from common_jax.main.train_classifier import abstract_model as abstract_parent
from fusion_jax.entrypoints import abstract_bert_parent, abstract_fusion_parents
from fusion_jax.main.fuse import FuseJobConfig
from fusion_jax.main.train_bert import TrainBertConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
YAMLS = sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "fusion").rglob("*.yaml"))
ENTRYPOINTS = {
    "fusion/parents/vit_*.yaml": (TrainClassifierConfig, abstract_parent),
    "fusion/tiny_mnist.yaml": (FuseJobConfig, abstract_fusion_parents),
    "fusion/vit_*.yaml": (FuseJobConfig, abstract_fusion_parents),
    "fusion/parents/bert_*.yaml": (TrainBertConfig, abstract_bert_parent),
    "fusion/bert_*.yaml": (FuseJobConfig, abstract_fusion_parents),
}


def _entry(relative):
    matches = [v for pattern, v in ENTRYPOINTS.items() if fnmatch.fnmatch(relative, pattern)]
    assert len(matches) == 1, relative
    return matches[0]


def vit_parameters(image: int, patch: int, channels: int, classes: int, d: int, layers: int, mlp: int) -> int:
    """Closed-form ViT parameter count: patch projection, CLS, positions, blocks, final LN, head."""
    tokens = (image // patch) ** 2 + 1
    block = 2 * 2 * d + 4 * (d * d + d) + (d * mlp + mlp) + (mlp * d + d)
    return (patch * patch * channels * d + d) + d + tokens * d + layers * block + 2 * d + (d * classes + classes)


@pytest.mark.parametrize("relative", YAMLS)
def test_fusion_yaml_parses_and_builds(relative):
    config_cls, build = _entry(relative)
    config = parse_config(config_cls, CONFIGS / relative)
    assert parameter_count(build(config)) > 0


@pytest.mark.parametrize("name, image, classes, expected", [
    ("vit_cifar10", 32, 10, 12_470_026), ("vit_cifar100", 32, 100, 12_504_676),
    ("vit_tinyimagenet", 64, 200, 12_616_904),
])
def test_paper_vit_parameter_counts(name, image, classes, expected):
    """Hidden 384, patch 4, 7 layers (spec §15.1), MLP 1536: the fused models and both parents."""
    assert vit_parameters(image, 4, 3, classes, 384, 7, 1536) == expected
    fuse_config = parse_config(FuseJobConfig, CONFIGS / f"fusion/{name}.yaml")
    assert [parameter_count(m) for m in abstract_fusion_parents(fuse_config)] == [expected, expected]
    parent = parse_config(TrainClassifierConfig, CONFIGS / f"fusion/parents/{name}.yaml")
    assert parameter_count(abstract_parent(parent)) == expected


def test_tiny_parent_parameter_count_and_yamls_agree():
    parent = parse_config(TrainClassifierConfig, CONFIGS / "fusion/parents/vit_mnist_tiny.yaml")
    fusion = parse_config(FuseJobConfig, CONFIGS / "fusion/tiny_mnist.yaml")
    assert all(p == parent.model for p in fusion.task.parents)
    assert parameter_count(abstract_parent(parent)) == vit_parameters(28, 7, 1, 10, 64, 3, 128) == 105_546


def bert_parameters(vocab: int, positions: int, types: int, d: int, layers: int, mlp: int) -> int:
    """Closed-form BERT MLM count: three tables + LN, blocks, transform + LN, vocabulary bias (tied decoder)."""
    block = 4 * (d * d + d) + 2 * 2 * d + (d * mlp + mlp) + (mlp * d + d)
    return (vocab + positions + types) * d + 2 * d + layers * block + (d * d + d) + 2 * d + vocab


@pytest.mark.parametrize("name, kind, expected", [
    ("parents/bert_enwiki_tiny", TrainBertConfig, 4_355_258), ("parents/bert_mlm", TrainBertConfig, 66_987_066),
    ("bert_mlm_tiny", FuseJobConfig, 4_355_258), ("bert_mlm", FuseJobConfig, 66_987_066),
])
def test_bert_parameter_counts(name, kind, expected):
    config = parse_config(kind, CONFIGS / f"fusion/{name}.yaml")
    models = [abstract_bert_parent(config)] if kind is TrainBertConfig else abstract_fusion_parents(config)
    model_config = models[0].config
    assert bert_parameters(model_config.vocab_size, model_config.max_position, model_config.type_vocab_size,
                           model_config.hidden_dim, model_config.num_layers, model_config.mlp_dim) == expected
    assert all(parameter_count(m) == expected for m in models)


@pytest.mark.parametrize("override, field", [
    (["--fusion.qk_fusion", "both"], "fusion.qk_fusion"),
    (["--fusion.sinkhorn.reg", "0"], "fusion.sinkhorn.reg"),
    (["--fusion.acts.seq_filter", "middle"], "fusion.acts.seq_filter"),
    (["--anchor", "5"], "anchor"),
    (["--checkpoints", "[a]"], "checkpoints"),
    (["--eval.reg_sweep", "[0.1,-1]"], "eval.reg_sweep"),
])
def test_bad_fusion_config_names_the_field(override, field):
    with pytest.raises((ValueError, draccus.utils.DecodingError, draccus.utils.ParsingError)) as info:
        parse_config(FuseJobConfig, CONFIGS / "fusion/tiny_mnist.yaml", override)
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert field in " | ".join(chain)
