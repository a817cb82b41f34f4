"""Solvers, couplings, costs and joins (spec fusion.md §16 tests 5, 6, 8)."""

import json
from pathlib import Path

import numpy as np
import pytest

from fusion_jax import transport
from fusion_jax.cost import euclidean_cost, normalize_acts, normalize_rows, token_filter
from fusion_jax.joins import join

REFERENCE = json.loads((Path(__file__).parent / "data" / "pot_sinkhorn_reference.json").read_text())


def _plan_cost(plan, cost):
    return float((plan * cost).sum())


@pytest.mark.parametrize("case", range(len(REFERENCE["cases"])))
def test_sinkhorn_matches_pot_reference_plans(case):
    data = REFERENCE["cases"][case]
    cost = np.array(data["cost"])
    for reg, plan in data["sinkhorn"].items():
        np.testing.assert_allclose(transport.sinkhorn(cost, float(reg)), np.array(plan), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", range(len(REFERENCE["cases"])))
def test_emd_reaches_pot_optimum(case):
    data = REFERENCE["cases"][case]
    cost, pot_plan = np.array(data["cost"]), np.array(data["emd"])
    plan = transport.emd(cost)
    assert _plan_cost(plan, cost) == pytest.approx(_plan_cost(pot_plan, cost), abs=1e-12)
    np.testing.assert_allclose(plan.sum(1), 1 / cost.shape[0], atol=1e-15)
    np.testing.assert_allclose(plan.sum(0), 1 / cost.shape[1], atol=1e-15)


def test_sinkhorn_matches_live_pot_when_installed():
    ot = pytest.importorskip("ot")
    cost = np.random.default_rng(0).random((12, 9))
    cost /= cost.max()
    a, b = np.full(12, 1 / 12), np.full(9, 1 / 9)
    for reg in (0.01, 0.05, 0.2):
        np.testing.assert_allclose(transport.sinkhorn(cost, reg), ot.sinkhorn(a, b, cost, reg), atol=1e-8)
    np.testing.assert_allclose(transport.emd(cost), ot.emd(a, b, cost), atol=1e-12)


def test_square_emd_is_the_assignment_on_tie_free_costs():
    rng = np.random.default_rng(1)
    perm = rng.permutation(7)
    cost = rng.random((7, 7)) + 1.0
    cost[np.arange(7), perm] = rng.random(7) * 0.1  # the unique optimum
    plan = transport.emd(cost)
    expected = np.zeros((7, 7))
    expected[np.arange(7), perm] = 1 / 7
    np.testing.assert_array_equal(plan, expected)


@pytest.mark.parametrize("shape", [(12, 6), (6, 12), (5, 7)])
def test_unequal_emd_replicated_assignment_equals_the_lp(shape, monkeypatch):
    cost = np.random.default_rng(2).random(shape)
    replicated = transport.emd(cost)
    monkeypatch.setattr(transport, "MAX_REPLICATED_SIZE", 0)  # force the HiGHS LP path
    lp = transport.emd(cost)
    assert _plan_cost(replicated, cost) == pytest.approx(_plan_cost(lp, cost), abs=1e-10)
    for plan in (replicated, lp):
        np.testing.assert_allclose(plan.sum(1), 1 / shape[0], atol=1e-9)
        np.testing.assert_allclose(plan.sum(0), 1 / shape[1], atol=1e-9)


def test_outgoing_and_incoming_marginals():
    plan = transport.sinkhorn(np.random.default_rng(3).random((8, 5)), 0.1)
    s, r = transport.outgoing(plan), transport.incoming(plan)
    np.testing.assert_allclose(s.sum(0), 1.0, atol=1e-9)  # S: column sums 1
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-6)  # R: row sums 1
    np.testing.assert_allclose(r.sum(0), 8 / 5, atol=1e-9)  # and column sums n_A / n_B
    # the reference's bug: n_A T on the outgoing side has column sums n_A / n_B
    np.testing.assert_allclose(transport.outgoing(plan, "reference").sum(0), 8 / 5, atol=1e-9)


def test_sinkhorn_for_widening_picks_the_solver_by_size():
    cost = np.random.default_rng(4).random((6, 6))
    small_in, large_in = np.zeros((2, 2)), np.zeros((8, 8))
    widening = transport.solve(cost, "sinkhorn_for_widening", 0.1, incoming_size=small_in.size)
    np.testing.assert_allclose(widening, transport.sinkhorn(cost, 0.1))
    np.testing.assert_array_equal(transport.solve(cost, "sinkhorn_for_widening", 0.1, incoming_size=large_in.size),
                                  transport.emd(cost))
    with pytest.raises(ValueError, match="fusion.solver"):
        transport.solve(cost, "greedy", 0.1)


def test_sinkhorn_reverts_on_numerical_failure():
    cost = np.array([[0.0, 1.0], [1.0, 0.0]])
    plan = transport.sinkhorn(cost, 1e-4)  # K underflows to exact zeros off the diagonal but stays usable
    assert np.all(np.isfinite(plan))
    cost_dead = np.array([[0.0, 1.0], [1.0, 1.0]])
    # K's second column underflows to 0, so K^T u has a zero at iteration 0: revert to u = v = 1/2 and stop
    plan = transport.sinkhorn(cost_dead, 1e-3)
    np.testing.assert_array_equal(plan, np.exp(cost_dead / -1e-3) / 4)


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


def test_standardisation_uses_the_unbiased_std_and_cost_is_not_squared():
    x = np.array([[1.0, 2.0, 4.0]])
    z = normalize_acts(x, "standardize")
    np.testing.assert_allclose(z, (x - x.mean()) / (x.std(ddof=1) + 1e-9))
    a, b = np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 0.0]])
    np.testing.assert_allclose(euclidean_cost(a, b), [[0.0], [1.0]])  # 5 / max 5, not 25 / 25 vs 0
    np.testing.assert_allclose(euclidean_cost(np.array([[0.0], [1.0], [2.0]]), np.array([[0.0]])), [[0], [0.5], [1]])
    np.testing.assert_allclose(np.linalg.norm(normalize_rows(np.array([[3.0, 4.0]]), "l2")), 1.0)


def test_window_filter_keeps_cls_and_the_central_patches():
    kept = token_filter("window_6", 8)
    assert len(kept) == 37 and kept[0] == 0
    assert 1 + 9 in kept and 1 + 0 not in kept and 1 + 63 not in kept and 1 + 54 in kept
    assert token_filter("all", 8) is None
    with pytest.raises(ValueError, match="seq_filter"):
        token_filter("window_9", 8)


def test_join_of_equal_permutations_is_that_permutation():
    perm = np.eye(5)[np.random.default_rng(5).permutation(5)] / 5
    for policy in ("mean", "only_resid", "no_resid"):
        np.testing.assert_array_equal(join(policy, perm, perm), perm)
    m_s, m_b = np.arange(1.0, 6.0), np.ones(5)
    for policy in ("weighted_scalar", "weighted_matrix"):
        np.testing.assert_allclose(join(policy, perm, perm, m_s, m_b), perm, atol=1e-15)


def test_join_of_different_permutations_is_not_a_permutation():
    rng = np.random.default_rng(6)
    p1, p2 = (np.eye(6)[rng.permutation(6)] / 6 for _ in range(2))
    mixed = join("mean", p1, p2)
    assert not np.all(np.isin(mixed * 6, (0.0, 1.0)))
    np.testing.assert_allclose(mixed.sum(0), 1 / 6)
    np.testing.assert_array_equal(join("only_resid", p1, p2), p1)
    np.testing.assert_array_equal(join("no_resid", p1, p2), p2)
    # weighted_matrix weighs each anchor unit (column) separately
    w = join("weighted_matrix", p1, p2, np.array([1.0, 0, 0, 0, 0, 0]), np.array([0.0, 1, 1, 1, 1, 1]))
    np.testing.assert_array_equal(w[:, 0], p1[:, 0])
    np.testing.assert_array_equal(w[:, 1:], p2[:, 1:])
    with pytest.raises(ValueError, match="needs activations"):
        join("weighted_scalar", p1, p2)
