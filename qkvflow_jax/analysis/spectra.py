"""Eigenvalues of W_Q W_K^T and W_V W_O per head over depth-time (spec §4.1, fixes F4 and F7).

Per head h, M_QK^h = W_Q^h (W_K^h)^T and M_OV^h = W_V^h W_O^h are D x D of rank <= d_h; their nonzero
eigenvalues are exactly those of the d_h x d_h products (W_K^h)^T W_Q^h and W_O^h W_V^h, which is what is
computed. Eigenvalues are complex and stay complex (F7), sorted by |lambda| descending; biases and 1/sqrt(d_h)
are ignored unless ``include_attn_scale``. Weights come from the model's own unit code (F4).
"""

import numpy as np

from ..model import DiffEqFormerLMHeadModel


def attention_weights(model: DiffEqFormerLMHeadModel, t: float) -> dict[str, np.ndarray]:
    """W_Q, W_K, W_V (D, H, d_h), W_O (H, d_h, D), W_fc (D, M), W_pr (M, D) generated at time t."""
    w = model.field.weights_at(t)
    qkv = np.asarray(w.qkv_w.rearrange(("qkv", "embed", "heads", "head_size")).array, np.float64)
    return {"q": qkv[0], "k": qkv[1], "v": qkv[2],
            "o": np.asarray(w.out_w.rearrange(("heads", "head_size", "embed")).array, np.float64),
            "fc": np.asarray(w.fc_w.rearrange(("embed", "mlp")).array, np.float64),
            "proj": np.asarray(w.proj_w.rearrange(("mlp", "embed")).array, np.float64)}


def sorted_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Complex eigenvalues of a (..., n, n) array, sorted by |lambda| descending along the last axis."""
    eig = np.linalg.eigvals(matrix)
    order = np.argsort(-np.abs(eig), axis=-1, kind="stable")
    return np.take_along_axis(eig, order, axis=-1)


def head_spectra(q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray,
                 include_attn_scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Nonzero eigenvalues of M_QK^h and M_OV^h per head: two complex (H, d_h) arrays."""
    qk = np.einsum("dha,dhb->hab", k, q)  # (W_K^h)^T W_Q^h
    if include_attn_scale:
        qk = qk / np.sqrt(q.shape[-1])
    ov = np.einsum("had,dhb->hab", o, v)  # W_O^h W_V^h
    return sorted_eigenvalues(qk), sorted_eigenvalues(ov)


def zero_pad(eigs: np.ndarray, size: int) -> np.ndarray:
    """Pad the last axis with zeros to ``size`` (the reference's (T, H, D) layout)."""
    pad = [(0, 0)] * (eigs.ndim - 1) + [(0, size - eigs.shape[-1])]
    return np.pad(eigs, pad)


def ff_spectrum(fc: np.ndarray, proj: np.ndarray, subset: int | None = None, seed: int = 0) -> np.ndarray:
    """eig(W_fc W_pr) (D x D, ignoring the nonlinearity), from all hidden units or a random subset of them."""
    if subset is not None:
        idx = np.random.default_rng(seed).choice(fc.shape[1], size=subset, replace=False)
        fc, proj = fc[:, idx], proj[idx]
    return sorted_eigenvalues(fc @ proj)


def spectra_over_time(model: DiffEqFormerLMHeadModel, times, include_attn_scale: bool = False) -> dict:
    """{"t": (T,), "qk": (T, H, d_h), "ov": (T, H, d_h), "ff": (T, D)} complex eigenvalues at each t."""
    qk, ov, ff = [], [], []
    for t in times:
        w = attention_weights(model, float(t))
        a, b = head_spectra(w["q"], w["k"], w["v"], w["o"], include_attn_scale)
        qk.append(a)
        ov.append(b)
        ff.append(ff_spectrum(w["fc"], w["proj"]))
    return {"t": np.asarray(times, np.float64), "qk": np.stack(qk), "ov": np.stack(ov), "ff": np.stack(ff)}
