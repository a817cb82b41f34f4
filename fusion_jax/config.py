"""Fusion configuration (spec fusion.md §13): draccus dataclasses whose defaults are the released settings.

Every bad value raises ``ValueError`` naming the field (``fusion.qk_fusion ...``) in ``__post_init__``.
"""

from dataclasses import dataclass, field

from .cost import NORMALIZE_ACTS, ROW_NORMS
from .joins import RESID_POLICIES
from .probes import SAMPLINGS
from .transport import SOLVERS

COSTS = ("acts", "wts")
QK_FUSION = ("separate", "eq_t_map", "joint")
CLS_MAPS = ("residual", "own")


@dataclass(frozen=True)
class SinkhornConfig:
    """``ot.sinkhorn``'s arguments (§4; POT's defaults): ``reg`` is absolute on max-normalised costs."""

    reg: float = 0.08
    num_iter_max: int = 1000
    stop_thr: float = 1e-9

    def __post_init__(self):
        if self.reg <= 0:
            raise ValueError(f"fusion.sinkhorn.reg must be positive, got {self.reg}")
        if self.num_iter_max <= 0:
            raise ValueError(f"fusion.sinkhorn.num_iter_max must be positive, got {self.num_iter_max}")
        if self.stop_thr < 0:
            raise ValueError(f"fusion.sinkhorn.stop_thr must be >= 0, got {self.stop_thr}")


@dataclass(frozen=True)
class EmdConfig:
    """``ot.emd``'s iteration limit. POT's default (the reference's) stops before optimality on layers of a few
    thousand units (e.g. ViT-B's 3072-wide MLP), with a warning naming the map; raise it for exact plans there."""

    num_iter_max: int = 100_000

    def __post_init__(self):
        if self.num_iter_max <= 0:
            raise ValueError(f"fusion.emd.num_iter_max must be positive, got {self.num_iter_max}")


@dataclass(frozen=True)
class ActsConfig:
    """Activation cost (§3.1): ``num_samples`` probe inputs chosen by ``sampling`` with ``seed``; every kept
    token a sample.

    ``sampling: reference`` takes the first ``num_samples`` items of the held-out part of
    ``datasets.Dataset.train_test_split(test_size=0.1, seed=seed)`` of the training set, as the reference does
    (it feeds them one at a time; a batched pass gives the same activations, as these models have no batch
    statistics); ``random`` draws ``num_samples`` training items without replacement with ``seed``.
    """

    num_samples: int = 200
    seed: int = 0
    sampling: str = "reference"
    seq_filter: str = "window_6"  # "all" or "window_<k>": CLS plus the central k x k patches
    last_block_cls_only: bool = True  # last block's O/fc1/fc2 taps keep the CLS token only (CLS pooling)
    normalize: str = "standardize"
    batch_size: int = 200  # probe inputs per jitted forward pass (the default: the 200 probes in one pass)

    def __post_init__(self):
        if self.num_samples <= 0 or self.batch_size <= 0:
            raise ValueError("fusion.acts.num_samples and fusion.acts.batch_size must be positive")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"fusion.acts.sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.normalize not in NORMALIZE_ACTS:
            raise ValueError(f"fusion.acts.normalize must be one of {NORMALIZE_ACTS}, got {self.normalize!r}")
        if self.seq_filter != "all" and not (self.seq_filter.startswith("window_")
                                             and self.seq_filter[len("window_"):].isdigit()):
            raise ValueError(f"fusion.acts.seq_filter must be 'all' or 'window_<k>', got {self.seq_filter!r}")


@dataclass(frozen=True)
class WtsConfig:
    """Weight cost (§3.2)."""

    row_norm: str = "l2"

    def __post_init__(self):
        if self.row_norm not in ROW_NORMS:
            raise ValueError(f"fusion.wts.row_norm must be one of {ROW_NORMS}, got {self.row_norm!r}")


@dataclass(frozen=True)
class FusionConfig:
    """How to fuse (§13). ``alpha`` is the anchor's weight (default ``1/N``); ``weights`` gives every model's
    weight instead (normalised; mutually exclusive with ``alpha``).

    Reference-compatibility flags (all off by default): ``reference_normalisation`` uses ``n_A T`` on both
    sides of heterogeneous edges (§9); ``reference_alpha_quirk`` keeps anchor weight 1/2 inside blocks for
    N > 2 (§10); ``cls_map: own`` gives the CLS token its own sorting map (§8); ``bert_ln_reference_order``
    aligns a post-LN block's FFN LayerNorm with T_fc2 before the join (§7).
    """

    cost: str = "acts"
    solver: str = "sinkhorn"
    resid_policy: str = "mean"
    qk_fusion: str = "separate"
    cls_map: str = "residual"
    alpha: float | None = None
    weights: list[float] | None = None
    reference_normalisation: bool = False
    reference_alpha_quirk: bool = False
    bert_ln_reference_order: bool = False
    sinkhorn: SinkhornConfig = field(default_factory=SinkhornConfig)
    emd: EmdConfig = field(default_factory=EmdConfig)
    acts: ActsConfig = field(default_factory=ActsConfig)
    wts: WtsConfig = field(default_factory=WtsConfig)

    def __post_init__(self):
        for name, allowed in (("cost", COSTS), ("solver", SOLVERS), ("resid_policy", RESID_POLICIES),
                              ("qk_fusion", QK_FUSION), ("cls_map", CLS_MAPS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"fusion.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"fusion.alpha must be in [0, 1], got {self.alpha}")
        if self.weights is not None:
            if self.alpha is not None:
                raise ValueError("fusion.weights and fusion.alpha are mutually exclusive")
            if min(self.weights) < 0 or sum(self.weights) <= 0:
                raise ValueError(f"fusion.weights must be non-negative with a positive sum, got {self.weights}")

    def model_weights(self, num_models: int, anchor: int) -> list[float]:
        """Each model's weight in the fused average (the anchor's is ``alpha``; the rest share ``1 - alpha``)."""
        if self.weights is not None:
            if len(self.weights) != num_models:
                raise ValueError(f"fusion.weights has {len(self.weights)} entries for {num_models} models")
            total = float(sum(self.weights))
            return [w / total for w in self.weights]
        alpha = 1.0 / num_models if self.alpha is None else self.alpha
        return [alpha if i == anchor else (1.0 - alpha) / (num_models - 1) for i in range(num_models)]

    def block_weights(self, num_models: int, anchor: int) -> list[float]:
        """Weights inside the transformer blocks: :meth:`model_weights`, or with ``reference_alpha_quirk``
        the reference's pairwise default 1/2 for the anchor."""
        if not self.reference_alpha_quirk:
            return self.model_weights(num_models, anchor)
        return [0.5 if i == anchor else 0.5 / (num_models - 1) for i in range(num_models)]
