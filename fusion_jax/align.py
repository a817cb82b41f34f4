"""The per-layer alignment primitive (spec fusion.md §2) shared by every model family's flow graph.

A coupling ``T [n_A, n_B]`` on an edge moves model A's tensors into the anchor B's basis:
``rows(x, T) = S^T x`` for what lives in the basis (weight rows, biases, LayerNorm parameters, CLS,
embedding columns) and ``cols(W, T) = W R`` for what consumes it (input columns), with ``S = n_B T``,
``R = n_A T`` (§9; ``reference_normalisation`` uses ``n_A T`` for both).
"""

from dataclasses import dataclass

import numpy as np

from . import transport
from .config import FusionConfig
from .cost import euclidean_cost, neuron_features, normalize_acts, normalize_rows
from .joins import join


@dataclass(frozen=True)
class Aligner:
    """Solves the OT problems of one fusion and applies their couplings."""

    config: FusionConfig

    def couple(self, features_a: np.ndarray, features_b: np.ndarray, incoming: np.ndarray | None = None) -> np.ndarray:
        """``T = OT(mu, nu, C)`` with ``C`` the max-normalised Euclidean cost between the rows of the two
        ``[units, features]`` matrices (§3); ``incoming`` (the input edge's coupling) only decides
        ``sinkhorn_for_widening``."""
        sk = self.config.sinkhorn
        cost = euclidean_cost(features_a, features_b)
        return transport.solve(cost, self.config.solver, sk.reg, num_iter_max=sk.num_iter_max,
                               stop_thr=sk.stop_thr, check_every=sk.check_every,
                               incoming_size=None if incoming is None else incoming.size)

    def rows(self, x_a: np.ndarray, plan: np.ndarray) -> np.ndarray:
        """``S^T x_A``: ``[n_A, ...] -> [n_B, ...]``."""
        if x_a.shape[0] != plan.shape[0]:
            raise ValueError(f"a tensor with {x_a.shape[0]} units cannot take a coupling of shape {plan.shape}")
        hetero = "reference" if self.config.reference_normalisation else "corrected"
        return np.tensordot(transport.outgoing(plan, hetero), x_a, axes=(0, 0))

    def cols(self, w_a: np.ndarray, plan: np.ndarray | None) -> np.ndarray:
        """``W_A R``: ``[out, n_A] -> [out, n_B]`` (unchanged without an incoming coupling)."""
        if plan is None:
            return w_a
        if w_a.shape[1] != plan.shape[0]:
            raise ValueError(f"a weight with {w_a.shape[1]} inputs cannot take a coupling of shape {plan.shape}")
        return w_a @ transport.incoming(plan)

    def act_features(self, acts: np.ndarray, tokens: np.ndarray | None = None) -> np.ndarray:
        """``[inputs, tokens, units]`` taps -> normalised ``[units, inputs * kept tokens]`` (§3.1)."""
        return normalize_acts(neuron_features(acts, tokens), self.config.acts.normalize)

    def weight_features(self, rows: np.ndarray) -> np.ndarray:
        """``[units, features]`` weight rows normalised by ``wts.row_norm`` (§3.2)."""
        return normalize_rows(rows.reshape(rows.shape[0], -1), self.config.wts.row_norm)

    def linear(self, w_a, b_a, plan_in, features) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """§2 for a hidden linear layer: incoming alignment, transport, outgoing alignment.

        ``features(w_hat_a) -> (features_a, features_b)`` gives the cost's inputs (activations, or the
        incoming-aligned weight rows in ``wts`` mode). Returns ``(W~_A, b~_A, T_out)``.
        """
        w_hat = self.cols(w_a, plan_in)
        plan = self.couple(*features(w_hat), incoming=plan_in)
        return self.rows(w_hat, plan), None if b_a is None else self.rows(b_a, plan), plan


def mean_abs(acts: np.ndarray) -> np.ndarray:
    """Mean absolute activation per unit ``[units]`` of ``[..., units]`` taps (the weighted joins' ``m``)."""
    acts = np.asarray(acts, np.float64)
    return np.abs(acts.reshape(-1, acts.shape[-1])).mean(axis=0)


def align_qk(aligner: Aligner, pa, pb, taps_a, taps_b, attn: str, tap_prefix: str, plan_in, tokens,
             out) -> None:
    """Q and K of one attention layer (tensors ``{attn}.q_proj/k_proj``, taps ``{tap_prefix}q/k``) under
    ``qk_fusion`` (§6); their couplings are not propagated."""
    cfg = aligner.config
    names = [f"{attn}.{p}" for p in ("q_proj", "k_proj")]
    taps = [f"{tap_prefix}q", f"{tap_prefix}k"]
    w_hat = [aligner.cols(pa[f"{n}.weight"], plan_in) for n in names]
    w_b = [pb[f"{n}.weight"] for n in names]

    def feats(i):
        if cfg.cost == "acts":
            return aligner.act_features(taps_a[taps[i]], tokens), aligner.act_features(taps_b[taps[i]], tokens)
        return aligner.weight_features(w_hat[i]), aligner.weight_features(w_b[i])

    if cfg.qk_fusion == "separate":
        for i, n in enumerate(names):
            plan = aligner.couple(*feats(i), incoming=plan_in)
            out[f"{n}.weight"], out[f"{n}.bias"] = aligner.rows(w_hat[i], plan), aligner.rows(pa[f"{n}.bias"], plan)
        return
    (qa, qb), (ka, kb) = feats(0), feats(1)
    if cfg.qk_fusion == "eq_t_map":
        # one map from Q and K together: samples (acts) or weight features (wts) concatenated
        plan = aligner.couple(np.concatenate([qa, ka], axis=1), np.concatenate([qb, kb], axis=1), incoming=plan_in)
        for i, n in enumerate(names):
            out[f"{n}.weight"], out[f"{n}.bias"] = aligner.rows(w_hat[i], plan), aligner.rows(pa[f"{n}.bias"], plan)
        return
    # joint: one 2d x 2d problem over the units of [Q; K] (the reference's [K; Q] activation order fixed)
    plan = aligner.couple(np.concatenate([qa, ka]), np.concatenate([qb, kb]), incoming=plan_in)
    weight = aligner.rows(np.concatenate(w_hat), plan)
    bias = aligner.rows(np.concatenate([pa[f"{n}.bias"] for n in names]), plan)
    split = w_b[0].shape[0]
    out[f"{names[0]}.weight"], out[f"{names[1]}.weight"] = weight[:split], weight[split:]
    out[f"{names[0]}.bias"], out[f"{names[1]}.bias"] = bias[:split], bias[split:]


class TensorMover:
    """One ``align`` call's bookkeeping: model A's tensors ``pa`` moved into the anchor's basis are written to
    ``out`` edge by edge, with each edge's cost built from the taps (``cost: acts``) or the weights (``wts``)."""

    def __init__(self, aligner: Aligner, pa: dict, pb: dict, taps_a: dict | None, taps_b: dict | None):
        cfg = aligner.config
        self.aligner, self.pa, self.pb, self.taps_a, self.taps_b = aligner, pa, pb, taps_a, taps_b
        self.acts = cfg.cost == "acts"
        self.weighted = cfg.resid_policy in ("weighted_scalar", "weighted_matrix")
        if self.weighted and taps_b is None:
            raise ValueError(f"fusion.resid_policy {cfg.resid_policy!r} needs activations of the anchor (pass data)")
        self.out: dict[str, np.ndarray] = {}

    def features(self, tap: str, name: str, tokens=None):
        """The cost inputs of linear layer ``name``: its taps ``tap`` (acts) or its incoming-aligned weight rows
        against the anchor's (wts)."""
        aligner = self.aligner
        if self.acts:
            return lambda _: (aligner.act_features(self.taps_a[tap], tokens),
                              aligner.act_features(self.taps_b[tap], tokens))
        return lambda w_hat: (aligner.weight_features(w_hat), aligner.weight_features(self.pb[f"{name}.weight"]))

    def table(self, x: np.ndarray) -> np.ndarray:
        """Cost features of an embedding table's ``[embed, rows]`` columns."""
        return x if self.acts else self.aligner.weight_features(x)

    def magnitude(self, tap: str):
        """The anchor's mean |activation| per unit of ``tap`` for the weighted residual policies, else None."""
        return mean_abs(self.taps_b[tap]) if self.weighted else None

    def join(self, skip: np.ndarray, branch: np.ndarray, skip_tap: str, branch_tap: str) -> np.ndarray:
        return join(self.aligner.config.resid_policy, skip, branch, self.magnitude(skip_tap),
                    self.magnitude(branch_tap))

    def linear(self, name: str, plan_in, tap: str, tokens=None) -> np.ndarray:
        """Align ``{name}.weight/bias`` (§2); returns the layer's outgoing coupling."""
        w, b, plan = self.aligner.linear(self.pa[f"{name}.weight"], self.pa[f"{name}.bias"], plan_in,
                                         self.features(tap, name, tokens))
        self.out[f"{name}.weight"], self.out[f"{name}.bias"] = w, b
        return plan

    def layer_norm(self, name: str, plan) -> None:
        for p in ("weight", "bias"):
            self.out[f"{name}.{p}"] = self.aligner.rows(self.pa[f"{name}.{p}"], plan)
