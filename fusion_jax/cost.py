"""Ground costs between the units of two layers (spec fusion.md §3).

Features are ``[units, features]`` float64 matrices: for activations one row per neuron over every kept
token of every probe input (§3.1), for weights one row per output unit (§3.2). The cost is the Euclidean
(not squared) distance between rows, divided by its maximum so that it lies in ``[0, 1]`` and the Sinkhorn
``reg`` is absolute.
"""

import numpy as np

NORMALIZE_ACTS = ("standardize", "center", "unit", "none")
ROW_NORMS = ("l2", "global_max", "global_maxabs", "none")
STD_EPS = 1e-9  # (a - mean) / (std + eps)
UNIT_EPS = 1e-12  # torch.nn.functional.normalize's eps
WEIGHT_EPS = 1e-9  # GroundMetric._normed_vecs and the global max switches


def normalize_acts(features: np.ndarray, mode: str) -> np.ndarray:
    """Per-neuron normalisation of ``[units, samples]`` activations, as the reference's ``transform_acts``.

    ``standardize``: ``(a - mean) / (std + 1e-9)`` with the unbiased std (a constant neuron becomes the zero
    vector); ``center``: ``a - mean``; ``unit``: rows scaled to unit L2 norm, ``a / max(||a||, 1e-12)``
    (``torch.nn.functional.normalize``); ``none``: unchanged.
    """
    features = np.asarray(features, np.float64)
    if mode == "standardize":
        centred = features - features.mean(axis=1, keepdims=True)
        std = features.std(axis=1, ddof=1, keepdims=True) if features.shape[1] > 1 else np.zeros_like(centred[:, :1])
        return centred / (std + STD_EPS)
    if mode == "center":
        return features - features.mean(axis=1, keepdims=True)
    if mode == "unit":
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), UNIT_EPS)
    if mode == "none":
        return features
    raise ValueError(f"acts.normalize must be one of {NORMALIZE_ACTS}, got {mode!r}")


def normalize_rows(rows: np.ndarray, mode: str) -> np.ndarray:
    """Weight-row normalisation of ``[units, features]`` (§3.2, ``wts.row_norm``), as the reference's
    ``GroundMetric.process``: ``l2``: ``w / (||w|| + 1e-9)`` per row; ``global_max`` / ``global_maxabs``:
    ``w / (max + 1e-9)`` / ``w / (max |w| + 1e-9)`` over the matrix (the reference's dataset switches);
    ``none``: unchanged."""
    rows = np.asarray(rows, np.float64)
    if mode == "l2":
        return rows / (np.linalg.norm(rows, axis=1, keepdims=True) + WEIGHT_EPS)
    if mode == "global_max":
        return rows / (rows.max() + WEIGHT_EPS)
    if mode == "global_maxabs":
        return rows / (np.abs(rows).max() + WEIGHT_EPS)
    if mode == "none":
        return rows
    raise ValueError(f"wts.row_norm must be one of {ROW_NORMS}, got {mode!r}")


def _nonzero(x: float) -> float:
    return x if x != 0 else 1.0


def euclidean_cost(features_a: np.ndarray, features_b: np.ndarray) -> np.ndarray:
    """``C_ij = ||f^A_i - f^B_j||_2 / max C`` ``[n_A, n_B]`` (max guarded against 0; float64)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features to compare must be [units, features] with equal features, got {a.shape}, {b.shape}")
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    cost = np.sqrt(np.maximum(squared, 0.0))
    return cost / _nonzero(cost.max())


def token_filter(seq_filter: str, grid_size: int, cls_index: int = 0) -> np.ndarray | None:
    """Indices of the kept tokens of a ``1 + grid_size**2``-token sequence (CLS first), or None for all.

    ``window_k``: CLS plus the central ``k x k`` of the patch grid (the reference's ``window_6`` keeps 37 of
    65 tokens on an 8 x 8 grid); ``all``: every token.
    """
    if seq_filter == "all":
        return None
    if not seq_filter.startswith("window_") or not seq_filter[len("window_"):].isdigit():
        raise ValueError(f"acts.seq_filter must be 'all' or 'window_<k>', got {seq_filter!r}")
    window = int(seq_filter[len("window_"):])
    if not 0 < window <= grid_size:
        raise ValueError(f"acts.seq_filter {seq_filter!r} needs 0 < k <= the patch grid side {grid_size}")
    start = (grid_size - window) // 2
    rows = np.arange(start, start + window)
    patches = (rows[:, None] * grid_size + rows[None, :]).ravel() + 1  # +1: CLS comes first
    return np.concatenate([[cls_index], patches])


def neuron_features(acts: np.ndarray) -> np.ndarray:
    """``[inputs, kept tokens, units]`` activations -> ``[units, inputs * kept tokens]`` (each token a sample)."""
    acts = np.asarray(acts, np.float64)
    return acts.reshape(-1, acts.shape[-1]).T
