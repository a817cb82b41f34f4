"""The predictor as the reference builds and trains it (issue 13): initialisation, BCE, HNPS branch, branch modes,
split and last batch."""

import math
import random

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from nfn_jax import (EquivariantLayer, HnpsClassifierBranch, HnpsLayer, InvariantLayer, MlpPredictorConfig,
                     StatNNPredictorConfig, TransformerNFNConfig, WeightSpaceSpec)
from nfn_jax.data import EpochBatchStream, PredictorExample, PredictorSplit, split_indices
from nfn_jax.hnps import ClassifierWeights
from nfn_jax.loss import binary_cross_entropy
from nfn_jax.main.train import bce_loss

from .test_equivariance import _zoo_weights

SPEC = WeightSpaceSpec(D=12, D_k=5, D_v=7, D_A=9, h=3, n_blocks=1)  # distinct sizes: a swapped fan shows


def expected_equivariant_stds(s: WeightSpaceSpec, d: int, e: int) -> dict[str, float]:
    """Xavier-normal σ per group, worked out by hand from the reference's ``TransformersLinear``: each einsum term's
    fans are the products of its masked / unmasked input dims, summed over the terms of one ``set_init_einsum_``
    call; σ = sqrt(2 / (fan_in + fan_out))^degree (degree 1 for Q/K/V/O and the bias-like groups, else 2)."""
    h, D, Dk, Dv, DA = s.h, s.D, s.D_k, s.D_v, s.D_A
    attn = 2 / (2 * d * h * D * D + 2)
    groups = {
        ("q.phi",): math.sqrt(2 / (d * Dk + h * D)), ("k.phi",): math.sqrt(2 / (d * Dk + h * D)),
        ("v.phi",): math.sqrt(2 / (d * Dv + h * D)), ("o.pool", "o.self"): math.sqrt(2 / ((d + h * Dv) * (D + 1))),
        ("a.ba_self", "a.bb", "a.bias"): math.sqrt(2 / (d * (1 + DA) + DA + 1 + e)),
        ("a.qk", "a.vo_pool", "a.vo_row"): 2 / (2 * d * h * D * D + d * h * D + D + 2),
        ("a.ba_all", "a.b_pool", "a.b_row", "a.a_all", "a.a_row", "a.a_col", "a.a_self"):
            2 / (d * (2 * DA + 2 * DA * D + 2 * D + 1) + 3 + 2 * DA + D + D * DA),
        ("ba.ba_self", "ba.bb", "ba.bias"): math.sqrt(2 / (d * (1 + D) + DA + 1 + e)),
        ("ba.qk", "ba.vo_pool"): attn,
        ("ba.b_pool", "ba.b_row", "ba.a_all", "ba.a_col", "ba.ba_all"): 2 / (2 * d * D * DA + 2 * d * D + d * DA + 3 + 2 * DA),
        ("b.ba_self", "b.bb", "b.bias"): math.sqrt(2 / (d * (1 + D) + DA + 1 + e * D)),
        ("b.qk", "b.vo_pool"): attn,
        ("b.b_pool", "b.ba_all", "b.a_all", "b.a_col", "b.b_self"): 2 / (2 * d * D * DA + d * DA + 2 * d * D + 3 + 2 * DA),
        ("bb.bb", "bb.bias"): math.sqrt(2 / (d * DA + d * D + 2 + e * D)),
        ("bb.qk", "bb.vo_pool"): attn,
        ("bb.b_pool", "bb.ba_all", "bb.a_all"): 2 / (3 * d * D * DA + d * DA + 4),
    }
    return {name: std for names, std in groups.items() for name in names}


def equivariant_coefficients(layer: EquivariantLayer) -> dict[str, jax.Array]:
    out = {"q.phi": layer.phi_q, "k.phi": layer.phi_k, "v.phi": layer.phi_v, "o.pool": layer.o_pool, "o.self": layer.o_self}
    for slot in ("a", "ba", "b", "bb"):
        out.update({f"{slot}.{k}": v for k, v in getattr(layer, f"coef_{slot}").items()})
        out[f"{slot}.bias"] = getattr(layer, f"bias_{slot}")
    return out


def _check_stds(draws: dict[str, jax.Array], expected: dict[str, float]):
    """Sample σ (over 200 independent initialisations) within 6 standard errors of the expected σ, mean near 0."""
    assert set(draws) == set(expected)
    for name, x in draws.items():
        x = np.asarray(x, np.float64).ravel()
        assert abs(x.std() / expected[name] - 1) < 6 / math.sqrt(2 * x.size), (name, x.std(), expected[name])
        assert abs(x.mean()) < 6 * expected[name] / math.sqrt(x.size), name


@pytest.mark.parametrize("d,e", [(1, 4), (3, 2)])
def test_equivariant_and_invariant_init_stds_are_the_reference_xavier_groups(d, e):
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    E = eqx.filter_vmap(lambda k: EquivariantLayer.init(SPEC, d, e, key=k))(keys)
    _check_stds(equivariant_coefficients(E), expected_equivariant_stds(SPEC, d, e))
    I = eqx.filter_vmap(lambda k: InvariantLayer.init(SPEC, d, e, key=k))(keys)
    D, DA, h = SPEC.D, SPEC.D_A, SPEC.h
    lin, attn, mlp = math.sqrt(2 / (d * DA + 3 + e)), 2 / (2 * d * h * D * D + 2), 2 / (2 * d * D * DA + 2)
    _check_stds({**I.coef, "bias": I.bias}, {"ba_all": lin, "bb": lin, "bias": lin, "qk": attn, "vo_pool": attn,
                                             "a_all": mlp, "b_pool": mlp})


def test_hnps_init_stds_are_the_reference_xavier_groups():
    n, m, n0, nl = 3, 4, 6, 5
    layer = eqx.filter_vmap(lambda k: HnpsLayer.init(n0, nl, n, m, key=k))(jax.random.split(jax.random.PRNGKey(1), 200))
    first_w, first_b = math.sqrt(2 / (n * n0 + n + 2 * m * n0)), math.sqrt(2 / (n * n0 + n + 2 * m))
    _check_stds({k: getattr(layer, k) for k in ("w0_w0", "w0_b0", "b0_w0", "b0_b0", "w1_w1", "b1_b1", "b1_bias")},
                {"w0_w0": first_w, "w0_b0": first_w, "b0_w0": first_b, "b0_b0": first_b,
                 "w1_w1": math.sqrt(2 / (n * nl + m * nl)), "b1_b1": math.sqrt(2 / (n * nl + 2 * m * nl)),
                 "b1_bias": math.sqrt(2 / (n * nl + 2 * m * nl))})


def test_bce_equals_torch_value_and_gradient_also_at_saturation():
    p = np.asarray([1.0, 0.0, 1e-30, 1e-8, 1 - 1e-7, 0.3, 0.97], np.float32)
    y = np.asarray([0.5, 0.5, 0.0, 0.2, 0.9, 0.3, 0.1], np.float32)
    pt = torch.tensor(p, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(pt, torch.tensor(y), reduction="sum").backward()
    value, grad = jax.value_and_grad(lambda q: binary_cross_entropy(q, jnp.asarray(y)).sum())(jnp.asarray(p))
    assert float(value) == pytest.approx(float(torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y),
                                                                                          reduction="sum")), rel=1e-6)
    np.testing.assert_allclose(np.asarray(grad), pt.grad.numpy(), rtol=1e-6)
    # through the sigmoid, as the predictor's head: finite, non-zero where the clip at [1e-7, 1-1e-7] gave zero
    z = np.asarray([-30.0, -20.0, -16.5, 16.3, 5.0, 0.0], np.float32)
    zt = torch.tensor(z, requires_grad=True)
    torch.nn.BCELoss()(torch.sigmoid(zt), torch.full((6,), 0.5)).backward()
    gz = jax.grad(lambda v: binary_cross_entropy(jax.nn.sigmoid(v), jnp.full(6, 0.5)).mean())(jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(gz), zt.grad.numpy(), rtol=1e-5)
    assert np.all(np.isfinite(gz)) and np.all(np.asarray(gz)[:4] != 0)


def _transform_hidden(w: ClassifierWeights, perm, scale) -> ClassifierWeights:
    """Permute the hidden neurons and rescale them by ``scale > 0``: the classifier computes the same function."""
    return ClassifierWeights(w.w0[:, :, perm] * scale[:, None], w.b0[:, :, perm] * scale,
                             w.w1[:, :, :, perm] / scale, w.b1)


def test_hnps_layer_equivariant_and_branch_invariant():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        w = ClassifierWeights(*(jnp.asarray(rng.standard_normal(s)) for s in ((3, 2, 7, 6), (3, 2, 7), (3, 2, 5, 7), (3, 2, 5))))
        perm, scale = rng.permutation(7), jnp.asarray(rng.uniform(0.5, 2.0, 7))
        layer = HnpsLayer.init(6, 5, 2, 4, key=jax.random.PRNGKey(2), dtype=jnp.float64)
        run = eqx.filter_jit(lambda f, x: f(x))
        lhs, rhs = run(layer, _transform_hidden(w, perm, scale)), _transform_hidden(run(layer, w), perm, scale)
        for a, b in zip(jax.tree.leaves(lhs), jax.tree.leaves(rhs)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
        weights = _zoo_weights(3, WeightSpaceSpec(D=6, D_k=3, D_v=4, D_A=5, h=3, n_blocks=2))
        branch = HnpsClassifierBranch.init(((7, 6), (10, 7)), 1, (3, 4), 10, 8, key=jax.random.PRNGKey(4), dtype=jnp.float64)
        branch = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, branch)
        cls = weights.classifier
        moved = {"classifier.fc1.weight": cls["classifier.fc1.weight"][:, perm] * scale[:, None],
                 "classifier.fc1.bias": cls["classifier.fc1.bias"][:, perm] * scale,
                 "classifier.fc2.weight": cls["classifier.fc2.weight"][:, :, perm] / scale,
                 "classifier.fc2.bias": cls["classifier.fc2.bias"]}
        out = run(branch, weights)
        assert out.shape == (3, 8)
        np.testing.assert_allclose(np.asarray(run(branch, eqx.tree_at(lambda z: z.classifier, weights, moved))),
                                   np.asarray(out), rtol=1e-9, atol=1e-12)
        # and not invariant to a change of the classifier's function (the test can fail)
        other = eqx.tree_at(lambda z: z.classifier, weights, {**moved, "classifier.fc2.bias": cls["classifier.fc2.bias"] + 1})
        assert np.abs(np.asarray(run(branch, other)) - np.asarray(out)).max() > 1e-3
        # channel vectors the ReLU zeroed: the pool's normalisation keeps finite gradients (as torch's F.normalize)
        zeros = eqx.tree_at(lambda z: z.classifier, weights, jax.tree.map(jnp.zeros_like, cls))
        grads = eqx.filter_jit(eqx.filter_grad(lambda b, x: b(x).sum()))(branch, zeros)
        assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("modes", [("mlp", "statnn", "none"), ("statnn", "mlp", "mlp"), ("none", "none", "mlp")])
def test_every_branch_mode_builds_and_predicts(modes):
    """(``inv`` with two E layers and ``hnps`` are built in test_equivariance's whole-predictor test.)"""
    enc, cls, emb = modes
    spec = WeightSpaceSpec(D=6, D_k=3, D_v=4, D_A=5, h=3, n_blocks=2)
    config = TransformerNFNConfig(weight_space=spec, classifier_hidden=7, num_classes=10, embedding_features=30,
                                  enc_mode=enc, cls_mode=cls, emb_mode=emb, encoder_channels=(3,), encoder_out=4,
                                  classifier_channels=(2, 5), classifier_out=6, embedding_out=3)
    model = config.build(key=jax.random.PRNGKey(0))
    out = eqx.filter_jit(lambda m, x: m(x))(model, jax.tree.map(lambda x: x.astype(jnp.float32), _zoo_weights(5, spec)))
    assert out.shape == (3,) and np.all((np.asarray(out) > 0) & (np.asarray(out) < 1))
    assert model.head.in_features == (4 if enc != "none" else 0) + (6 if cls != "none" else 0) + 3 * (emb == "mlp")


def test_reference_baselines_are_the_reference_sizes():
    """MLP: flat weights -> 10 -> 10; STATNN: 56 statistics per block -> 10 -> 10, classifier statistics -> 10 -> 10."""
    mlp = eqx.filter_eval_shape(lambda: MlpPredictorConfig().build(key=jax.random.PRNGKey(0)))
    assert [layer.weight.shape for layer in mlp.encoder.mlp.layers] == [(10, 2 * 8288), (10, 10)]
    assert [layer.weight.shape for layer in mlp.classifier.mlp.layers] == [(10, 1386), (10, 10), (10, 10)]
    stat = eqx.filter_eval_shape(lambda: StatNNPredictorConfig().build(key=jax.random.PRNGKey(0)))
    assert [layer.weight.shape for layer in stat.encoder.mlp.layers] == [(10, 112), (10, 10)]
    assert [layer.weight.shape for layer in stat.classifier.mlp.layers] == [(10, 28), (10, 10)]
    assert stat.embedding.weight.shape == (10, 544) and stat.head.weight.shape == (1, 30)


def test_split_is_pythons_random_shuffle_with_int_sizes():
    for n, seed in ((100, 3), (37, 3), (38, 4)):
        order = list(range(n))
        random.seed(seed)  # the reference: set_seed(3), then random.shuffle of the selected files
        random.shuffle(order)
        n_train, n_val = int(n * 0.7), int(n * 0.15)
        split = split_indices(n, seed)
        assert split["train"].tolist() == order[:n_train]
        assert split["val"].tolist() == order[n_train : n_train + n_val]
        assert split["test"].tolist() == order[n_train + n_val :]
    assert [len(v) for v in split_indices(37, 3).values()] == [25, 5, 7]


def test_epoch_batches_keep_the_last_partial_batch_and_its_loss_is_the_partial_mean():
    weights = jax.tree.map(lambda x: np.asarray(x, np.float32), _zoo_weights(6, WeightSpaceSpec(D=6, D_k=3, D_v=4, D_A=5, h=3, n_blocks=2), n=37))
    split = PredictorSplit(weights, np.linspace(0.1, 0.9, 37).astype(np.float32))
    stream = EpochBatchStream(split, batch_size=16, seed=3)
    assert stream.steps_per_epoch == 3
    examples = [stream.example(i) for i in range(2 * 3 * 16)]  # two epochs
    real = np.asarray([float(x.weight.array) for x in examples]).reshape(2, 3, 16)
    assert real.sum(-1).tolist() == [[16, 16, 5], [16, 16, 5]]
    models = [[float(x.accuracy.array) for x, w in zip(examples[e * 48:(e + 1) * 48], real[e].ravel()) if w] for e in range(2)]
    assert sorted(models[0]) == sorted(split.accuracy.tolist()) == sorted(models[1]) and models[0] != models[1]
    # the padded last batch gives the loss and gradient of the 5-model batch the reference trains on
    model = MlpPredictorConfig(weight_space=WeightSpaceSpec(D=6, D_k=3, D_v=4, D_A=5, h=3, n_blocks=2), classifier_hidden=7,
                               embedding_features=30).build(key=jax.random.PRNGKey(0))
    padded, partial = _batch(examples[32:48]), _batch(examples[32:37])
    loss_grad = eqx.filter_jit(eqx.filter_value_and_grad(lambda m, b: bce_loss(m, b)[0]))
    (lp, gp), (lr, gr) = loss_grad(model, padded), loss_grad(model, partial)
    assert float(lp) == pytest.approx(float(lr), rel=1e-6)
    for a, b in zip(jax.tree.leaves(gp), jax.tree.leaves(gr)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


def _batch(examples: list[PredictorExample]) -> PredictorExample:
    """What levanter's loader hands the loss: the examples stacked along a batch axis."""
    weights = jax.tree.map(lambda *a: jnp.stack(a), *[x.weights for x in examples])
    scalars = lambda field: hax.named(jnp.asarray([float(getattr(x, field).array) for x in examples]), "batch")  # noqa: E731
    return PredictorExample(weights, scalars("accuracy"), scalars("weight"))
