"""Symmetry tests in float64 with well-conditioned group elements (nfn.md §11, tests 1-6)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nfn_jax import (EquivariantLayer, InvariantLayer, TransformerNFNConfig, WeightSpaceSpec, act, random_group_element,
                     relu_mlp_slots, zoo_weights_from_state_dicts, zoo_weights_to_state_dicts)
from nfn_jax.weights import BLOCK_SLOTS, BlockWeights, ZooWeights, block_from_state_dict, block_to_state_dict, random_block_group_element
from nfn_jax.zoo.model import ZooArchitecture, encoder_block, init_params



@pytest.fixture(autouse=True)
def float64():
    """Every test of this file runs in float64; the flag is restored afterwards (other files run in float32)."""
    with jax.enable_x64(True):
        yield


SPEC = WeightSpaceSpec(D=6, D_k=3, D_v=4, D_A=5, h=3, n_blocks=2)
TOL = 1e-9
FACTORS = [("sigma",), ("gl",), ("p_o",), ("p_a",), ("sigma", "gl", "p_o", "p_a")]


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def random_block(seed, n=3, c=2, spec=SPEC) -> BlockWeights:
    rng = np.random.default_rng(seed)
    return BlockWeights(**{s: jnp.asarray(rng.standard_normal((n, c, *shape))) for s, shape in spec.slot_shapes().items()})


def init_layer(cls, c_in, c_out, seed):
    return eqx.filter_jit(cls.init)(SPEC, c_in, c_out, key=jax.random.PRNGKey(seed), dtype=jnp.float64)


def block_params(block: BlockWeights, model: int = 0) -> dict:
    return {k: jnp.asarray(v) for k, v in block_to_state_dict({s: np.asarray(getattr(block, s)[model, 0]) for s in BLOCK_SLOTS}, 0).items()}


@pytest.mark.parametrize("factors", FACTORS)
def test_zoo_block_is_invariant(factors):
    """1. block(X, g·W) == block(X, W), all factors together and each alone."""
    w = random_block(0, n=1, c=1)
    g = random_block_group_element(jax.random.PRNGKey(1), SPEC, factors=factors)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, 7, SPEC.D)))
    block = jax.jit(lambda p: encoder_block(p, 0, x, SPEC.h))
    assert rel_err(block(block_params(act(g, w))), block(block_params(w))) < TOL


@pytest.mark.parametrize("factors,breaks", [(("p_o",), True), (("sigma",), False), (("gl",), False), (("p_a",), False)])
def test_residual_block_breaks_only_the_d_permutation(factors, breaks):
    """2. Negative control: with residual connections P_O is no symmetry; σ, GL and P_A still are."""
    w = random_block(0, n=1, c=1)
    g = random_block_group_element(jax.random.PRNGKey(1), SPEC, factors=factors)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, 7, SPEC.D)))
    block = jax.jit(lambda p: encoder_block(p, 0, x, SPEC.h, residual=True))
    err = rel_err(block(block_params(act(g, w))), block(block_params(w)))
    assert (err > 1e-2) if breaks else (err < TOL), err


@pytest.mark.parametrize("factors", FACTORS)
def test_equivariant_layer_every_slot(factors):
    """3. E(g·W) == g·E(W) slot by slot, C_in = 2, C_out = 3, three heads."""
    layer = init_layer(EquivariantLayer, 2, 3, 3)  # random biases (as the reference), so the bias terms count too
    w = random_block(4)
    g = random_block_group_element(jax.random.PRNGKey(5), SPEC, factors=factors)
    run = eqx.filter_jit(lambda m, x: m(x))
    lhs, rhs = run(layer, act(g, w)), act(g, run(layer, w))
    for slot in BLOCK_SLOTS:
        assert rel_err(getattr(lhs, slot), getattr(rhs, slot)) < TOL, slot


def test_invariant_layer_and_composition():
    """4. I(g·W) == I(W), and I ∘ ReLU_{A,bA,B,bB} ∘ E is invariant."""
    E = init_layer(EquivariantLayer, 2, 3, 6)
    I = init_layer(InvariantLayer, 3, 4, 7)
    I2 = init_layer(InvariantLayer, 2, 4, 8)
    w = random_block(9)
    g = random_block_group_element(jax.random.PRNGKey(10), SPEC)
    inv = eqx.filter_jit(lambda x: I2(x))
    assert rel_err(inv(act(g, w)), inv(w)) < TOL
    f = eqx.filter_jit(lambda x: I(relu_mlp_slots(E(x))))
    assert rel_err(f(act(g, w)), f(w)) < TOL


def test_relu_on_attention_slots_breaks_invariance():
    """5. Negative control: a ReLU on Q/K/V/O as well breaks invariance by far more than the tolerance."""
    E = init_layer(EquivariantLayer, 2, 3, 6)
    I = init_layer(InvariantLayer, 3, 4, 7)
    w = random_block(9)
    g = random_block_group_element(jax.random.PRNGKey(10), SPEC, factors=("gl",))
    f = eqx.filter_jit(lambda x: I(jax.tree.map(jax.nn.relu, E(x))))
    assert rel_err(f(act(g, w)), f(w)) > 1e-3


def _zoo_weights(seed, spec=SPEC, n=3) -> ZooWeights:
    rng = np.random.default_rng(seed)
    blocks = tuple(random_block(seed * 10 + i, n=n, c=1, spec=spec) for i in range(spec.n_blocks))
    cls = {"classifier.fc1.weight": (7, spec.D), "classifier.fc1.bias": (7,), "classifier.fc2.weight": (10, 7),
           "classifier.fc2.bias": (10,)}
    emb = {"embedding.conv1.weight": (spec.D, 1, 2, 2), "embedding.conv1.bias": (spec.D,)}
    rand = lambda shapes: {name: jnp.asarray(rng.standard_normal((n, *s))) for name, s in shapes.items()}  # noqa: E731
    return ZooWeights(blocks, rand(cls), rand(emb))


def test_whole_predictor_with_a_different_group_element_per_block():
    """6. f(g1·W1, g2·W2) == f(W1, W2) with two E layers; classifier (HNPS branch) and embedding untouched."""
    config = TransformerNFNConfig(weight_space=SPEC, classifier_hidden=7, num_classes=10, embedding_features=6 * 4 + 6,
                                  encoder_channels=(3, 4), cls_mode="hnps", classifier_channels=(2, 3))
    model = config.build(key=jax.random.PRNGKey(11), dtype=jnp.float64)
    w = _zoo_weights(12)
    g = random_group_element(jax.random.PRNGKey(13), SPEC)
    assert not np.allclose(np.asarray(g[0].M), np.asarray(g[1].M))  # independent per block
    gw = act(g, w)
    assert gw.classifier is w.classifier and gw.embedding is w.embedding
    run = eqx.filter_jit(lambda m, x: m(x))
    out, out_g = run(model, w), run(model, gw)
    assert out.shape == (3,) and np.all((np.asarray(out) > 0) & (np.asarray(out) < 1))
    assert rel_err(out_g, out) < TOL
    # and the model does depend on the block weights (the test can fail)
    other = ZooWeights(tuple(jax.tree.map(lambda x: x * 1.5, b) for b in w.blocks), w.classifier, w.embedding)
    assert rel_err(run(model, other), out) > 1e-6


def test_group_element_is_well_conditioned_and_shapes_are_checked():
    g = random_group_element(jax.random.PRNGKey(0), WeightSpaceSpec())
    assert all(np.linalg.cond(np.asarray(m)).max() < 100 for b in g for m in (b.M, b.N))
    w = _zoo_weights(1)
    SPEC.validate(w)
    with pytest.raises(ValueError, match=r"blocks\[0\]\.q"):
        WeightSpaceSpec(D=6, D_k=2, D_v=4, D_A=5, h=3, n_blocks=2).validate(w)


def test_state_dict_round_trip_is_exact_and_group_transformed_checkpoint_keeps_logits():
    """8. state dict -> per-head slots -> state dict is the identity; g·W gives the same logits on real inputs."""
    arch = ZooArchitecture(task="image", embed_dim=16, num_heads=2, mlp_dim=32, classifier_hidden=16, image_size=8)
    params = {k: np.asarray(v, np.float64) for k, v in jax.jit(lambda k: init_params(arch, 0.3, k))(jax.random.PRNGKey(0)).items()}
    params = {k: v + 0.01 * np.arange(v.size).reshape(v.shape) % 0.07 for k, v in params.items()}  # non-zero biases
    sd = {**params, **{k: v.astype(np.float64) for k, v in arch.buffers().items()}}
    spec = WeightSpaceSpec(D=16, D_k=8, D_v=8, D_A=32, h=2, n_blocks=2)
    for i in range(2):
        back = block_to_state_dict(block_from_state_dict(sd, i, spec), i)
        assert all(np.array_equal(back[k], sd[k]) for k in back)
    zw = zoo_weights_from_state_dicts([sd, sd], spec, np.float64)
    again = zoo_weights_to_state_dicts(zw)[1]
    assert again.keys() == sd.keys() and all(np.array_equal(again[k], sd[k]) for k in sd)

    from common_jax.data import load_mnist10k
    from nfn_jax.zoo.data import ZooDataConfig
    from nfn_jax.zoo.model import logits

    images = ZooDataConfig(image_size=8)._pixels(load_mnist10k()[0][:64]).astype(np.float64)
    g = random_group_element(jax.random.PRNGKey(3), spec)
    moved = zoo_weights_to_state_dicts(act(g, zw))[0]
    run = jax.jit(lambda p: logits(arch, p, jnp.asarray(images)))
    ref = run({k: jnp.asarray(v) for k, v in sd.items()})
    out = run({k: jnp.asarray(v) for k, v in moved.items()})
    assert rel_err(out, ref) < TOL
    with pytest.raises(ValueError, match="encoder.1.fc1.weight"):
        block_from_state_dict({**sd, "encoder.1.fc1.weight": np.zeros((3, 3))}, 1, spec)
