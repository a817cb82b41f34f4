"""T8: group axioms (closure, identity, inverses, distinct elements) for every group the package builds."""

import numpy as np
import pytest

from equitune_jax import groups as G
from equitune_jax.data.scan import IN_VOCAB, OUT_VOCAB
from equitune_jax.scan_symmetry import scan_factor, scan_product

RNG = np.random.default_rng(0)
IMAGE = RNG.normal(size=(5, 5, 2))
VOCAB = ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize("group", [G.rot90(), G.hflip(), G.vflip(), G.d4(), G.d4("vflip"), G.rot90(output="same"),
                                   G.d4(output="same")], ids=lambda g: g.name + g.output)
def test_image_group_axioms(group):
    G.check_axioms(group, IMAGE, IMAGE)
    assert group.identity == (0, 0)
    images = {np.asarray(group.act_input(g, IMAGE)).tobytes() for g in group.elements}
    assert len(images) == group.size  # distinct elements act distinctly on a generic image


def test_sizes_and_rot90_inverse():
    assert (G.rot90().size, G.hflip().size, G.vflip().size, G.d4().size) == (4, 2, 2, 8)
    assert [G.rot90().inverse(g) for g in G.rot90().elements] == [(0, 0), (0, 3), (0, 2), (0, 1)]


def test_flips_are_named_axes():
    x = np.arange(6.0).reshape(2, 3, 1)
    np.testing.assert_array_equal(G.hflip().act_input((1, 0), x), x[:, ::-1])
    np.testing.assert_array_equal(G.vflip().act_input((1, 0), x), x[::-1])


def test_vocabulary_groups():
    cycle = G.vocab_cycle(VOCAB, ["a", "b", "c"])
    assert cycle.size == 3
    G.check_axioms(cycle, np.arange(6), RNG.normal(size=6))
    ids = np.array([0, 1, 2, 3])
    g = cycle.elements[1]
    np.testing.assert_array_equal(cycle.act_input(g, ids), [1, 2, 0, 3])
    logits = RNG.normal(size=6)
    moved = np.asarray(cycle.act_output(g, logits))
    np.testing.assert_allclose(moved[[1, 2, 0]], logits[[0, 1, 2]])  # (π·ℓ)[π(v)] = ℓ[v]
    swaps = G.vocab_swaps(VOCAB, [("a", "b"), ("c", "d")])
    assert swaps.size == 2
    G.check_axioms(swaps, np.arange(6), RNG.normal(size=6))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        G.vocab_swaps(VOCAB, [("a", "z")])


def test_products():
    p = G.product(G.vocab_swaps(VOCAB, [("a", "b")]), G.vocab_swaps(VOCAB, [("c", "d")]),
                  G.vocab_cycle(VOCAB, ["e", "f"]))
    assert p.size == 8 and len(set(p.elements)) == 8
    G.check_axioms(p, np.arange(6), RNG.normal(size=6))
    scan = scan_product(["verb", "rl", "ud"])
    assert scan.size == 8
    G.check_axioms(scan, np.arange(len(IN_VOCAB)), RNG.normal(size=len(OUT_VOCAB)))
    views = G.per_input_product(G.rot90(), G.hflip())
    assert views.size == 8
    G.check_axioms(views, (IMAGE, IMAGE[..., :1]))
    for f in ("verb", "rl", "ud"):
        G.check_axioms(scan_factor(f), np.arange(len(IN_VOCAB)), RNG.normal(size=len(OUT_VOCAB)))


def test_non_commuting_product_is_rejected():
    """rot90 × vflip is D4 as a set, but not a direct product: the tuple of inverses is not the inverse."""
    with pytest.raises(ValueError):
        G.check_axioms(G.product(G.rot90(), G.vflip()), IMAGE)
    assert not G.commute(G.rot90(), G.vflip(), IMAGE)
    assert G.commute(scan_factor("verb"), scan_factor("rl"), np.arange(len(IN_VOCAB)), RNG.normal(size=len(OUT_VOCAB)))


def test_reynolds_is_a_projection(x64):
    group = G.d4(output="same")
    y = RNG.normal(size=(5, 5, 3))
    s = np.asarray(G.reynolds(group, y))
    np.testing.assert_allclose(G.reynolds(group, s), s, atol=1e-12)
    for h in group.elements:
        np.testing.assert_allclose(group.act_output(h, s), s, atol=1e-12)
    # S_{G_j} commutes with ρ(g_i) for i != j (direct product of vocabulary swaps)
    verb, rl = scan_factor("verb"), scan_factor("rl")
    logits = RNG.normal(size=len(OUT_VOCAB))
    for g in rl.elements:
        np.testing.assert_allclose(G.reynolds(verb, rl.act_output(g, logits)),
                                   rl.act_output(g, G.reynolds(verb, logits)), atol=1e-12)
