"""Levanter ``TrainerConfig`` defaults for this project and the per-run metrics log.

Every run of a project entry point writes ``<trainer.log_dir>/<run id>/metrics.jsonl``: one JSON object per
tracker event, through levanter's ``json_logger`` tracker, whatever other trackers (tensorboard, wandb) the
YAML selects.
"""

import contextlib
import json
import logging
from pathlib import Path

import jax
from levanter.tracker.json_logger import JsonLoggerConfig
from levanter.trainer import TrainerConfig

METRICS_LOGGER = "levanter.json_logger"


def default_trainer_config() -> TrainerConfig:
    """Levanter's TrainerConfig with CPU-friendly defaults: json tracker, no accelerator required, no HLO dumps."""
    return TrainerConfig(
        tracker=JsonLoggerConfig(), require_accelerator=False, log_jaxprs=False, log_xla_hlo=False
    )


def ensure_json_tracker(trainer: TrainerConfig) -> None:
    """Add a ``json_logger`` tracker to ``trainer.tracker`` if the config did not select one."""
    trackers = trainer.tracker if isinstance(trainer.tracker, tuple | list) else (trainer.tracker,)
    if not any(isinstance(t, JsonLoggerConfig) for t in trackers):
        trainer.tracker = (*trackers, JsonLoggerConfig())


def run_dir(trainer: TrainerConfig) -> Path:
    """``<log_dir>/<run id>``: where a run's metrics and plots go (the run id must be set)."""
    return Path(trainer.log_dir) / str(trainer.id)


def write_run_results(trainer: TrainerConfig, results: dict) -> Path:
    """Write ``results`` as ``<run_dir>/results.json`` (folders created); returns the path."""
    out = run_dir(trainer) / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return out


@contextlib.contextmanager
def metrics_jsonl(path: str | Path):
    """Send every ``json_logger`` event to ``path`` (JSON lines) while the context is open; process 0 only."""
    if jax.process_index() != 0:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(METRICS_LOGGER)
    log.addHandler(handler)
    # the events go to the file only: on the console they would drown levanter's progress bar
    propagate, log.propagate = log.propagate, False
    try:
        yield
    finally:
        log.propagate = propagate
        log.removeHandler(handler)
        handler.close()


def read_metrics(path: str | Path) -> list[dict]:
    """The ``log`` events of a metrics.jsonl file as ``{"step": int, "metrics": {...}}`` records."""
    records = []
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "log":
            records.append(record)
    return records


def last_metrics(path: str | Path, prefix: str = "") -> dict[str, float]:
    """The last logged value of every metric whose name starts with ``prefix``."""
    last: dict[str, float] = {}
    for record in read_metrics(path):
        last.update({k: v for k, v in record["metrics"].items() if k.startswith(prefix)})
    return last
