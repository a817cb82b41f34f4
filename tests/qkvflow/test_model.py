"""Spec §9 tests 3 (init), 4 (weight-tied equivalence), 5 (one step), 7 (expressivity), 13 (causality) and the
attention-dropout part of 15."""

import dataclasses

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import Axis

from qkvflow_jax import DiffEqFormerConfig, DiscreteParallelTransformer, discretise
from qkvflow_jax.block import BlockWeights
from qkvflow_jax.model import time_features

from .tiny import VOCAB, activations, build, logits, max_abs_diff, small_config, token_ids


@eqx.filter_jit
def hand_written_euler(model, ids, num_steps):
    """Plain Python loop over the right-endpoint grid: X_{i+1} = X_i + (1/L) F(X_i, (i+1)/L)."""
    x = model.embeddings(ids)
    for i in range(num_steps):
        x = x + model.vector_field(x, (i + 1) / num_steps) * (1.0 / num_steps)
    return model.ln_f(x)


def test_init_invariants():
    config = DiffEqFormerConfig(max_seq_len=256, hidden_dim=64, num_layers=4, num_heads=4, time_embed_dim=8,
                                sinusoidal_dim=8)
    model = config.build(Axis("vocab", 256), key=jax.random.PRNGKey(0))
    field = model.field
    scale_and_shift = eqx.filter_jit(lambda norm, t: norm.scale_and_shift(time_features(config, t, jnp.float32)))
    for t in (0.0, 0.25, 0.5, 1.0, 0.123):
        for norm in (field.ln_attn, field.ln_mlp):
            gamma, beta = scale_and_shift(norm, t)
            np.testing.assert_array_equal(gamma.array, 1.0)
            np.testing.assert_array_equal(beta.array, 0.0)
    for unit in (field.qkv, field.attn_out, field.fc, field.proj):
        np.testing.assert_array_equal(unit.W0.array, 0.0)
        assert abs(float(unit.A.array.std()) - 0.02) < 0.001
        assert abs(float(unit.B.array.std()) - 1e-4) < 1e-5
        np.testing.assert_array_equal(unit.time_mlp.c1.array, 0.0)
    assert abs(float(model.embeddings.position_embeddings.weight.array.std()) - 0.01) < 0.0005
    assert abs(float(model.embeddings.token_embeddings.weight.array.std()) - 0.02) < 0.001
    # near-identity start: W(t) is far below GPT-2's 0.02 and the logits are small
    weight, _ = field.fc.weight_and_bias(time_features(config, 0.5, jnp.float32))
    assert float(weight.array.std()) < 0.005


def _zero_hyper(model):
    """A = B = 0 in every linear unit (W0, U1, U2, c, G, H untouched)."""
    for name in ("qkv", "attn_out", "fc", "proj"):
        model = eqx.tree_at(lambda m: getattr(m.field, name).A, model, getattr(model.field, name).A * 0)
        model = eqx.tree_at(lambda m: getattr(m.field, name).B, model, getattr(model.field, name).B * 0)
    for name in ("ln_attn", "ln_mlp"):
        model = eqx.tree_at(lambda m: getattr(m.field, name).G, model, getattr(model.field, name).G * 0)
        model = eqx.tree_at(lambda m: getattr(m.field, name).H, model, getattr(model.field, name).H * 0)
    return model


def _tied_copy(model, config):
    """The weight-tied parallel transformer (``hypernetwork: false``) with ``model``'s W0, embeddings and LN_f, and
    the static biases and LayerNorms at b0 = 0, gamma0 = 1, beta0 = 0 (what A = B = G = H = 0 generates)."""
    tied = build(dataclasses.replace(config, hypernetwork=False))
    for name in ("qkv", "attn_out", "fc", "proj"):
        unit = getattr(tied.field, name)
        tied = eqx.tree_at(lambda m: (getattr(m.field, name).W0, getattr(m.field, name).b0), tied,
                           (getattr(model.field, name).W0, unit.b0 * 0))
    for name in ("ln_attn", "ln_mlp"):
        norm = getattr(tied.field, name)
        tied = eqx.tree_at(lambda m: (getattr(m.field, name).gamma0, getattr(m.field, name).beta0), tied,
                           (norm.gamma0 * 0 + 1, norm.beta0 * 0))
    return eqx.tree_at(lambda m: (m.embeddings, m.ln_f), tied, (model.embeddings, model.ln_f))


def test_weight_tied_equivalence_with_zero_hypernetwork():
    with jax.enable_x64(True):
        config = small_config()
        model = _zero_hyper(build(config))
        tied = _tied_copy(model, config)
        ids = token_ids()
        # bitwise in f64: W0 + e.0 = W0, b = 0 + 0 and gamma = 1 + 0 exactly
        np.testing.assert_array_equal(logits(model, ids).array, logits(tied, ids).array)
        reference = hax.dot(hand_written_euler(tied, ids, config.num_layers), tied.get_lm_head(), axis="embed")
        assert max_abs_diff(logits(model, ids), reference) < 1e-12
    model32 = _zero_hyper(build(small_config()))
    assert max_abs_diff(logits(model32, token_ids()), logits(_tied_copy(model32, small_config()), token_ids())) < 1e-6


def test_one_euler_step():
    with jax.enable_x64(True):
        model = build(small_config(num_layers=1))
        ids = token_ids()
        x0 = model.embeddings(ids)
        x1 = x0 + model.vector_field(x0, 1.0)
        assert max_abs_diff(activations(model, ids), model.ln_f(x1)) < 1e-13
        assert max_abs_diff(activations(model, ids), hand_written_euler(model, ids, 1)) < 1e-13


def test_scan_matches_hand_written_loop():
    with jax.enable_x64(True):
        model = build(small_config())
        ids = token_ids()
        assert max_abs_diff(activations(model, ids), hand_written_euler(model, ids, 4)) < 1e-12


def test_expressivity_fits_any_per_layer_weights():
    """d+1 >= L: least squares for (A, W0) reproduces random per-layer weights; the model is then the untied
    parallel transformer with those weights."""
    with jax.enable_x64(True):
        config = small_config(num_layers=4, time_embed_dim=4)
        model = build(config)
        L = config.num_layers
        tau = np.arange(1, L + 1) / L
        rng = np.random.default_rng(0)
        target = {}
        for name in ("qkv", "attn_out", "fc", "proj"):
            unit = getattr(model.field, name)
            e = np.stack([np.asarray(unit.time_mlp(time_features(config, t, jnp.float64)).array) for t in tau])
            design = np.concatenate([e, np.ones((L, 1))], axis=1)  # [e(tau_i); 1]
            assert np.linalg.matrix_rank(design) == L
            shape = unit.W0.array.shape
            weights = rng.normal(size=(L,) + shape) * 0.1
            solution = np.linalg.lstsq(design, weights.reshape(L, -1), rcond=None)[0]
            A, W0 = solution[:-1].reshape((-1,) + shape), solution[-1].reshape(shape)
            model = eqx.tree_at(lambda m: (getattr(m.field, name).A.array, getattr(m.field, name).W0.array,
                                           getattr(m.field, name).B.array),
                                model, (jnp.asarray(A), jnp.asarray(W0), jnp.zeros_like(unit.B.array)))
            target[name] = (weights, unit.W0.axes)
        for name in ("ln_attn", "ln_mlp"):
            norm = getattr(model.field, name)
            model = eqx.tree_at(lambda m: (getattr(m.field, name).G, getattr(m.field, name).H), model,
                                (norm.G * 0, norm.H * 0))
        discrete = discretise(model, L)
        Layers = discrete.config.Layers
        named = {k: hax.named(jnp.asarray(w), (Layers,) + axes) for k, (w, axes) in target.items()}
        zeros = lambda axes: hax.zeros((Layers,) + axes)  # noqa: E731
        blocks = BlockWeights(named["qkv"], zeros(model.field.qkv.B.axes[1:]), named["attn_out"],
                              zeros((config.Embed,)), named["fc"], zeros((config.Mlp,)), named["proj"],
                              zeros((config.Embed,)), hax.ones((Layers, config.Embed)), zeros((config.Embed,)),
                              hax.ones((Layers, config.Embed)), zeros((config.Embed,)))
        untied = DiscreteParallelTransformer(model.embeddings, blocks, model.ln_f, None, discrete.config)
        for name, key in (("qkv", "qkv_w"), ("fc", "fc_w")):
            assert max_abs_diff(getattr(discrete.blocks, key), named[name]) < 1e-10
        ids = token_ids()
        assert max_abs_diff(logits(model, ids), logits(untied, ids)) < 1e-10


def test_causality_and_finite_cross_token_jacobian():
    model = build(small_config())
    ids = token_ids()
    reference = logits(model, ids).array
    for j in (0, 3, 7):
        changed = ids.array.at[j].set((ids.array[j] + 1) % VOCAB.size)
        diff = np.abs(np.asarray(logits(model, hax.named(changed, "position")).array - reference)).max(axis=-1)
        np.testing.assert_array_equal(diff[:j], 0.0)
        assert np.all(diff[j:] > 0)
    x = model.embeddings(ids)
    jac = eqx.filter_jit(jax.jacrev(lambda a: model.vector_field(hax.named(a, x.axes), 0.5).array[-1]))(x.array)
    assert jac.shape == (16, 8, 16) and bool(jnp.all(jnp.isfinite(jac)))
    assert float(jnp.abs(jac[:, 0]).max()) > 0  # the last token depends on the first


def test_attention_dropout_only_in_training():
    model = build(small_config(attn_pdrop=0.5))
    no_dropout = build(small_config())
    ids = token_ids()
    np.testing.assert_array_equal(logits(model, ids).array, logits(no_dropout, ids).array)
    assert max_abs_diff(logits(model, ids, jax.random.PRNGKey(0)), logits(model, ids)) > 1e-4
    np.testing.assert_array_equal(logits(no_dropout, ids, jax.random.PRNGKey(0)).array, logits(no_dropout, ids).array)
