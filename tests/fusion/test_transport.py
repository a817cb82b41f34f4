"""POT as the OT backend, transport maps, costs and joins (spec fusion.md §16 tests 5, 6, 8)."""

import json
import logging
from pathlib import Path

import numpy as np
import ot
import pytest
from scipy.optimize import linear_sum_assignment

from fusion_jax import EmdConfig, FusionConfig, SinkhornConfig, transport
from fusion_jax.align import Aligner
from fusion_jax.cost import euclidean_cost, normalize_acts, normalize_rows, token_filter
from fusion_jax.joins import join

# plans of POT 0.9.5 on fixed costs (tests/fusion/make_pot_reference.py): the numbers the solvers were checked
# against before POT became the backend, so a POT upgrade or a changed call that moves them is noticed
REFERENCE = json.loads((Path(__file__).parent / "data" / "pot_sinkhorn_reference.json").read_text())

def _uniform(n):
    return np.ones(n) / n


def test_solvers_are_pots_with_the_references_arguments():
    cost = np.random.default_rng(0).random((12, 9))
    cost /= cost.max()
    a, b = _uniform(12), _uniform(9)
    np.testing.assert_array_equal(transport.emd(cost), ot.emd(a, b, cost))
    for reg in (0.01, 0.08):
        np.testing.assert_array_equal(transport.sinkhorn(cost, reg), ot.bregman.sinkhorn(a, b, cost, reg=reg))
    np.testing.assert_array_equal(transport.solve(cost, "sinkhorn", 0.08), transport.sinkhorn(cost, 0.08))
    with pytest.raises(ValueError, match="fusion.solver"):
        transport.solve(cost, "greedy", 0.1)


@pytest.mark.parametrize("case", range(len(REFERENCE["cases"])))
def test_solvers_reproduce_the_stored_pot_plans(case):
    data = REFERENCE["cases"][case]
    cost = np.array(data["cost"])
    np.testing.assert_allclose(transport.emd(cost), np.array(data["emd"]), rtol=0, atol=1e-15)
    for reg, plan in data["sinkhorn"].items():
        np.testing.assert_allclose(transport.sinkhorn(cost, float(reg)), np.array(plan), rtol=0, atol=1e-12)


def test_exact_ot_breaks_ties_as_pot_does():
    """Three dead (constant) units standardise to zero vectors: their costs tie, and the map is POT's network
    simplex choice (a fully tied cost shows it is not the assignment scipy's LSA picks)."""
    rng = np.random.default_rng(1)
    acts_a, acts_b = rng.normal(size=(6, 40)), rng.normal(size=(6, 40))
    acts_a[[1, 3, 4]] = 2.0
    acts_b[[0, 2, 5]] = -1.0
    features_a, features_b = normalize_acts(acts_a, "standardize"), normalize_acts(acts_b, "standardize")
    aligner = Aligner(FusionConfig(solver="emd"))
    tmap = aligner.couple("tie", lambda: (features_a, features_b), (6, 6))
    cost = euclidean_cost(features_a, features_b)
    np.testing.assert_array_equal(tmap, 6 * ot.emd(_uniform(6), _uniform(6), cost))
    np.testing.assert_array_equal(aligner.maps["tie"], tmap.astype(np.float32))
    np.testing.assert_array_equal(aligner.costs["tie"], cost.astype(np.float32))
    assert np.array_equal(np.sort(tmap, axis=1)[:, -1], np.ones(6)) and tmap.sum() == 6  # a permutation
    # a fully tied cost: POT does not return the identity that the assignment solver returns
    tied = transport.emd(np.ones((4, 4))) * 4
    _, cols = linear_sum_assignment(np.ones((4, 4)))
    assert not np.array_equal(tied, np.eye(4)[cols]), tied
    np.testing.assert_array_equal(tied, transport.emd(np.ones((4, 4))) * 4)  # deterministic


def test_solver_warnings_name_the_map(caplog):
    features = np.random.default_rng(2).random((2, 60, 8))
    aligner = Aligner(FusionConfig(solver="emd", emd=EmdConfig(num_iter_max=3)))
    with caplog.at_level(logging.WARNING, logger="fusion_jax.align"):
        aligner.couple("layer0.fc1", lambda: tuple(features), (60, 60))
    assert "OT map layer0.fc1 (60 x 60)" in caplog.text and "numItermax" in caplog.text


def test_transport_maps_and_their_marginals():
    plan = transport.sinkhorn(np.random.default_rng(3).random((8, 5)), 0.1)
    tmap = transport.transport_map(plan)
    assert tmap.dtype == np.float32
    np.testing.assert_allclose(tmap, 8 * plan, rtol=1e-6)
    s, r = transport.outgoing(tmap), transport.incoming(tmap)
    np.testing.assert_allclose(s.sum(0), 1.0, atol=1e-6)  # S = n_B T: column sums 1
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-6)  # R = n_A T: row sums 1 ...
    np.testing.assert_allclose(r.sum(0), 8 / 5, atol=1e-6)  # ... and column sums n_A / n_B
    # the reference's bug: n_A T on the outgoing side has column sums n_A / n_B
    np.testing.assert_allclose(transport.outgoing(tmap, "reference").sum(0), 8 / 5, atol=1e-6)
    # equal widths under exact OT: T~ is exactly a permutation matrix
    perm = transport.transport_map(transport.emd(euclidean_cost(np.eye(7), np.eye(7)[::-1])))
    np.testing.assert_array_equal(perm, np.eye(7, dtype=np.float32)[::-1])


def test_sinkhorn_for_widening_compares_the_cost_with_the_incoming_map():
    cost = np.random.default_rng(4).random((6, 6))
    for incoming, expected in (((4, 4), transport.sinkhorn(cost, 0.1)), ((6, 3), transport.sinkhorn(cost, 0.1)),
                               ((6, 6), transport.emd(cost)), (None, transport.emd(cost))):
        np.testing.assert_array_equal(transport.solve(cost, "sinkhorn_for_widening", 0.1, incoming_shape=incoming),
                                      expected)


def test_sinkhorn_self_plan_sharpens_as_reg_shrinks():
    cost = euclidean_cost(*(2 * [np.random.default_rng(5).normal(size=(10, 30))]))
    mass_off_diagonal = [1 - np.trace(transport.sinkhorn(cost, reg)) for reg in (0.3, 0.04, 0.02)]
    assert mass_off_diagonal[0] > mass_off_diagonal[1] > mass_off_diagonal[2], mass_off_diagonal
    with pytest.raises(ValueError, match="fusion.sinkhorn.reg"):
        SinkhornConfig(reg=0.0)
    with pytest.raises(ValueError, match="fusion.emd.num_iter_max"):
        EmdConfig(num_iter_max=0)


def test_constant_activations_standardise_to_zero_and_ties_resolve_deterministically():
    acts = np.ones((4, 30))
    acts[1] = np.linspace(0, 1, 30)
    z = normalize_acts(acts, "standardize")
    np.testing.assert_array_equal(z[[0, 2, 3]], 0.0)
    cost = euclidean_cost(z, z)
    assert np.all(np.isfinite(cost)) and cost.max() == 1.0
    first = transport.emd(cost)
    for _ in range(3):
        np.testing.assert_array_equal(transport.emd(cost), first)
    assert euclidean_cost(np.zeros((3, 4)), np.zeros((2, 4))).max() == 0.0  # max = 0 guarded


def test_normalisations_follow_the_reference():
    x = np.array([[1.0, 2.0, 4.0]])
    np.testing.assert_allclose(normalize_acts(x, "standardize"), (x - x.mean()) / (x.std(ddof=1) + 1e-9))
    a, b = np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 0.0]])
    np.testing.assert_allclose(euclidean_cost(a, b), [[0.0], [1.0]])  # 5 / max 5, not 25 / 25 vs 0
    np.testing.assert_allclose(euclidean_cost(np.array([[0.0], [1.0], [2.0]]), np.array([[0.0]])), [[0], [0.5], [1]])
    w = np.array([[3.0, 4.0], [0.0, 0.0], [1e-10, 0.0]])
    np.testing.assert_array_equal(normalize_rows(w, "l2"), w / (np.linalg.norm(w, axis=1, keepdims=True) + 1e-9))
    assert normalize_rows(w, "l2")[2, 0] == pytest.approx(1e-10 / (1e-10 + 1e-9))  # not max(||w||, eps): 1.0
    np.testing.assert_array_equal(normalize_rows(w, "global_max"), w / (4.0 + 1e-9))
    np.testing.assert_array_equal(normalize_acts(np.array([[3.0, 4.0]]), "unit"), [[0.6, 0.8]])


def test_window_filter_keeps_cls_and_the_central_patches():
    kept = token_filter("window_6", 8)
    assert len(kept) == 37 and kept[0] == 0
    assert 1 + 9 in kept and 1 + 0 not in kept and 1 + 63 not in kept and 1 + 54 in kept
    assert token_filter("all", 8) is None
    with pytest.raises(ValueError, match="seq_filter"):
        token_filter("window_9", 8)


def test_join_of_equal_permutations_is_that_permutation():
    perm = np.eye(5)[np.random.default_rng(5).permutation(5)]
    for policy in ("mean", "only_resid", "no_resid"):
        np.testing.assert_array_equal(join(policy, perm, perm), perm)
    m_s, m_b = np.arange(1.0, 6.0), np.ones(5)
    for policy in ("weighted_scalar", "weighted_matrix"):
        np.testing.assert_allclose(join(policy, perm, perm, m_s, m_b), perm, atol=1e-15)


def test_join_of_different_permutations_is_not_a_permutation():
    rng = np.random.default_rng(6)
    p1, p2 = (np.eye(6)[rng.permutation(6)] for _ in range(2))
    mixed = join("mean", p1, p2)
    assert not np.all(np.isin(mixed, (0.0, 1.0)))
    np.testing.assert_allclose(mixed.sum(0), 1.0)
    np.testing.assert_array_equal(join("only_resid", p1, p2), p1)
    np.testing.assert_array_equal(join("no_resid", p1, p2), p2)
    # weighted_matrix weighs each anchor unit (column) separately
    w = join("weighted_matrix", p1, p2, np.array([1.0, 0, 0, 0, 0, 0]), np.array([0.0, 1, 1, 1, 1, 1]))
    np.testing.assert_array_equal(w[:, 0], p1[:, 0])
    np.testing.assert_array_equal(w[:, 1:], p2[:, 1:])
    with pytest.raises(ValueError, match="needs activations"):
        join("weighted_scalar", p1, p2)
