"""Merging the couplings of a residual join ``x + f(x)`` (spec fusion.md §5, ``fusion.resid_policy``).

``skip`` and ``branch`` are ``[n_A, n_B]`` couplings of the skip input and of the branch output (W_O or
fc2). The weighted policies weigh them by the anchor's mean absolute activation ``m`` of the skip input and
of the branch output: scalars for ``weighted_scalar``, per anchor unit ``[n_B]`` for ``weighted_matrix``.
"""

import numpy as np

RESID_POLICIES = ("mean", "weighted_scalar", "weighted_matrix", "only_resid", "no_resid")
WEIGHTED_POLICIES = ("weighted_scalar", "weighted_matrix")


def join(policy: str, skip: np.ndarray, branch: np.ndarray, skip_magnitude=None, branch_magnitude=None) -> np.ndarray:
    """The coupling after the join ``[n_A, n_B]``.

    ``mean``: ``(T_skip + T_branch) / 2``; ``weighted_scalar``: ``w_s T_skip + w_b T_branch`` with
    ``w = m / (m_s + m_b)``; ``weighted_matrix``: ``T_skip diag(w_s) + T_branch diag(w_b)`` per column;
    ``only_resid``: ``T_skip``; ``no_resid``: ``T_branch``.
    """
    if skip.shape != branch.shape:
        raise ValueError(f"a residual join needs couplings of one shape, got {skip.shape} and {branch.shape}")
    if policy == "mean":
        return 0.5 * skip + 0.5 * branch
    if policy == "only_resid":
        return skip
    if policy == "no_resid":
        return branch
    if policy in WEIGHTED_POLICIES:
        if skip_magnitude is None or branch_magnitude is None:
            raise ValueError(f"fusion.resid_policy {policy!r} needs activations of the anchor (pass data)")
        m_s, m_b = np.asarray(skip_magnitude, np.float64), np.asarray(branch_magnitude, np.float64)
        if policy == "weighted_scalar":
            m_s, m_b = m_s.mean(), m_b.mean()
        total = np.where(m_s + m_b > 0, m_s + m_b, 1.0)
        w_s = np.where(m_s + m_b > 0, m_s / total, 0.5)
        return skip * w_s + branch * (1.0 - w_s)
    raise ValueError(f"fusion.resid_policy must be one of {RESID_POLICIES}, got {policy!r}")
