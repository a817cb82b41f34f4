"""T5 (design 2 on SCAN: teacher-forced log-probs and joint greedy decoding), T6 (invariant maps), T7 (one
vmapped call of Σ|G_i| / Π|G_i|) and the T9 negative controls (no S; representatives of the wrong group)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from equitune_jax import groups as G
from equitune_jax.data import scan as S
from equitune_jax.decoding import greedy_decode
from equitune_jax.invariant_maps import OrbitCollapse, TemplateCanonicalizer
from equitune_jax.models.seq2seq_rnn import RnnSeq2Seq
from equitune_jax.models.view_cnn import multi_view_cnn, multi_view_design1, product_equitune
from equitune_jax.scan_symmetry import REFERENCE_REPRESENTATIVES, scan_factor, scan_invariant_maps, scan_product
from equitune_jax.wrappers import equitune, multi_equitune

from .nets import ImageLogitsNet, to_float64

ATOL = 1e-10
FACTORS = ("verb", "rl", "ud")


def _example():
    pairs = S.generate("scan_mini")
    cmd = next(p for p in pairs if p[0] == ("jump", "left", "twice", "and", "run", "up"))
    e = S.encode([cmd], 8, 13)
    return jnp.asarray(e.source[0]), jnp.asarray(e.prefix[0])


def _models(float64=True):
    base = RnnSeq2Seq(len(S.IN_VOCAB), len(S.OUT_VOCAB), 8, 8, key=jax.random.PRNGKey(0))
    base = to_float64(base) if float64 else base
    groups = [scan_factor(f) for f in FACTORS]
    maps = scan_invariant_maps(FACTORS, REFERENCE_REPRESENTATIVES)
    return base, groups, maps


def _max_gap(model, product, x):
    call = eqx.filter_jit(lambda m, x: m(x))
    y = call(model, x)
    return max(float(jnp.max(jnp.abs(call(model, product.act_input(g, x)) - product.act_output(g, y))))
               for g in product.elements)


def test_T5_design2_teacher_forced_and_dropping_S_breaks_it(x64):
    base, groups, maps = _models()
    product = scan_product(FACTORS)
    x = _example()
    model = multi_equitune(base, groups, maps, aggregate="log_softmax")
    assert _max_gap(model, product, x) < ATOL
    assert model.forward_passes == 6
    no_s = multi_equitune(base, groups, maps, aggregate="log_softmax", symmetrize=False)
    assert _max_gap(no_s, product, x) > 1e-4
    assert _max_gap(base, product, x) > 1e-4


def test_T5_joint_greedy_decode_permutes_token_for_token():
    base, groups, maps = _models(float64=False)
    product = scan_product(FACTORS)
    source, _ = _example()
    decode = eqx.filter_jit(lambda m, s: greedy_decode(m, s, 13))
    for model in (multi_equitune(base, groups, maps, aggregate="log_softmax"),
                  equitune(base, product, aggregate="log_softmax")):
        out = decode(model, source)
        for g in product.elements:
            np.testing.assert_array_equal(decode(model, product.act_input(g, source)), _out_ids(product, g, out))


def _out_ids(product, g, ids):
    for factor, gi in reversed(list(zip(product.factors, g))):
        ids = factor.act_output_ids(gi, ids)
    return ids


def test_T6_orbit_collapse_invariant_and_equivariant_and_wrong_group_fails(x64):
    _, groups, maps = _models()
    x = _example()
    for i, (gi, collapse) in enumerate(zip(groups, maps)):
        others = [g for j, g in enumerate(groups) if j != i]
        for other in others:
            for h in other.elements:
                for a, b in zip(collapse(other.act_input(h, x)), collapse(x)):
                    np.testing.assert_array_equal(a, b)
        for g in gi.elements:
            for a, b in zip(collapse(gi.act_input(g, x)), gi.act_input(g, collapse(x))):
                np.testing.assert_array_equal(a, b)
    # representatives keyed to the wrong group: collapse factor 0 itself in branch 0
    wrong = OrbitCollapse.of([groups[0]], [S.IN_VOCAB.index("jump")], [S.OUT_VOCAB.index("I_JUMP")])
    moved = groups[1].act_input(groups[1].elements[1], x)
    assert not np.array_equal(wrong(moved)[0], wrong(x)[0])  # not invariant to G_{-0}
    with pytest.raises(ValueError, match="representatives"):
        scan_invariant_maps(FACTORS, {"verb": "walk", "rl": "right", "ud": "up"})


def test_T6_template_canonicalizer_invariant_and_tie_case(x64):
    group = G.d4("vflip")
    canon = TemplateCanonicalizer(group, (6, 6, 1), seed=3)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 6, 1)))
    for g in group.elements:
        np.testing.assert_array_equal(canon(group.act_input(g, x)), canon(x))
    # documented failure: on a rotation-symmetric image the canonicalising element is not unique, so the
    # frame g*(x) is not equivariant (g*(h·x) != g*(x)∘h⁻¹ for some h), although c(x) itself stays invariant
    base = np.random.default_rng(1).integers(-5, 6, size=(6, 6, 1)).astype(np.float64)  # exact sums
    symmetric = jnp.asarray(sum(np.rot90(base, k, axes=(0, 1)) for k in range(4)))
    frame = lambda z: group.elements[int(canon.canonical_index(z))]
    broken = [h for h in group.elements
              if frame(group.act_input(h, symmetric)) != group.compose(frame(symmetric), group.inverse(h))]
    assert broken
    assert all(frame(group.act_input(h, x)) == group.compose(frame(x), group.inverse(h)) for h in group.elements)


def test_design2_rejects_non_commuting_factors():
    net = ImageLogitsNet(size=6, channels=6, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="do not commute"):
        multi_equitune(net, [G.rot90(), G.vflip()], [None, None])


def test_T7_one_vmapped_call_with_the_orbit_axis(monkeypatch):
    """Trace-time count of base-model calls and their leading axis: Σ|G_i| vs Π|G_i| (8 vs 6; 16 vs 12)."""
    from equitune_jax.wrappers import design1, design2, equitune_wrapper

    calls = []

    def recording(original):
        def call(model, xs, key=None, takes_key=True):
            calls.append(jax.tree.leaves(xs)[0].shape[0])
            return original(model, xs, key, takes_key)
        return call

    for module in (design1, design2, equitune_wrapper):
        monkeypatch.setattr(module, "batched_call", recording(module.batched_call))
    base, groups, maps = _models(float64=False)
    x = _example()
    trace = lambda model, x: eqx.filter_eval_shape(lambda m, x: m(x), model, x)
    trace(equitune(base, scan_product(FACTORS)), x)
    assert calls == [8]
    calls.clear()
    trace(multi_equitune(base, groups, maps), x)
    assert calls == [6]
    calls.clear()
    views = (G.rot90(), G.rot90())
    images = tuple(jnp.ones((8, 8, 1)) * k for k in range(2))
    trace(product_equitune(multi_view_cnn(2, 8, 1, 4, 8, 8, 10, key=jax.random.PRNGKey(1)), views), images)
    assert calls == [16]
    calls.clear()
    trace(multi_view_design1(views, 8, 1, 4, 8, 8, 10, key=jax.random.PRNGKey(2)), images)
    assert calls == [8, 8]  # φ then ψ, each one call over both views' orbits (12 with rot90 x hflip)


def test_multi_equizero_classwise_max_is_invariant(x64):
    """CLIP-style design 2 on rot90 × vflip: a full-D4 canonicaliser makes every branch invariant."""
    net = to_float64(ImageLogitsNet(size=6, channels=1, key=jax.random.PRNGKey(4)))
    d4 = G.d4("vflip")
    canon = TemplateCanonicalizer(d4, (6, 6, 1), seed=0)
    x = jnp.asarray(np.random.default_rng(5).normal(size=(6, 6, 1)))
    for reduce in ("mean", "classwise_max"):
        model = multi_equitune(net, [G.rot90(), G.vflip()], [canon, canon], aggregate="softmax",
                               allow_noncommuting=True, reduce=reduce)
        assert model.forward_passes == 6
        assert _max_gap(model, d4, x) < ATOL
