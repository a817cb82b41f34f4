"""Zoo generation config: architecture, data, hyper-parameter sweeps, schedule, checkpoints (nfn.md §5.2-5.4, §9.3)."""

import itertools
from dataclasses import dataclass, field

import numpy as np

from .data import ZooDataConfig
from .model import ZooArchitecture
from .train import OPTIMIZERS, ChunkSchedule, RunSpec

SEED_POLICIES = ("shared", "per_run")


@dataclass(frozen=True)
class SweepConfig:
    """A full grid: every combination of the listed values (nfn.md §5.3)."""

    optimizers: list[str] = field(default_factory=lambda: ["adam", "rmsprop"])
    learning_rates: list[float] = field(default_factory=lambda: [3e-4, 5e-4, 1e-3, 3e-3, 5e-3, 1e-2, 3e-2, 5e-2])
    init_stds: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5])
    weight_decays: list[float] = field(default_factory=lambda: [1e-8, 1e-7, 1e-6, 1e-4, 1e-2])
    train_fractions: list[float] = field(default_factory=lambda: [1.0, 0.9, 0.8, 0.7])
    dropouts: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.15, 0.2])

    def __post_init__(self):
        bad = [o for o in self.optimizers if o not in OPTIMIZERS]
        if bad:
            raise ValueError(f"sweeps[].optimizers: unknown {bad}; allowed {OPTIMIZERS}")
        for name in ("optimizers", "learning_rates", "init_stds", "weight_decays", "train_fractions", "dropouts"):
            if not getattr(self, name):
                raise ValueError(f"sweeps[].{name} must not be empty")
        if not all(0 < f <= 1 for f in self.train_fractions):
            raise ValueError(f"sweeps[].train_fractions must be in (0, 1], got {self.train_fractions}")
        if not all(0 <= d < 1 for d in self.dropouts):
            raise ValueError(f"sweeps[].dropouts must be in [0, 1), got {self.dropouts}")

    def combinations(self):
        return itertools.product(self.optimizers, self.learning_rates, self.init_stds, self.weight_decays,
                                 self.train_fractions, self.dropouts)


@dataclass(frozen=True)
class ZooConfig:
    output_dir: str = "zoo/mnist"
    architecture: ZooArchitecture = field(default_factory=ZooArchitecture)
    data: ZooDataConfig = field(default_factory=ZooDataConfig)
    sweeps: list[SweepConfig] = field(default_factory=lambda: [SweepConfig()])
    max_models: int | None = None  # a seeded random subset of the grid (tiny zoos); None = the whole grid
    subset_seed: int = 0
    epochs: int = 100
    warmup_epochs: int = 10
    batch_size: int = 128
    min_lr: float = 1e-5
    seed: int = 3
    init_seed_policy: str = "shared"
    crop_padding: int = 2
    checkpoint_epochs: list[int] = field(default_factory=lambda: [1, 50, 75, 100])
    save_best: bool = True
    best_label: str = "best1"  # "best1" (MNIST release) or "best" (AG-News release)
    chunk_size: int = 32

    def __post_init__(self):
        if self.init_seed_policy not in SEED_POLICIES:
            raise ValueError(f"init_seed_policy must be one of {SEED_POLICIES}, got {self.init_seed_policy!r}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs} with epochs {self.epochs}")
        if any(not 1 <= e <= self.epochs for e in self.checkpoint_epochs):
            raise ValueError(f"checkpoint_epochs must lie in [1, epochs={self.epochs}], got {self.checkpoint_epochs}")
        if self.chunk_size < 1 or self.batch_size < 1:
            raise ValueError("chunk_size and batch_size must be positive")
        if self.max_models is not None and self.max_models < 1:
            raise ValueError(f"max_models must be positive, got {self.max_models}")
        if self.best_label not in ("best", "best1"):
            raise ValueError(f"best_label must be 'best' or 'best1', got {self.best_label!r}")

    def schedule(self) -> ChunkSchedule:
        return ChunkSchedule(self.epochs, self.warmup_epochs, self.batch_size, self.min_lr, self.seed,
                             self.init_seed_policy == "per_run", self.crop_padding if self.architecture.task == "image" else 0)

    def runs(self) -> list[RunSpec]:
        """Every run of the sweeps with a deterministic id (its grid index), optionally a seeded subset."""
        runs = []
        for sweep in self.sweeps:
            for opt, lr, std, wd, frac, dr in sweep.combinations():
                runs.append(RunSpec(f"run{len(runs):05d}", opt, lr, std, wd, frac, dr))
        if self.max_models is not None and self.max_models < len(runs):
            keep = np.sort(np.random.default_rng(self.subset_seed).choice(len(runs), self.max_models, replace=False))
            runs = [runs[i] for i in keep]
        return runs

    def chunks(self) -> list[list[RunSpec]]:
        """Runs grouped by (optimizer, train fraction), then cut into chunks of ``chunk_size`` (one shard each)."""
        groups: dict[tuple, list[RunSpec]] = {}
        for r in self.runs():
            groups.setdefault((r.optimizer, r.train_fraction), []).append(r)
        return [g[i : i + self.chunk_size] for g in groups.values() for i in range(0, len(g), self.chunk_size)]
