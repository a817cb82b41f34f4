"""Optimal-transport couplings between two layers' units, solved by POT as the reference solves them
(spec fusion.md §1, §4, §9, §12).

A plan ``T = OT(mu, nu, C)`` is POT's ``[n_A, n_B]`` coupling with uniform marginals ``mu = 1/n_A`` (rows) and
``nu = 1/n_B`` (columns) and mass 1: ``ot.emd(mu, nu, C)`` (network simplex) or ``ot.sinkhorn(mu, nu, C, reg)``,
called with the reference's arguments (``otfusion_lib.fc_fusion``), so that exact-OT ties break as the
reference's do. Like the reference, fusion then works with the **transport map** ``T~ = n_A T`` cast to
float32 (``t_out.float() / beta``): a permutation matrix under exact OT with equal widths. From it derive

- ``incoming(T~) = R = n_A T`` (row sums 1): what *consumes* the basis (input columns) moves as ``W_A R``;
- ``outgoing(T~) = S = n_B T`` (column sums 1): what lives *in* the basis (rows, biases, LayerNorm
  parameters, CLS/embedding columns) moves as ``S^T x_A``, a barycentric projection.

With equal widths ``S = R = T~``. ``hetero_norm="reference"`` reproduces the reference's bug on
heterogeneous edges: ``n_A T`` on the outgoing side too (§9).

The reference's cost matrix is float32 (torch); ours is float64, which POT's network simplex uses anyway
(it casts ``C`` to float64), so plans differ from the reference's only where costs tie in float32 but not in
float64.
"""

import numpy as np
import ot

SOLVERS = ("emd", "sinkhorn", "sinkhorn_for_widening")


def uniform(n: int) -> np.ndarray:
    """The uniform marginal ``[n]``, as the reference builds it (``np.divide(np.ones(n), n)``)."""
    return np.divide(np.ones(n), n)


def emd(cost: np.ndarray, num_iter_max: int = 100_000) -> np.ndarray:
    """Exact OT plan ``[n_A, n_B]``: ``ot.emd(mu, nu, cost)``. POT warns when it stops before optimality
    (``numItermax`` reached: with POT's default 100000, the reference's setting, on layers of a few thousand
    units)."""
    cost = _check_cost(cost)
    return ot.emd(uniform(cost.shape[0]), uniform(cost.shape[1]), cost, numItermax=num_iter_max)


def sinkhorn(cost: np.ndarray, reg: float, num_iter_max: int = 1000, stop_thr: float = 1e-9) -> np.ndarray:
    """Entropic OT plan ``[n_A, n_B]`` of ``ot.sinkhorn(mu, nu, cost, reg)`` (POT's ``sinkhorn_knopp``:
    marginal error checked every 10 iterations against ``stop_thr``, at most ``num_iter_max`` iterations;
    POT warns when it does not converge)."""
    cost = _check_cost(cost)
    if reg <= 0:
        raise ValueError(f"sinkhorn.reg must be positive, got {reg}")
    return ot.sinkhorn(uniform(cost.shape[0]), uniform(cost.shape[1]), cost, reg, numItermax=num_iter_max,
                       stopThr=stop_thr)


def solve(cost: np.ndarray, solver: str, reg: float, *, num_iter_max: int = 1000, stop_thr: float = 1e-9,
          emd_num_iter_max: int = 100_000, incoming_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The plan of ``solver``: ``emd``, ``sinkhorn``, or ``sinkhorn_for_widening``: Sinkhorn where the cost
    ``[n_A, n_B]`` is larger than the incoming map in either dimension, EMD otherwise and for a layer without
    an incoming map (the reference's rule)."""
    if solver not in SOLVERS:
        raise ValueError(f"fusion.solver must be one of {SOLVERS}, got {solver!r}")
    widening = incoming_shape is not None and (cost.shape[0] > incoming_shape[0] or cost.shape[1] > incoming_shape[1])
    if solver == "sinkhorn" or (solver == "sinkhorn_for_widening" and widening):
        return sinkhorn(cost, reg, num_iter_max, stop_thr)
    return emd(cost, emd_num_iter_max)


def transport_map(plan: np.ndarray) -> np.ndarray:
    """``T~ = n_A T`` ``[n_A, n_B]`` in float32 (row sums 1), the map the fusion applies and returns."""
    return (plan * plan.shape[0]).astype(np.float32)


def outgoing(tmap: np.ndarray, hetero_norm: str = "corrected") -> np.ndarray:
    """``S = n_B T = (n_B / n_A) T~`` (column sums 1), or the reference's ``n_A T = T~`` (§9); float64."""
    n_a, n_b = tmap.shape
    scale = n_b / n_a if hetero_norm == "corrected" else 1.0
    return np.asarray(tmap, np.float64) * scale


def incoming(tmap: np.ndarray) -> np.ndarray:
    """``R = n_A T = T~`` (row sums 1), the same under both ``hetero_norm`` settings; float64."""
    return np.asarray(tmap, np.float64)


def _check_cost(cost) -> np.ndarray:
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"a cost matrix must be 2-D and non-empty, got shape {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("the cost matrix has non-finite entries")
    return cost
