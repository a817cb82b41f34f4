"""Exact properties of the CRATE model (spec crate.md §8.1, 8.2, 8.4, 8.6)."""

import math

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from haliax import Axis
from levanter.utils.jax_utils import parameter_count

from crate_jax import Crate, CrateConfig
from crate_jax.model import CrateLayer, ista_step

KEY = jax.random.PRNGKey(0)
TINY = CrateConfig(image_size=8, patch_size=2, num_channels=1, num_classes=10, hidden_dim=64, num_heads=4,
                   num_layers=4)
E, At = Axis("embed", 6), Axis("atoms", 6)


def _ista_block(x: np.ndarray, D: np.ndarray, eta: float, lam: float) -> np.ndarray:
    """``ista_step(x, x, D)`` on plain arrays: x [n, d], D [d, d] (embed, atoms)."""
    n = Axis("position", x.shape[0])
    xa = hax.named(jnp.asarray(x), (n, E))
    out = ista_step(xa.rename({"embed": "atoms"}), xa, hax.named(jnp.asarray(D), (E, At)), eta, lam,
                    Embed="embed", Atoms="atoms")
    return np.asarray(out.rearrange((n, At)).array)


def test_tiny_parameter_count_matches_formula_and_spec():
    model = eqx.filter_eval_shape(TINY.build, key=KEY)
    assert parameter_count(model) == TINY.expected_parameter_count() == 52_818
    no_patch_ln = CrateConfig(**{**TINY.__dict__, "patch_ln": False})
    count = parameter_count(eqx.filter_eval_shape(no_patch_ln.build, key=KEY))
    assert count == no_patch_ln.expected_parameter_count() == 52_818 - 8


def test_orthogonal_dictionary_ista_is_the_nonnegative_lasso_minimiser():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        D, _ = np.linalg.qr(rng.normal(size=(6, 6)))
        x = rng.normal(size=(5, 6))
        lam = 0.1
        closed_form = np.maximum(x @ D - lam, 0.0)  # row form of ReLU(D^T z - lam)
        np.testing.assert_allclose(_ista_block(x, D, 1.0, lam), closed_form, atol=1e-14)
        # eta = 0.1: iterating ista_step from A_0 = x converges to the same minimiser
        n = Axis("position", 5)
        z = hax.named(jnp.asarray(x), (n, E))
        Dn = hax.named(jnp.asarray(D), (E, At))
        a = z.rename({"embed": "atoms"})
        for _ in range(300):
            a = ista_step(a, z, Dn, 0.1, lam, Embed="embed", Atoms="atoms")
        np.testing.assert_allclose(np.asarray(a.rearrange((n, At)).array), closed_form, atol=1e-13)


def test_identity_dictionary_ista_is_shifted_relu():
    x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(_ista_block(x, np.eye(6, dtype=np.float32), 0.1, 0.1), np.maximum(x - 0.01, 0),
                               atol=1e-7)


def test_ista_output_nonnegative_and_zero_exactly_where_preactivation_nonpositive():
    rng = np.random.default_rng(2)
    x, D = rng.normal(size=(7, 6)).astype(np.float32), rng.normal(size=(6, 6)).astype(np.float32)
    out = _ista_block(x, D, 0.1, 0.1)
    pre = x + 0.1 * (x @ D - (x @ D.T) @ D) - 0.01
    assert (out >= 0).all()
    clearly = np.abs(pre) > 1e-5
    np.testing.assert_array_equal((out == 0)[clearly], (pre <= 0)[clearly])
    assert (out == 0).any() and (out > 0).any()


def _layer(config, key=KEY):
    return CrateLayer.init(config, key=key)


def test_attention_rows_sum_to_one():
    layer = _layer(TINY)
    z = hax.random.normal(KEY, (Axis("batch", 2), Axis("position", 9), TINY.Embed))
    attn = layer.mssa.attention(layer.mssa.project(layer.ln1(z)))
    np.testing.assert_allclose(np.asarray(hax.sum(attn, "key_position").array), 1.0, atol=1e-6)


def test_single_head_identity_U_is_plain_self_attention():
    config = CrateConfig(hidden_dim=8, num_heads=1, num_layers=1, image_size=4, patch_size=2)
    mssa = _layer(config).mssa
    mssa = eqx.tree_at(lambda m: m.U.weight, mssa, hax.named(jnp.eye(8)[None], (config.Heads, config.HeadSize,
                                                                              config.Embed)))
    out_w = hax.named(jnp.eye(8)[:, None, :], (config.Embed, config.Heads, config.HeadSize))
    mssa = eqx.tree_at(lambda m: (m.out.weight, m.out.bias), mssa, (out_w, hax.zeros(config.Embed)))
    y = np.random.default_rng(3).normal(size=(5, 8)).astype(np.float32)
    mixed, _, _ = mssa(hax.named(jnp.asarray(y), (Axis("position", 5), config.Embed)))
    scores = y @ y.T / math.sqrt(8)
    probs = np.exp(scores - scores.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(mixed.rearrange(("position", "embed")).array), probs @ y, atol=1e-5)


def test_layer_is_token_permutation_equivariant():
    layer = _layer(TINY)
    n = Axis("position", 9)
    z = hax.random.normal(jax.random.PRNGKey(4), (n, TINY.Embed))
    perm = np.random.default_rng(5).permutation(9)
    out = np.asarray(layer(z).rearrange((n, TINY.Embed)).array)
    permuted = layer(hax.named(z.rearrange((n, TINY.Embed)).array[perm], (n, TINY.Embed)))
    np.testing.assert_allclose(np.asarray(permuted.rearrange((n, TINY.Embed)).array), out[perm], atol=1e-5)


def test_shared_U_gradient_is_the_sum_of_untied_qkv_gradients():
    layer = _layer(TINY)
    n = Axis("position", 9)
    y = hax.random.normal(jax.random.PRNGKey(6), (n, TINY.Embed))
    yv = y.rearrange((n, TINY.Embed)).array
    K, p = TINY.num_heads, TINY.HeadSize.size

    def tied(U):
        mixed, _, _ = eqx.tree_at(lambda m: m.U.weight, layer.mssa, U)(y)
        return jnp.sum(jnp.sin(mixed.array))

    def untied(Uq, Uk, Uv):  # [K*p, d] each, the torch layout; out projection as in the layer
        q, k, v = [(yv @ u.T).reshape(9, K, p).transpose(1, 0, 2) for u in (Uq, Uk, Uv)]
        attn = jax.nn.softmax(q @ k.transpose(0, 2, 1) / math.sqrt(p), axis=-1)
        o = (attn @ v).transpose(1, 0, 2).reshape(9, K * p)
        W = layer.mssa.out.weight.rearrange(("embed", "heads", "head_size")).array.reshape(-1, K * p)
        mixed = o @ W.T + layer.mssa.out.bias.array
        return jnp.sum(jnp.sin(mixed))

    U = layer.mssa.U.weight.rearrange(("heads", "head_size", "embed"))
    flat = U.array.reshape(K * p, -1)
    np.testing.assert_allclose(float(tied(U)), float(untied(flat, flat, flat)), rtol=1e-5)
    g_tied = np.asarray(jax.jit(jax.grad(lambda a: tied(hax.named(a, U.axes))))(U.array)).reshape(K * p, -1)
    g_q, g_k, g_v = jax.jit(jax.grad(untied, argnums=(0, 1, 2)))(flat, flat, flat)
    np.testing.assert_allclose(g_tied, np.asarray(g_q + g_k + g_v), atol=1e-5)


def test_crate_base_shapes_under_eval_shape():
    config = CrateConfig(hidden_dim=768, num_heads=12, num_layers=12)
    images = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)

    def run(x):
        model = Crate.init(config, key=KEY)
        logits, trace = model.forward_with_intermediates(hax.named(x, ("batch", "height", "width", "channel")))
        return (logits.rearrange(("batch", "classes")).array,
                trace.projection.rearrange(("layers", "batch", "heads", "position", "head_size")).array,
                trace.attention.rearrange(("layers", "batch", "heads", "position", "key_position")).array,
                trace.z_next.rearrange(("layers", "batch", "position", "embed")).array)

    logits, proj, attn, z_next = jax.eval_shape(run, images)
    assert logits.shape == (2, 1000)
    assert proj.shape == (12, 2, 12, 197, 64)
    assert attn.shape == (12, 2, 12, 197, 197)
    assert z_next.shape == (12, 2, 197, 768)


def test_forward_with_intermediates_matches_forward_and_traces_are_consistent():
    model = eqx.filter_jit(lambda key: TINY.build(key=key))(KEY)
    x = hax.random.normal(jax.random.PRNGKey(7), (Axis("batch", 3), Axis("height", 8), Axis("width", 8),
                                                  Axis("channel", 1)))
    logits, trace = eqx.filter_jit(lambda m, x: m.forward_with_intermediates(x))(model, x)
    np.testing.assert_allclose(np.asarray(logits.array), np.asarray(eqx.filter_jit(lambda m, x: m(x))(model, x).array),
                               atol=1e-6)
    assert float(hax.min(trace.z_next).scalar()) >= 0.0
    assert trace.z_next.resolve_axis("layers").size == 4


@pytest.mark.parametrize("field, value", [("num_heads", 3), ("patch_size", 3), ("pool", "max"), ("hidden_dim", 0)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"model.{field}"):
        CrateConfig(**{**TINY.__dict__, field: value})
