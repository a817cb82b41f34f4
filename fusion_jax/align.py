"""The per-layer alignment primitive (spec fusion.md §2) shared by every model family's flow graph.

A transport map ``T~ [n_A, n_B]`` (``fusion_jax.transport``: ``n_A T``, float32) on an edge moves model A's
tensors into the anchor B's basis: ``rows(x, T~) = S^T x`` for what lives in the basis (weight rows, biases,
LayerNorm parameters, CLS, embedding columns) and ``cols(W, T~) = W R`` for what consumes it (input columns),
with ``S = n_B T``, ``R = n_A T`` (§9; ``reference_normalisation`` uses ``n_A T`` for both).

Every OT problem has a stable name (``"patch"``, ``"layer3.fc1"``, ...; the adapters document theirs). The
:class:`Aligner` records each solved map and its cost matrix under that name, or, given maps, applies those
instead of solving (no cost, no solver).
"""

import logging
import warnings
from collections.abc import Callable, Mapping

import numpy as np
from tqdm.auto import tqdm

from . import transport
from .config import FusionConfig
from .cost import euclidean_cost, neuron_features, normalize_acts, normalize_rows
from .joins import WEIGHTED_POLICIES, join

logger = logging.getLogger(__name__)
Features = Callable[[], tuple[np.ndarray, np.ndarray]]


class Aligner:
    """The OT problems of aligning one model A to the anchor B, and the application of their maps.

    ``maps`` / ``costs``: ``{name: float32 [n_A, n_B]}``, every map used (solved or given) and every cost matrix
    computed (none when ``given``). ``given``: maps to apply instead of solving; each must have its edge's shape.
    """

    def __init__(self, config: FusionConfig, given: Mapping[str, np.ndarray] | None = None, description: str = ""):
        self.config, self.given = config, given
        self.maps: dict[str, np.ndarray] = {}
        self.costs: dict[str, np.ndarray] = {}
        # a bar on a terminal only (disable=None), none when no OT problem is solved
        self._progress = tqdm(desc=description or "OT maps", unit="map", leave=False,
                              disable=True if given is not None else None)

    def couple(self, name: str, features: Features, shape: tuple[int, int],
               incoming: np.ndarray | None = None) -> np.ndarray:
        """The map ``T~ [n_A, n_B]`` (float64 view of the float32 map) of OT problem ``name``: ``OT(mu, nu, C)``
        with ``C`` the max-normalised Euclidean cost between the rows of ``features()`` (§3), or ``given[name]``.
        ``incoming`` (the input edge's map) only decides ``sinkhorn_for_widening``."""
        if self.given is not None:
            tmap = self._given(name, shape)
        else:
            cost = euclidean_cost(*features())
            if cost.shape != tuple(shape):
                raise ValueError(f"OT problem {name}: cost of shape {cost.shape}, expected {tuple(shape)}")
            cfg = self.config
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                plan = transport.solve(cost, cfg.solver, cfg.sinkhorn.reg, num_iter_max=cfg.sinkhorn.num_iter_max,
                                       stop_thr=cfg.sinkhorn.stop_thr, emd_num_iter_max=cfg.emd.num_iter_max,
                                       incoming_shape=None if incoming is None else incoming.shape)
            for warning in caught:
                logger.warning("OT map %s (%d x %d): %s", name, *cost.shape, warning.message)
            tmap = transport.transport_map(plan)
            self.costs[name] = cost.astype(np.float32)
            self._progress.update()
        self.maps[name] = tmap
        return tmap.astype(np.float64)

    def _given(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        if name not in self.given:
            raise ValueError(f"maps has no map {name!r} (give every map of the flow graph: {sorted(self.maps)} "
                             f"were found before it)")
        tmap = np.asarray(self.given[name])
        if tmap.shape != tuple(shape):
            raise ValueError(f"map {name!r} has shape {tmap.shape}, expected (n_model, n_anchor) = {tuple(shape)}")
        return tmap.astype(np.float32)

    def finish(self) -> None:
        """Close the progress bar; with ``given`` maps, reject names the flow graph never used (a typo)."""
        self._progress.close()
        if self.given is not None and set(self.given) - set(self.maps):
            raise ValueError(f"maps has names the flow graph does not use: {sorted(set(self.given) - set(self.maps))}")

    def rows(self, x_a: np.ndarray, tmap: np.ndarray) -> np.ndarray:
        """``S^T x_A``: ``[n_A, ...] -> [n_B, ...]``."""
        if x_a.shape[0] != tmap.shape[0]:
            raise ValueError(f"a tensor with {x_a.shape[0]} units cannot take a map of shape {tmap.shape}")
        hetero = "reference" if self.config.reference_normalisation else "corrected"
        return np.tensordot(transport.outgoing(tmap, hetero), x_a, axes=(0, 0))

    def cols(self, w_a: np.ndarray, tmap: np.ndarray | None) -> np.ndarray:
        """``W_A R``: ``[out, n_A] -> [out, n_B]`` (unchanged without an incoming map)."""
        if tmap is None:
            return w_a
        if w_a.shape[1] != tmap.shape[0]:
            raise ValueError(f"a weight with {w_a.shape[1]} inputs cannot take a map of shape {tmap.shape}")
        return w_a @ transport.incoming(tmap)

    def act_features(self, acts: np.ndarray) -> np.ndarray:
        """``[inputs, kept tokens, units]`` taps -> normalised ``[units, inputs * kept tokens]`` (§3.1)."""
        return normalize_acts(neuron_features(acts), self.config.acts.normalize)

    def weight_features(self, rows: np.ndarray) -> np.ndarray:
        """``[units, features]`` weight rows normalised by ``wts.row_norm`` (§3.2)."""
        return normalize_rows(rows.reshape(rows.shape[0], -1), self.config.wts.row_norm)


def mean_abs(acts: np.ndarray) -> np.ndarray:
    """Mean absolute activation per unit ``[units]`` of ``[..., units]`` taps (the weighted joins' ``m``)."""
    acts = np.asarray(acts, np.float64)
    return np.abs(acts.reshape(-1, acts.shape[-1])).mean(axis=0)


class TensorMover:
    """One alignment's bookkeeping: model A's tensors ``pa`` moved into the anchor's basis are written to ``out``
    edge by edge, each OT problem's cost built from the taps (``cost: acts``; tap name = map name) or from the
    weights (``wts``)."""

    def __init__(self, aligner: Aligner, pa: dict, pb: dict, taps_a: dict | None, taps_b: dict | None):
        cfg = aligner.config
        self.aligner, self.pa, self.pb, self.taps_a, self.taps_b = aligner, pa, pb, taps_a, taps_b
        self.acts = cfg.cost == "acts"
        self.weighted = cfg.resid_policy in WEIGHTED_POLICIES
        if self.weighted and taps_b is None:
            raise ValueError(f"fusion.resid_policy {cfg.resid_policy!r} needs activations of the anchor (pass data)")
        self.out: dict[str, np.ndarray] = {}

    def tap_features(self, tap: str) -> tuple[np.ndarray, np.ndarray]:
        """Both models' normalised activations of ``tap`` ``[units, samples]``."""
        return self.aligner.act_features(self.taps_a[tap]), self.aligner.act_features(self.taps_b[tap])

    def table_features(self, x_a: np.ndarray, x_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cost features of two embedding tables' ``[embed, rows]`` columns (the weights are the activations)."""
        if self.acts:
            return x_a, x_b
        return self.aligner.weight_features(x_a), self.aligner.weight_features(x_b)

    def table(self, name: str, tensor: str) -> np.ndarray:
        """Align the embedding table ``tensor`` ``[embed, rows]`` by its own map ``name``; returns the map."""
        x_a, x_b = self.pa[tensor], self.pb[tensor]
        if x_a.shape[1] != x_b.shape[1]:
            raise ValueError(f"tensor {tensor} has {x_a.shape[1]} rows but the anchor's has {x_b.shape[1]}")
        tmap = self.aligner.couple(name, lambda: self.table_features(x_a, x_b), (x_a.shape[0], x_b.shape[0]))
        self.out[tensor] = self.aligner.rows(x_a, tmap)
        return tmap

    def magnitude(self, tap: str):
        """The anchor's mean |activation| per unit of ``tap`` for the weighted residual policies, else None."""
        return mean_abs(self.taps_b[tap]) if self.weighted else None

    def join(self, skip: np.ndarray, branch: np.ndarray, skip_tap: str, branch_tap: str) -> np.ndarray:
        return join(self.aligner.config.resid_policy, skip, branch, self.magnitude(skip_tap),
                    self.magnitude(branch_tap))

    def linear(self, tensor: str, tmap_in: np.ndarray | None, name: str) -> np.ndarray:
        """§2 for the hidden linear layer ``{tensor}.weight/bias`` whose OT problem (and tap) is ``name``:
        incoming alignment, transport, outgoing alignment. Returns the layer's outgoing map."""
        w_hat = self.aligner.cols(self.pa[f"{tensor}.weight"], tmap_in)
        w_b = self.pb[f"{tensor}.weight"]
        tmap = self.aligner.couple(name, self._features(name, w_hat, w_b), (w_hat.shape[0], w_b.shape[0]), tmap_in)
        self.out[f"{tensor}.weight"] = self.aligner.rows(w_hat, tmap)
        self.out[f"{tensor}.bias"] = self.aligner.rows(self.pa[f"{tensor}.bias"], tmap)
        return tmap

    def _features(self, tap: str, w_hat: np.ndarray, w_b: np.ndarray) -> Features:
        if self.acts:
            return lambda: self.tap_features(tap)
        return lambda: (self.aligner.weight_features(w_hat), self.aligner.weight_features(w_b))

    def layer_norm(self, tensor: str, tmap: np.ndarray) -> None:
        for p in ("weight", "bias"):
            self.out[f"{tensor}.{p}"] = self.aligner.rows(self.pa[f"{tensor}.{p}"], tmap)

    def qk(self, attn: str, prefix: str, tmap_in: np.ndarray) -> None:
        """Q and K of one attention layer (tensors ``{attn}.q_proj/k_proj``) under ``qk_fusion`` (§6); their maps
        (``{prefix}q``, ``{prefix}k``, or one ``{prefix}qk``) are not propagated."""
        aligner, cfg = self.aligner, self.aligner.config
        tensors = [f"{attn}.{p}" for p in ("q_proj", "k_proj")]
        if cfg.qk_fusion == "separate":
            for tensor, unit in zip(tensors, ("q", "k")):
                self.linear(tensor, tmap_in, f"{prefix}{unit}")
            return
        w_hat = [aligner.cols(self.pa[f"{t}.weight"], tmap_in) for t in tensors]
        w_b = [self.pb[f"{t}.weight"] for t in tensors]
        biases = [self.pa[f"{t}.bias"] for t in tensors]
        feats = [self._features(f"{prefix}{unit}", w, wb) for unit, w, wb in zip(("q", "k"), w_hat, w_b)]
        if cfg.qk_fusion == "eq_t_map":
            # one map from Q and K together: samples (acts) or weight features (wts) concatenated
            def features():
                (qa, qb), (ka, kb) = feats[0](), feats[1]()
                return np.concatenate([qa, ka], axis=1), np.concatenate([qb, kb], axis=1)

            tmap = aligner.couple(f"{prefix}qk", features, (w_hat[0].shape[0], w_b[0].shape[0]), tmap_in)
            for tensor, w, b in zip(tensors, w_hat, biases):
                self.out[f"{tensor}.weight"], self.out[f"{tensor}.bias"] = aligner.rows(w, tmap), aligner.rows(b, tmap)
            return

        # joint: one 2d x 2d problem over the units of [Q; K] (the reference's [K; Q] activation order fixed)
        def features():
            (qa, qb), (ka, kb) = feats[0](), feats[1]()
            return np.concatenate([qa, ka]), np.concatenate([qb, kb])

        shape = (sum(w.shape[0] for w in w_hat), sum(w.shape[0] for w in w_b))
        tmap = aligner.couple(f"{prefix}qk", features, shape, tmap_in)
        weight, bias = aligner.rows(np.concatenate(w_hat), tmap), aligner.rows(np.concatenate(biases), tmap)
        split = w_b[0].shape[0]
        self.out[f"{tensors[0]}.weight"], self.out[f"{tensors[1]}.weight"] = weight[:split], weight[split:]
        self.out[f"{tensors[0]}.bias"], self.out[f"{tensors[1]}.bias"] = bias[:split], bias[split:]
