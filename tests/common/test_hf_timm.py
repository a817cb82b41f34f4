"""timm VisionTransformer sources (common_jax.hf, ``timm:DIR`` in timm's hub layout): logits equal timm's forward
for CLS and patch-mean pooling, the import exports to an HF ViT that transformers runs to the same logits, and every
architecture option the project ViT cannot express is named."""

import pytest

from common_jax.hf import TensorMismatchError, UnsupportedConfigError, load_pretrained, save_pretrained

from .hf_checkpoints import (
    TOLERANCE,
    assert_bit_exact,
    assert_parity,
    edited_copy,
    forward,
    max_diff,
    nchw_images,
    nhwc,
    spread_weights,
)

timm = pytest.importorskip("timm")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SIZES = dict(img_size=8, patch_size=4, in_chans=3, embed_dim=16, depth=2, num_heads=2, mlp_ratio=1.5, num_classes=5)


def timm_folder(folder, **overrides):
    """A random timm ViT saved as timm's ``save_for_hf`` writes it (config.json with architecture and model_args)."""
    from timm.models import save_for_hf

    args = {**SIZES, **overrides}
    model = spread_weights(timm.create_model("vit_tiny_patch16_224", pretrained=False, **args))
    save_for_hf(model, str(folder), model_args=args, safe_serialization=True)
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("timm_vit")
    return folder, timm_folder(folder)


def test_cls_pooled_timm_vit_matches_timm_and_exports_to_an_hf_vit(checkpoint, tmp_path):
    folder, timm_model = checkpoint
    images = nchw_images()
    reference = timm_model(torch.tensor(images)).detach().numpy()
    model = load_pretrained(f"timm:{folder}")
    assert (model.config.pool, model.config.activation, model.config.layer_norm_eps) == ("cls", "gelu", 1e-6)
    assert_parity("timm VisionTransformer (CLS pooling)", forward(model, nhwc(images)), reference)
    save_pretrained(model, tmp_path / "hf")
    hf_vit = transformers.AutoModelForImageClassification.from_pretrained(tmp_path / "hf").eval()
    assert max_diff(hf_vit(torch.tensor(images)).logits.detach().numpy(), reference) <= TOLERANCE
    assert_bit_exact(load_pretrained(tmp_path / "hf"), model)


def test_patch_mean_pooled_timm_vit_matches_timm_and_has_no_hf_export(tmp_path):
    timm_model = timm_folder(tmp_path / "avg", global_pool="avg", act_layer="quick_gelu")
    model = load_pretrained(f"timm:{tmp_path / 'avg'}")
    assert (model.config.pool, model.config.activation) == ("mean_patches", "quick_gelu")
    images = nchw_images()
    assert_parity("timm VisionTransformer (patch-mean pooling, QuickGELU)", forward(model, nhwc(images)),
                  timm_model(torch.tensor(images)).detach().numpy())
    with pytest.raises(UnsupportedConfigError, match="model.pool"):
        save_pretrained(model, tmp_path / "hf")


@pytest.mark.parametrize("overrides, field", [
    (dict(init_values=1e-5), "init_values"), (dict(reg_tokens=1), "reg_tokens"), (dict(qkv_bias=False), "qkv_bias"),
    (dict(global_pool="map"), "global_pool"), (dict(no_embed_class=True), "no_embed_class"),
    (dict(global_pool="avg", fc_norm=False), "fc_norm"), (dict(qk_norm=True), "qk_norm"),
    (dict(pre_norm=True), "pre_norm"), (dict(class_token=False, global_pool="avg"), "class_token"),
])
def test_inexpressible_timm_options_are_named(tmp_path, overrides, field):
    timm_folder(tmp_path, **overrides)
    with pytest.raises(UnsupportedConfigError, match=field) as error:
        load_pretrained(f"timm:{tmp_path}")
    assert error.value.field == field


def test_bad_timm_sources_are_named(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="timm:no_such_vit is not a folder, and timm could not create it"):
        load_pretrained("timm:no_such_vit")
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "model.safetensors").write_bytes((checkpoint[0] / "model.safetensors").read_bytes())
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_pretrained(f"timm:{tmp_path / 'bare'}")


@pytest.mark.parametrize("edit, named", [
    (dict(drop="blocks.1.attn.qkv.weight"), r"lacks .*blocks\.1\.attn\.qkv\.weight"),
    (dict(add="blocks.0.extra"), r"unexpected .*blocks\.0\.extra"),
    (dict(reshape="blocks.0.mlp.fc1.bias"), r"blocks\.0\.mlp\.fc1\.bias: found \(23,\), expected \(24,\)"),
])
def test_missing_extra_and_misshaped_tensors_are_named(checkpoint, tmp_path, edit, named):
    with pytest.raises(TensorMismatchError, match=named):
        load_pretrained(f"timm:{edited_copy(checkpoint[0], tmp_path, **edit)}")
