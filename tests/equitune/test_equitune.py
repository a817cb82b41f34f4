"""T1 (equitune equivariance, every element), T2 (projection properties), T9 (push-forward on a 3-cycle,
train-mode dropout) and T10 (λ-equitune), in float64 with atol 1e-10 where exactness is claimed."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from equitune_jax import groups as G
from equitune_jax.wrappers import equitune, equizero, lambda_equitune

from .nets import FeatureMapNet, ImageLogitsNet, PositiveWeight, TokenNet, to_float64

ATOL = 1e-10
VOCAB = ["a", "b", "c", "d", "e", "f"]


def _image(seed=0, shape=(5, 5, 2)):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape))


def max_equivariance_error(model, group, x) -> float:
    """max over every g of |model(ρ_X(g) x) − ρ_Y(g) model(x)|."""
    f = eqx.filter_jit(lambda m, x: m(x))
    y = f(model, x)
    return max(float(jnp.max(jnp.abs(f(model, group.act_input(g, x)) - group.act_output(g, y))))
               for g in group.elements)


@pytest.mark.parametrize("make", [G.rot90, G.hflip, G.vflip, G.d4], ids=["rot90", "hflip", "vflip", "d4"])
def test_T1_feature_maps_transform_and_logits_are_invariant(make, x64):
    maps = equitune(to_float64(FeatureMapNet(key=jax.random.PRNGKey(1))), make(output="same"))
    assert max_equivariance_error(maps, maps.group, _image()) < ATOL
    logits = equitune(to_float64(ImageLogitsNet(key=jax.random.PRNGKey(2))), make(), aggregate="logits")
    assert max_equivariance_error(logits, logits.group, _image()) < ATOL
    # the base models are not equivariant: the check can fail
    assert max_equivariance_error(maps.model, maps.group, _image()) > 1e-3


@pytest.mark.parametrize("group", [G.vocab_cycle(VOCAB, ["a", "b", "c"]), G.vocab_swaps(VOCAB, [("a", "d"), ("b", "e")]),
                                   G.product(G.vocab_cycle(VOCAB, ["a", "b", "c"]), G.vocab_swaps(VOCAB, [("d", "e")]))],
                         ids=["3-cycle", "swaps", "product"])
def test_T1_tokens_ids_permuted_in_logits_pulled_back(group, x64):
    ids = jnp.array([0, 1, 3, 2])
    for aggregate in ("logits", "log_softmax", "softmax"):
        model = equitune(to_float64(TokenNet(key=jax.random.PRNGKey(3))), group, aggregate=aggregate)
        assert max_equivariance_error(model, group, ids) < ATOL


def test_T2_projection_properties(x64):
    group = G.d4(output="same")
    once = equitune(to_float64(FeatureMapNet(key=jax.random.PRNGKey(4))), group)
    twice = equitune(once, group)
    x = _image(1)
    np.testing.assert_allclose(twice(x), once(x), atol=ATOL)  # idempotent
    pointwise = equitune(lambda z, *, key=None: jnp.tanh(3 * z), group)  # an equivariant map is unchanged
    np.testing.assert_allclose(pointwise(x), jnp.tanh(3 * x), atol=ATOL)
    assert once.forward_passes == 8 and twice.forward_passes == 8


def test_T9_push_forward_breaks_a_3_cycle_but_not_an_involution(x64):
    net = to_float64(TokenNet(key=jax.random.PRNGKey(5)))
    ids = jnp.array([0, 1, 3, 2])
    cycle = G.vocab_cycle(VOCAB, ["a", "b", "c"])
    assert max_equivariance_error(equitune(net, cycle, pull_back=False), cycle, ids) > 1e-3
    assert max_equivariance_error(equitune(net, cycle), cycle, ids) < ATOL
    swap = G.vocab_swaps(VOCAB, [("a", "b")])
    assert max_equivariance_error(equitune(net, swap, pull_back=False), swap, ids) < ATOL


def test_T9_train_mode_dropout_breaks_exactness(x64):
    group = G.rot90()
    model = equitune(to_float64(ImageLogitsNet(dropout=0.5, key=jax.random.PRNGKey(6))), group, aggregate="logits")
    x, key = _image(2), jax.random.PRNGKey(7)
    train_gap = max(float(jnp.max(jnp.abs(model(group.act_input(g, x), key=key) - model(x, key=key))))
                    for g in group.elements)
    assert train_gap > 1e-3
    assert max_equivariance_error(eqx.nn.inference_mode(model), group, x) < ATOL


def test_T10_lambda_equitune(x64):
    group = G.d4()
    net = to_float64(ImageLogitsNet(key=jax.random.PRNGKey(8)))
    weight = to_float64(PositiveWeight(5 * 5 * 2, key=jax.random.PRNGKey(9)))
    for normalize in (True, False):
        model = lambda_equitune(net, group, weight, aggregate="logits", normalize=normalize)
        assert max_equivariance_error(model, group, _image(3)) < ATOL
    constant = lambda_equitune(net, group, lambda x, *, key=None: jnp.asarray(2.5), aggregate="logits")
    np.testing.assert_allclose(constant(_image(3)), equitune(net, group, aggregate="logits")(_image(3)), atol=ATOL)


@pytest.mark.parametrize("mode", ["select", "classwise_max"])
def test_equizero_is_invariant_and_straight_through_has_equitune_gradient(mode, x64):
    group = G.d4()
    net = to_float64(ImageLogitsNet(key=jax.random.PRNGKey(10)))
    model = equizero(net, group, "entropy", mode=mode, aggregate="softmax")
    assert max_equivariance_error(model, group, _image(4)) < ATOL
    st = equizero(net, group, "entropy", mode=mode, aggregate="softmax", straight_through=True)
    np.testing.assert_allclose(st(_image(4)), model(_image(4)), atol=ATOL)
    mean = equitune(net, group, aggregate="softmax")
    grad = eqx.filter_grad(lambda m: m(_image(4))[0])
    g_st, g_mean = grad(st), grad(mean)
    np.testing.assert_allclose(g_st.model.linear.weight, g_mean.model.linear.weight, atol=ATOL)
