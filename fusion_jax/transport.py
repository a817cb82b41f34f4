"""Optimal-transport couplings between two layers' units (spec fusion.md §1, §4, §9, §12).

A coupling ``T`` is an ``[n_A, n_B]`` float64 matrix with uniform marginals ``mu = 1/n_A`` (rows) and
``nu = 1/n_B`` (columns) and mass 1. It maps model A's basis onto the anchor B's. From it derive

- ``outgoing(T) = S = n_B * T`` (column sums 1): what lives *in* the basis (rows, biases, LayerNorm
  parameters, CLS/embedding columns) is moved as ``S^T x_A``, a barycentric projection;
- ``incoming(T) = R = n_A * T`` (row sums 1): what *consumes* the basis (input columns) is moved as ``W_A R``.

With equal widths both are ``n T``, a permutation under exact OT. ``hetero_norm="reference"`` reproduces the
reference bug (``n_A * T`` on both sides, §9).
"""

import math

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog

SOLVERS = ("emd", "sinkhorn", "sinkhorn_for_widening")
HETERO_NORMS = ("corrected", "reference")
# beyond this lcm(n_A, n_B) the replicated assignment problem gets large; the LP is solved directly instead
MAX_REPLICATED_SIZE = 4096


def emd(cost: np.ndarray) -> np.ndarray:
    """Exact OT plan ``[n_A, n_B]`` for the cost ``[n_A, n_B]`` with uniform marginals (POT's ``ot.emd``).

    - equal sizes: ``linear_sum_assignment`` gives a permutation P and ``T = P / n`` (Birkhoff-von Neumann:
      an optimal vertex of the transportation polytope is a permutation);
    - unequal sizes, ``L = lcm(n_A, n_B) <= MAX_REPLICATED_SIZE``: scale the masses to integers (supply
      ``L/n_A`` per row, demand ``L/n_B`` per column). The transportation polytope with integer marginals has
      integral vertices (its constraint matrix is totally unimodular), so an optimum is an integral flow,
      i.e. an ``L x L`` assignment between replicated rows and columns: ``T = counts / L``. Exact.
    - otherwise: the same LP solved directly by HiGHS (``scipy.optimize.linprog``), also exact.

    Ties (dead or constant units) resolve deterministically: the solvers are deterministic given ``cost``.
    """
    cost = _check_cost(cost)
    n_a, n_b = cost.shape
    if n_a == n_b:
        rows, cols = linear_sum_assignment(cost)
        plan = np.zeros((n_a, n_b))
        plan[rows, cols] = 1.0 / n_a
        return plan
    size = math.lcm(n_a, n_b)
    if size <= MAX_REPLICATED_SIZE:
        rep_a, rep_b = size // n_a, size // n_b
        rows, cols = linear_sum_assignment(np.repeat(np.repeat(cost, rep_a, axis=0), rep_b, axis=1))
        counts = np.zeros((n_a, n_b))
        np.add.at(counts, (rows // rep_a, cols // rep_b), 1.0)
        return counts / size
    return _emd_linprog(cost)


def _emd_linprog(cost: np.ndarray) -> np.ndarray:
    n_a, n_b = cost.shape
    a_eq = np.zeros((n_a + n_b, n_a * n_b))
    for i in range(n_a):
        a_eq[i, i * n_b : (i + 1) * n_b] = 1.0
    for j in range(n_b):
        a_eq[n_a + j, j::n_b] = 1.0
    b_eq = np.concatenate([np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b)])
    result = linprog(cost.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if not result.success:
        raise RuntimeError(f"exact OT (HiGHS) failed: {result.message}")
    return np.maximum(result.x.reshape(n_a, n_b), 0.0)


def sinkhorn(cost: np.ndarray, reg: float, num_iter_max: int = 1000, stop_thr: float = 1e-9,
             check_every: int = 10) -> np.ndarray:
    """Entropic OT plan with uniform marginals, identical to POT's ``ot.bregman.sinkhorn_knopp`` (spec §4).

    ``K = exp(-C / reg)``, ``u = 1/n_A``, ``v = 1/n_B``; each iteration ``v = b / K^T u`` then ``u = a / K v``;
    every ``check_every`` iterations (from 0) stop once ``||colsum(diag(u) K diag(v)) - b||_2 < stop_thr``;
    on a non-finite value or a zero in ``K^T u`` revert to the previous ``u, v`` and stop. float64 throughout.
    Returns ``diag(u) K diag(v)`` ``[n_A, n_B]``.
    """
    cost = _check_cost(cost)
    if reg <= 0:
        raise ValueError(f"sinkhorn.reg must be positive, got {reg}")
    n_a, n_b = cost.shape
    a, b = np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b)
    u, v = np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b)
    kernel = np.exp(cost / -reg)
    scaled_kernel = (1.0 / a)[:, None] * kernel  # POT's evaluation order of u = a / (K v)
    for iteration in range(num_iter_max):
        u_prev, v_prev = u, v
        ktu = kernel.T @ u
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v = b / ktu
            u = 1.0 / (scaled_kernel @ v)
        if np.any(ktu == 0) or not (np.all(np.isfinite(u)) and np.all(np.isfinite(v))):
            u, v = u_prev, v_prev
            break
        if iteration % check_every == 0:
            marginal = np.einsum("i,ij,j->j", u, kernel, v)
            if np.linalg.norm(marginal - b) < stop_thr:
                break
    return u[:, None] * kernel * v[None, :]


def solve(cost: np.ndarray, solver: str, reg: float, *, num_iter_max: int = 1000, stop_thr: float = 1e-9,
          check_every: int = 10, incoming_size: int | None = None) -> np.ndarray:
    """The plan of ``solver`` (``emd``, ``sinkhorn``, or ``sinkhorn_for_widening``: Sinkhorn where the layer
    is wider than its incoming edge, ``incoming_size < n_B``, EMD otherwise)."""
    if solver not in SOLVERS:
        raise ValueError(f"fusion.solver must be one of {SOLVERS}, got {solver!r}")
    use_sinkhorn = solver == "sinkhorn" or (
        solver == "sinkhorn_for_widening" and incoming_size is not None and cost.shape[1] > incoming_size
    )
    if use_sinkhorn:
        return sinkhorn(cost, reg, num_iter_max, stop_thr, check_every)
    return emd(cost)


def outgoing(plan: np.ndarray, hetero_norm: str = "corrected") -> np.ndarray:
    """``S = n_B T`` ``[n_A, n_B]`` (column sums 1), or the reference's ``n_A T`` (§9)."""
    scale = plan.shape[1] if hetero_norm == "corrected" else plan.shape[0]
    return plan * scale


def incoming(plan: np.ndarray) -> np.ndarray:
    """``R = n_A T`` ``[n_A, n_B]`` (row sums 1); the same under both ``hetero_norm`` settings."""
    return plan * plan.shape[0]


def _check_cost(cost) -> np.ndarray:
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"a cost matrix must be 2-D and non-empty, got shape {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("the cost matrix has non-finite entries")
    return cost
