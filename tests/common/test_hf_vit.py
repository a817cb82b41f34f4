"""HF ViT in and out (common_jax.hf): logits equal the torch forward, export reloads in transformers, the round
trip is bit-exact, and bad tensors / inexpressible fields are named."""

import dataclasses

import haliax as hax
import numpy as np
import pytest
from scipy.special import erf

from common_jax.hf import TensorMismatchError, UnsupportedConfigError, load_pretrained, save_pretrained
from common_jax.models import ViTConfig

from .hf_checkpoints import (
    TOLERANCE,
    assert_bit_exact,
    assert_parity,
    edited_copy,
    forward,
    max_diff,
    mlp_activation,
    nchw_images,
    nhwc,
    random_project_model,
    spread_weights,
)

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

SIZES = dict(image_size=8, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=24, layer_norm_eps=1e-12)


def hf_vit(folder, **overrides):
    config = transformers.ViTConfig(**{**SIZES, "num_labels": 5, **overrides})
    model = spread_weights(transformers.ViTForImageClassification(config))
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_vit")
    return folder, hf_vit(folder)


def test_imported_vit_matches_the_torch_forward(checkpoint):
    folder, torch_model = checkpoint
    images = nchw_images()
    model = load_pretrained(f"hf:{folder}")
    assert model.config.activation == "gelu" and model.config.layer_norm_eps == 1e-12
    reference = torch_model(torch.tensor(images)).logits.detach().numpy()
    assert_parity("HF ViTForImageClassification", forward(model, nhwc(images)), reference)


def test_a_bfloat16_checkpoint_loads_its_exact_values(tmp_path):
    torch_model = hf_vit(tmp_path / "f32").to(torch.bfloat16)
    torch_model.save_pretrained(tmp_path / "bf16")
    model = load_pretrained(tmp_path / "bf16")
    images = nchw_images()
    reference = torch_model.float()(torch.tensor(images)).logits.detach().numpy()  # the bfloat16 weights, exactly
    assert max_diff(forward(model, nhwc(images)), reference) <= TOLERANCE


def test_export_reloads_in_transformers_and_round_trips_bit_exactly(checkpoint, tmp_path):
    folder, torch_model = checkpoint
    images = nchw_images()
    model = load_pretrained(folder)
    save_pretrained(model, tmp_path / "out")
    reloaded = transformers.AutoModelForImageClassification.from_pretrained(tmp_path / "out").eval()
    reference = torch_model(torch.tensor(images)).logits.detach().numpy()
    assert max_diff(reloaded(torch.tensor(images)).logits.detach().numpy(), reference) == 0.0
    assert_bit_exact(load_pretrained(tmp_path / "out"), model)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_pretrained(model, tmp_path / "out")


def test_project_trained_vit_exports_with_its_tanh_gelu(tmp_path):
    config = ViTConfig(image_size=8, patch_size=4, num_channels=3, num_classes=4, hidden_dim=16, num_layers=2,
                       num_heads=2, mlp_dim=24)
    model = random_project_model(config)
    save_pretrained(model, tmp_path / "out")
    reloaded = transformers.AutoModelForImageClassification.from_pretrained(tmp_path / "out").eval()
    assert reloaded.config.hidden_act == "gelu_pytorch_tanh"
    images = nchw_images()
    assert max_diff(forward(model, nhwc(images)), reloaded(torch.tensor(images)).logits.detach().numpy()) <= TOLERANCE
    mean_pooled = dataclasses.replace(model, config=dataclasses.replace(config, pool="mean"))
    with pytest.raises(UnsupportedConfigError, match="model.pool"):
        save_pretrained(mean_pooled, tmp_path / "mean")


def test_vit_model_is_headless_and_its_pooler_is_dropped_only_on_request(tmp_path):
    base = spread_weights(transformers.ViTModel(transformers.ViTConfig(**SIZES)))  # with the dense+tanh pooler
    base.save_pretrained(tmp_path)
    with pytest.raises(TensorMismatchError, match="pooler.dense.weight"):
        load_pretrained(tmp_path)
    model = load_pretrained(tmp_path, ignore=("pooler.",))
    assert model.config.num_classes == 0 and model.head is None
    images = nchw_images()
    cls = base(torch.tensor(images)).last_hidden_state[:, 0].detach().numpy()
    assert_parity("HF ViTModel (CLS features)", forward(model, nhwc(images)), cls)
    save_pretrained(model, tmp_path / "out")
    reloaded = transformers.ViTModel.from_pretrained(tmp_path / "out", add_pooling_layer=False).eval()
    assert max_diff(reloaded(torch.tensor(images)).last_hidden_state[:, 0].detach().numpy(), cls) == 0.0


@pytest.mark.parametrize("edit, named", [
    (dict(drop="vit.encoder.layer.1.attention.attention.key.bias"), r"lacks .*layer\.1\.attention\.attention\.key"),
    (dict(add="vit.encoder.layer.0.extra"), r"unexpected .*vit\.encoder\.layer\.0\.extra"),
    (dict(reshape="vit.encoder.layer.0.intermediate.dense.weight"),
     r"intermediate\.dense\.weight: found \(23, 16\), expected \(24, 16\)"),
])
def test_missing_extra_and_misshaped_tensors_are_named(checkpoint, tmp_path, edit, named):
    with pytest.raises(TensorMismatchError, match=named):
        load_pretrained(edited_copy(checkpoint[0], tmp_path, **edit))


@pytest.mark.parametrize("overrides, field", [
    (dict(qkv_bias=False), "qkv_bias"), (dict(hidden_act="gelu_fast"), "hidden_act"),
    (dict(image_size=[8, 12]), "image_size"), (dict(attention_probs_dropout_prob=0.1), "attention_probs_dropout_prob"),
])
def test_inexpressible_config_fields_are_named(tmp_path, overrides, field):
    hf_vit(tmp_path, **overrides)
    with pytest.raises(UnsupportedConfigError, match=field) as error:
        load_pretrained(tmp_path)
    assert error.value.field == field


def test_activation_field_default_is_the_tanh_gelu_the_vit_always_used():
    x = np.linspace(-4, 4, 101, dtype=np.float32)
    tanh_gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    erf_gelu = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    act = {name: mlp_activation(ViTConfig(activation=name)) for name in ("gelu_tanh", "gelu")}
    assert mlp_activation(ViTConfig()) is act["gelu_tanh"] is hax.nn.gelu  # haliax's default: approximate=True
    np.testing.assert_allclose(act["gelu_tanh"](hax.named(x, "mlp")).array, tanh_gelu, atol=1e-6)
    np.testing.assert_allclose(act["gelu"](hax.named(x, "mlp")).array, erf_gelu, atol=1e-6)
    assert np.max(np.abs(tanh_gelu - erf_gelu)) > 1e-4
    with pytest.raises(ValueError, match="model.activation"):
        ViTConfig(activation="swish")
