"""The shared ViT: patch order, shapes, parameter count, per-example independence, config errors."""

import haliax as hax
import jax
import numpy as np
import pytest
from levanter.utils.jax_utils import parameter_count

from common_jax.models import ViTConfig, patchify

CONFIG = ViTConfig(image_size=8, patch_size=4, num_channels=3, num_classes=5, hidden_dim=16, num_layers=2,
                   num_heads=2, mlp_dim=24)


def test_patchify_matches_the_einops_layout():
    x = np.arange(2 * 8 * 12 * 3, dtype=np.float32).reshape(2, 8, 12, 3)
    patches = patchify(hax.named(x, ("batch", "height", "width", "channel")), 4)
    # b (h p1) (w p2) c -> b (h w) (p1 p2 c)
    expected = x.reshape(2, 2, 4, 3, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 48)
    assert [ax.name for ax in patches.axes] == ["batch", "position", "patch"]
    np.testing.assert_array_equal(patches.array, expected)


def test_parameter_count_matches_the_formula():
    d, m, layers, p, c, k = 16, 24, 2, 4, 3, 5
    tokens = (8 // p) ** 2 + 1
    per_block = 4 * (d * d + d) + (d * m + m) + (m * d + d) + 4 * d
    expected = (p * p * c * d + d) + d + tokens * d + layers * per_block + 2 * d + (d * k + k)
    model = CONFIG.build(key=jax.random.PRNGKey(0))
    assert parameter_count(model) == expected


def test_forward_shape_and_examples_are_independent():
    model = CONFIG.build(key=jax.random.PRNGKey(0))
    images = hax.random.normal(jax.random.PRNGKey(1), (hax.Axis("batch", 3), hax.Axis("height", 8),
                                                        hax.Axis("width", 8), hax.Axis("channel", 3)))
    logits = model(images)
    assert logits.axes == (hax.Axis("batch", 3), CONFIG.Classes)
    single = model(images["batch", 1])
    np.testing.assert_allclose(logits["batch", 1].array, single.array, rtol=1e-5, atol=1e-6)


def test_mean_pooling_and_dropout_need_a_key_only_in_training():
    config = ViTConfig(image_size=8, patch_size=4, num_channels=1, num_classes=3, hidden_dim=8, num_layers=1,
                       num_heads=2, mlp_dim=8, pool="mean", dropout=0.5)
    model = config.build(key=jax.random.PRNGKey(0))
    images = hax.ones((hax.Axis("height", 8), hax.Axis("width", 8), hax.Axis("channel", 1)))
    import equinox as eqx

    infer = eqx.nn.inference_mode(model)
    np.testing.assert_array_equal(infer(images).array, infer(images).array)
    train = eqx.nn.inference_mode(model, False)
    a, b = train(images, key=jax.random.PRNGKey(1)), train(images, key=jax.random.PRNGKey(2))
    assert not np.allclose(a.array, b.array)


@pytest.mark.parametrize("pool, cls_matters", [("cls", True), ("mean", True), ("mean_patches", False)])
def test_mean_patches_pooling_excludes_the_cls_token(pool, cls_matters):
    import dataclasses

    import equinox as eqx

    config = dataclasses.replace(CONFIG, num_layers=1, pool=pool)
    model = config.build(key=jax.random.PRNGKey(0))
    images = hax.random.normal(jax.random.PRNGKey(1), (hax.Axis("height", 8), hax.Axis("width", 8),
                                                        hax.Axis("channel", 3)))
    # with no attention, the cls token reaches the logits only through pooling
    no_attention = eqx.tree_at(lambda m: m.blocks.stacked.attn.o_proj.weight, model,
                               replace_fn=lambda w: w * 0)
    moved_cls = eqx.tree_at(lambda m: m.cls_token, no_attention, replace_fn=lambda c: c + 3.0)
    changed = not np.allclose(no_attention(images).array, moved_cls(images).array)
    assert changed == cls_matters


@pytest.mark.parametrize(
    "kwargs, field",
    [(dict(hidden_dim=10, num_heads=4), "num_heads"), (dict(image_size=30, patch_size=4), "patch_size"),
     (dict(pool="max"), "pool"), (dict(num_layers=0), "num_layers"), (dict(dropout=1.0), "dropout")],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"model.{field}"):
        ViTConfig(**kwargs)
