"""T3 (IS block) and T4 (design 1) for every element of the product, float64; T7 cost for design 1."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from equitune_jax import groups as G
from equitune_jax.models.view_cnn import multi_view_design1
from equitune_jax.wrappers import ISBlock, multi_input_equivariant

from .nets import FeatureMapNet, to_float64

ATOL = 1e-10


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.normal(size=(5, 5, 2))) for _ in range(n))


def test_T3_is_block_invariant_on_input_symmetric_on_output(x64):
    source, target = G.rot90(), G.hflip(output="same")
    block = ISBlock(to_float64(FeatureMapNet(key=jax.random.PRNGKey(0))), source, target)
    (x,) = _images(1)
    out = block(x)
    for g in source.elements:
        np.testing.assert_allclose(block(source.act_input(g, x)), out, atol=ATOL)
    for g in target.elements:
        np.testing.assert_allclose(target.act_output(g, out), out, atol=ATOL)
    assert float(jnp.max(jnp.abs(out - G.hflip().act_input((1, 0), out)))) < ATOL
    assert block.forward_passes == 4


def test_T4_feature_map_design1_equivariant_for_every_product_element(x64):
    groups = (G.rot90(output="same"), G.hflip(output="same"), G.vflip(output="same"))
    model = multi_input_equivariant(to_float64(FeatureMapNet(key=jax.random.PRNGKey(1))), groups,
                                    to_float64(FeatureMapNet(key=jax.random.PRNGKey(2))), coupling=0.7)
    model = to_float64(model)
    xs = _images(3, seed=1)
    call = eqx.filter_jit(lambda m, xs: m(xs))
    ys = call(model, xs)
    for g in itertools.product(*(grp.elements for grp in groups)):
        moved = call(model, tuple(grp.act_input(gi, x) for grp, gi, x in zip(groups, g, xs)))
        for grp, gi, y, y_moved in zip(groups, g, ys, moved):
            np.testing.assert_allclose(y_moved, grp.act_output(gi, y), atol=ATOL)
    assert model.forward_passes == 2 * (4 + 2 + 2)


def test_T4_design1_classifier_logits_invariant(x64):
    groups = (G.rot90(), G.hflip())
    model = to_float64(multi_view_design1(groups, 8, 1, 4, 8, 8, 10, key=jax.random.PRNGKey(3)))
    rng = np.random.default_rng(2)
    xs = tuple(jnp.asarray(rng.normal(size=(8, 8, 1))) for _ in range(2))
    call = eqx.filter_jit(lambda m, xs: m(xs))
    logits = call(model, xs)
    for g1, g2 in itertools.product(groups[0].elements, groups[1].elements):
        moved = (groups[0].act_input(g1, xs[0]), groups[1].act_input(g2, xs[1]))
        np.testing.assert_allclose(call(model, moved), logits, atol=ATOL)
    assert model.forward_passes == 12  # (4 + 2) for φ and (4 + 2) for ψ
