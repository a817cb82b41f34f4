"""Issue 14 item 3 (every wrapper takes any callable, ``key`` only when the model takes it) and the reference options
of issue 15: design 2's ``branch_weighting: flat``, design 1's ``fusion_rule: reference``, λ-equitune's
``feature_scale`` (the reference CLIP formula) and the relaxed (R-) variants; float64, atol 1e-10."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from equitune_jax import groups as G
from equitune_jax.invariant_maps import TemplateCanonicalizer
from equitune_jax.wrappers import (
    ISBlock,
    accepts_key,
    equitune,
    equizero,
    lambda_equitune,
    multi_equitune,
    multi_input_equivariant,
    relaxed,
)

from .nets import TokenNet, to_float64

ATOL = 1e-10
RNG = np.random.default_rng(0)
W_LOGITS = RNG.normal(size=(5 * 5 * 2, 4))
W_MAP = RNG.normal(size=(2, 3))
W_WEIGHT = RNG.normal(size=(5 * 5 * 2,))


def logits_fn(x):
    """A plain function (no ``key``), not equivariant to anything: [5, 5, 2] -> [4]."""
    return jnp.tanh(x.reshape(-1) @ jnp.asarray(W_LOGITS, x.dtype)) * 3


def feature_map_fn(x):
    """[5, 5, 2] -> [5, 5, 3], a pixel-wise map plus a position-dependent term (not rotation-equivariant)."""
    return jnp.tanh(x @ jnp.asarray(W_MAP, x.dtype)) + jnp.arange(5.0, dtype=x.dtype)[:, None, None] * x[..., :1]


def weight_fn(x):
    return jax.nn.softplus(x.reshape(-1) @ jnp.asarray(W_WEIGHT, x.dtype))


class Keyed(eqx.Module):
    """The same function behind the ``model(x, *, key)`` signature, counting nothing: the reference result."""

    fn: callable = eqx.field(static=True)

    def __call__(self, x, *, key=None):
        return self.fn(x)


def _image(seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(5, 5, 2)))


def _gap(model, group, x):
    y = model(x)
    return max(float(jnp.max(jnp.abs(jax.tree.leaves(model(group.act_input(g, x)))[0]
                                     - jax.tree.leaves(group.act_output(g, y))[0]))) for g in group.elements)


def test_accepts_key_reads_the_signature():
    def plain(x):
        return x

    def keyed(x, *, key=None):
        return x

    def kwargs(x, **options):
        return x

    assert not accepts_key(plain) and accepts_key(keyed) and accepts_key(kwargs)
    assert accepts_key(Keyed(plain)) and not accepts_key(jnp.tanh) and not accepts_key(abs)
    assert accepts_key(lambda x, key: x)  # a positional-or-keyword ``key`` is a key argument


def test_every_wrapper_takes_a_plain_function(x64):
    d4, x, key = G.d4(), _image(), jax.random.PRNGKey(0)
    canon = TemplateCanonicalizer(G.d4("vflip"), (5, 5, 2), seed=0)
    builders = {
        "equitune": lambda f: equitune(f, d4, aggregate="logits"),
        "lambda_equitune": lambda f: lambda_equitune(f, d4, weight_fn, aggregate="softmax"),
        "equizero": lambda f: equizero(f, d4, "entropy", aggregate="softmax"),
        "multi_equitune": lambda f: multi_equitune(f, [G.rot90(), G.vflip()], [canon, canon], aggregate="softmax",
                                                   allow_noncommuting=True),
    }
    for name, build in builders.items():
        plain, keyed = build(logits_fn), build(Keyed(logits_fn))
        assert not plain.model_takes_key and keyed.model_takes_key
        np.testing.assert_allclose(plain(x), keyed(x), atol=ATOL, err_msg=name)
        np.testing.assert_allclose(plain(x, key=key), plain(x), atol=ATOL, err_msg=name)  # train mode: key ignored
        group = G.d4("vflip") if name == "multi_equitune" else d4
        assert _gap(plain, group, x) < ATOL, name
    assert _gap(logits_fn, d4, x) > 1e-3  # the function itself is not invariant

    block = ISBlock(feature_map_fn, G.rot90(), G.hflip(output="same"))
    out = block(x, key=key)
    for g in G.rot90().elements:
        np.testing.assert_allclose(block(G.rot90().act_input(g, x)), out, atol=ATOL)
    np.testing.assert_allclose(G.hflip().act_input((1, 0), out), out, atol=ATOL)

    groups = (G.rot90(output="same"), G.hflip(output="same"))
    design1 = multi_input_equivariant(feature_map_fn, groups, fusion_model=lambda z: jnp.sin(feature_map_fn(z)))
    np.testing.assert_allclose(design1((_image(1), _image(2)), key=key)[0], design1((_image(1), _image(2)))[0])
    _assert_design1_equivariant(design1, groups, (_image(1), _image(2)))


def _assert_design1_equivariant(model, groups, xs):
    """Y_i(g·X) = ρ'_i(g_i) Y_i(X) for every (g_1, g_2)."""
    ys = model(xs)
    for g1 in groups[0].elements:
        for g2 in groups[1].elements:
            moved = model((groups[0].act_input(g1, xs[0]), groups[1].act_input(g2, xs[1])))
            np.testing.assert_allclose(moved[0], groups[0].act_output(g1, ys[0]), atol=ATOL)
            np.testing.assert_allclose(moved[1], groups[1].act_output(g2, ys[1]), atol=ATOL)


def test_flat_branch_weighting_is_the_reference_mean_over_all_six_softmaxes(x64):
    """The reference multi-equitune for CLIP: canonicalise, then one mean over rot90^k (4) and flip^j (2)."""
    d4 = G.d4("vflip")
    canon = TemplateCanonicalizer(d4, (5, 5, 2), seed=1)
    x = _image(3)
    c = canon(x)
    soft = lambda z: jax.nn.softmax(logits_fn(z))
    rotations = [soft(jnp.rot90(c, k, axes=(0, 1))) for k in range(4)]
    flips = [soft(c), soft(c[::-1])]
    flat = multi_equitune(logits_fn, [G.rot90(), G.vflip()], [canon, canon], aggregate="softmax",
                          allow_noncommuting=True, branch_weighting="flat")
    per_group = multi_equitune(logits_fn, [G.rot90(), G.vflip()], [canon, canon], aggregate="softmax",
                               allow_noncommuting=True)
    np.testing.assert_allclose(flat(x), sum(rotations + flips) / 6, atol=ATOL)
    np.testing.assert_allclose(per_group(x), (sum(rotations) / 4 + sum(flips) / 2) / 2, atol=ATOL)
    assert float(jnp.max(jnp.abs(flat(x) - per_group(x)))) > 1e-6
    assert flat.branch_weights() == (4 / 6, 2 / 6) and _gap(flat, d4, x) < ATOL
    with pytest.raises(ValueError, match="branch_weighting"):
        multi_equitune(logits_fn, [G.rot90(), G.vflip()], [canon, canon], allow_noncommuting=True,
                       branch_weighting="weighted")


def test_reference_fusion_rule(x64):
    """(e_i + c (mean_j f_j − e_i)) / (1 + c) on invariant features, and exact equivariance on feature maps."""
    groups = (G.rot90(), G.hflip())
    phi = lambda z: jnp.tanh(z.reshape(-1)[:6] * 2)
    psi = lambda z: jnp.cos(z.reshape(-1)[3:9])
    model = multi_input_equivariant(phi, groups, fusion_model=psi, coupling=0.3, fusion_rule="reference")
    xs = (_image(4), _image(5))
    e = [jnp.mean(jnp.stack([phi(g.act_input(h, x)) for h in g.elements]), 0) for g, x in zip(groups, xs)]
    f = [jnp.mean(jnp.stack([psi(g.act_input(h, x)) for h in g.elements]), 0) for g, x in zip(groups, xs)]
    mean = (f[0] + f[1]) / 2
    for y, e_i in zip(model(xs), e):
        np.testing.assert_allclose(y, (e_i + 0.3 * (mean - e_i)) / 1.3, atol=1e-6)  # coupling is float32
    maps = (G.rot90(output="same"), G.vflip(output="same"))
    fmap = multi_input_equivariant(feature_map_fn, maps, fusion_model=lambda z: jnp.sin(feature_map_fn(z)),
                                   coupling=0.7, fusion_rule="reference")
    _assert_design1_equivariant(fmap, maps, xs)


def test_lambda_feature_scale_is_the_reference_clip_formula(x64):
    """basusourya/lambda_equitune eval_clip: softmax(logit_factor · (λ(g·x) f̂(g·x)) @ W) averaged over g."""
    rng = np.random.default_rng(6)
    w_feat, w_text = jnp.asarray(rng.normal(size=(50, 8))), jnp.asarray(rng.normal(size=(8, 5)))
    w_text = w_text / jnp.linalg.norm(w_text, axis=0)
    logit_factor = 7.0
    features = lambda z: z.reshape(-1) @ w_feat
    clip = lambda z: logit_factor * (features(z) / jnp.linalg.norm(features(z))) @ w_text
    lam = lambda z: jnp.sum(jnp.tanh(z)) / 10
    group = G.rot90()
    model = lambda_equitune(clip, group, lam, aggregate="softmax", weighting="feature_scale")
    x = _image(7)
    reference = []
    for g in group.elements:
        z = group.act_input(g, x)
        scaled = lam(z) * features(z) / jnp.linalg.norm(features(z))
        reference.append(jax.nn.softmax(logit_factor * scaled @ w_text))
    np.testing.assert_allclose(model(x), jnp.mean(jnp.stack(reference), 0), atol=ATOL)
    assert _gap(model, group, x) < ATOL
    outputs = lambda_equitune(clip, group, lambda z: jnp.exp(lam(z)), aggregate="softmax")
    assert float(jnp.max(jnp.abs(outputs(x) - model(x)))) > 1e-4  # the two forms differ
    with pytest.raises(ValueError, match="lambda weighting"):
        lambda_equitune(clip, group, lam, weighting="softmax_weights")


def test_relaxed_variants_are_equivariant_on_the_chosen_tokens_only(x64):
    vocab = ["a", "b", "c", "d", "e", "f"]
    product = G.product(G.vocab_swaps(vocab, [("a", "b")]), G.vocab_swaps(vocab, [("c", "d")]))
    net = to_float64(TokenNet(key=jax.random.PRNGKey(3)))
    ids = jnp.array([0, 2, 4, 5])
    chosen = [0, 1, 2, 3, 4]  # the swapped words and one "neutral" word; token 5 is "general"
    full = equitune(net, product, aggregate="logits")
    relaxed_product = relaxed(full, chosen, len(vocab))
    assert relaxed_product.forward_passes == 4
    np.testing.assert_allclose(relaxed_product(ids)[jnp.asarray(chosen)], full(ids)[jnp.asarray(chosen)], atol=ATOL)
    np.testing.assert_allclose(relaxed_product(ids)[5], net(ids)[5], atol=ATOL)
    factors = list(product.factors)
    maps = [None, None]  # no collapse: each branch sees x itself (enough to exercise the extra identity pass)
    multi = relaxed(multi_equitune(net, factors, maps, aggregate="logits"), chosen, len(vocab))
    assert multi.forward_passes == 2 + 2 + 1
    np.testing.assert_allclose(multi(ids)[5], net(ids)[5], atol=ATOL)
    for model in (relaxed_product,):
        y = model(ids)
        gaps_chosen, gaps_general = [], []
        for g in product.elements:
            moved = model(product.act_input(g, ids)) - product.act_output(g, y)
            gaps_chosen.append(float(jnp.max(jnp.abs(moved[jnp.asarray(chosen)]))))
            gaps_general.append(float(jnp.abs(moved[5])))
        assert max(gaps_chosen) < ATOL and max(gaps_general) > 1e-4
    with pytest.raises(ValueError, match="relaxed equivariant ids"):
        relaxed(full, [0, 9], len(vocab))
