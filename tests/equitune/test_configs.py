"""Every configs/equitune YAML parses into its entry point's config and builds an abstract model; parameter
counts equal the closed-form counts; bad configs fail with an error naming the field."""

import math
from pathlib import Path

import equinox as eqx
import jax
import pytest

from common_jax.launch import parse_config
from equitune_jax.config import (
    ENTRYPOINTS,
    ClipZeroshotConfig,
    MultiViewConfig,
    ScanConfig,
    Seq2SeqConfig,
    ViewModelConfig,
    abstract_clip,
    abstract_multi_view,
    abstract_scan,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _count(tree) -> int:
    arrays = eqx.filter(tree, lambda x: isinstance(x, jax.Array | jax.ShapeDtypeStruct))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(arrays))


# the published architectures' sizes: GPT-2 small and CLIP ViT-B/32 (text + vision towers, projections, logit scale)
VIT_B32_CLIP, VIT_B16_CLIP = 151_277_313, 149_620_737
KNOWN_COUNTS = {"gpt2_fairness.yaml": 124_439_808, "clip_zeroshot.yaml": VIT_B32_CLIP,
                "clip_cifar100.yaml": VIT_B32_CLIP, "clip_imagenetv2.yaml": VIT_B32_CLIP}


@pytest.mark.parametrize("yaml", sorted(p.name for p in (CONFIGS / "equitune").glob("*.yaml")))
def test_every_yaml_parses_and_builds(yaml):
    matches = [(cls, build) for pattern, (cls, build) in ENTRYPOINTS.items()
               if Path(yaml).match(pattern.split("/")[-1])]
    assert len(matches) == 1, yaml
    cls, build = matches[0]
    config = parse_config(cls, CONFIGS / "equitune" / yaml)
    count = _count(build(config))
    assert count == KNOWN_COUNTS.get(yaml, count) and count > 0


def test_multi_view_parameter_counts():
    config = parse_config(MultiViewConfig, CONFIGS / "equitune" / "multi_view.yaml")
    m = config.model
    side = math.ceil(math.ceil(m.image_size / 2) / 2)
    encoder = (9 * m.num_channels * m.width + m.width) + (9 * m.width * m.width + m.width) \
        + (side * side * m.width * m.features + m.features)
    head = (2 * m.features * m.hidden + m.hidden) + (m.hidden * m.num_classes + m.num_classes)
    models = abstract_multi_view(config)
    assert _count(models["cnn"]) == encoder + head
    assert _count(models["design1"]) == 2 * encoder + head + 1  # φ, ψ, head and the coupling c


def test_clip_vit_b16_parameter_count():
    config = parse_config(ClipZeroshotConfig, CONFIGS / "equitune" / "clip_cifar100.yaml",
                          ["--model_path", "openai/clip-vit-base-patch16"])
    assert _count(abstract_clip(config)) == VIT_B16_CLIP


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_scan_reference_parameter_count(cell):
    """The reference's BasicSeq2Seq (without its two unread tensors): encoder embedding(vin, 64) + a bidirectional
    cell 64 -> 64; decoder embedding(vout, 128), attn_combine 256 -> 128, cell 128 -> 128, out 128 -> vout."""
    config = parse_config(ScanConfig, CONFIGS / "equitune" / "scan_reference.yaml", ["--model.cell", cell])
    vin, vout, h = 17, 11, 64
    cell_params = {"gru": lambda i, o: 3 * o * (i + o) + 4 * o, "lstm": lambda i, o: 4 * o * (i + o) + 4 * o,
                   "rnn": lambda i, o: o * (i + o) + 2 * o}[cell]
    expected = vin * h + 2 * cell_params(h, h) + vout * 2 * h + (4 * h * 2 * h + 2 * h) + cell_params(2 * h, 2 * h) \
        + (2 * h * vout + vout)
    assert _count(abstract_scan(config)) == expected


def test_scan_gru_parameter_count():
    config = parse_config(ScanConfig, CONFIGS / "equitune" / "scan.yaml")
    e, h, vin, vout = config.model.embed_dim, config.model.hidden, 17, 11
    gru = lambda i, hid: 3 * hid * (i + hid) + 4 * hid
    expected = vin * e + 2 * gru(e, h) + vout * e + gru(e, 2 * h) + (4 * h * 2 * h + 2 * h) + (2 * h * vout + vout)
    assert _count(abstract_scan(config)) == expected


@pytest.mark.parametrize("cls,args,field", [
    (MultiViewConfig, ["--groups", "[rot90, spin]"], "groups"),
    (MultiViewConfig, ["--models", "[cnn, vit]"], "models"),
    (MultiViewConfig, ["--model.width", "0"], "model.width"),
    (MultiViewConfig, ["--model.arch", "resnet"], "model.arch"),
    (MultiViewConfig, ["--model.arch", "paper", "--model.image_size", "8"], "model.image_size"),
    (MultiViewConfig, ["--data.source", "hf", "--data.name", "x", "--data.image_size", "32"], "data.image_size"),
    (MultiViewConfig, ["--augment.random_crop_padding", "4", "--augment.random_resized_crop", "true"],
     "augment.random_crop_padding"),
    (MultiViewConfig, ["--model.dropout", "1.0"], "model.dropout"),
    (ScanConfig, ["--model.type", "lstm"], "model.type"),
    (ScanConfig, ["--groups.representatives", "{verb: walk, rl: right, ud: up}"], "groups.representatives.verb"),
    (ScanConfig, ["--data.variant", "scan3"], "data.variant"),
    (ScanConfig, ["--model.type", "transformer", "--model.num_heads", "5"], "model.num_heads"),
    (ScanConfig, ["--model.cell", "mamba"], "model.cell"),
    (ScanConfig, ["--model.decoder", "bahdanau"], "model.decoder"),
    (ScanConfig, ["--decode_mode", "beam"], "decode_mode"),
    (ScanConfig, ["--pretrain.teacher_forcing_ratio", "1.5"], "teacher_forcing_ratio"),
    (ScanConfig, ["--finetune.token_loss", "max"], "token_loss"),
    (ScanConfig, ["--data.split", "length", "--reference_compat.scan_split", "true"], "reference_compat.scan_split"),
    (MultiViewConfig, ["--tuple_order", "random"], "tuple_order"),
    (MultiViewConfig, ["--model.fusion_rule", "max"], "model.fusion_rule"),
    (MultiViewConfig, ["--model.norm", "batch"], "model.norm"),
    (MultiViewConfig, ["--train_augment_groups", "[rot90]"], "train_augment_groups"),
    (ClipZeroshotConfig, ["--transforms", "[random]"], "transforms"),
    (ClipZeroshotConfig, ["--model_path", "RN50"], "model_path"),
    (ClipZeroshotConfig, ["--branch_weighting", "weighted"], "branch_weighting"),
    (ClipZeroshotConfig, ["--batch_size", "40"], "transform_batch"),
])
def test_bad_config_names_the_field(cls, args, field):
    yaml = {MultiViewConfig: "multi_view.yaml", ScanConfig: "scan.yaml", ClipZeroshotConfig: "clip_zeroshot.yaml"}[cls]
    with pytest.raises(Exception) as info:
        parse_config(cls, CONFIGS / "equitune" / yaml, args)
    messages, error = [], info.value
    while error is not None:  # draccus wraps the config's ValueError in a ParsingError
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    assert any(field in m for m in messages), messages


def test_config_classes_validate_directly():
    with pytest.raises(ValueError, match="model.hidden"):
        ViewModelConfig(hidden=0)
    with pytest.raises(ValueError, match="model.dropout"):
        Seq2SeqConfig(dropout=1.5)
