"""Where the fusion CLI's parents come from, and where its fused model goes (issue 11: fuse anything imported).

A parent source is

- a levanter checkpoint (a run folder or one step of it): its architecture is the config's ``task.parents[i]``;
- ``hf:DIR`` or ``hf:ORG/NAME``: a Hugging Face folder or hub id, or ``timm:DIR`` / ``timm:MODEL_NAME``: read by
  ``common_jax.hf.load_pretrained``, the architecture derived from the checkpoint's own config.

The fused model is exported with ``common_jax.hf.save_pretrained`` (an HF folder that ``transformers`` loads).
"""

from pathlib import Path

import equinox as eqx

from common_jax.checkpoints import load_model
from common_jax.launch import ConfigError

IMPORTED = ("hf:", "timm:")


def is_imported(source: str) -> bool:
    """Whether ``source`` is an HF or timm source (else a levanter checkpoint)."""
    return str(source).startswith(IMPORTED)


def check_sources(sources: list[str], num_parents: int) -> None:
    """``ValueError`` naming ``checkpoints`` unless there are at least two sources and every levanter checkpoint
    has its architecture in ``task.parents`` (as many parents as sources when any source is a levanter one)."""
    if not sources:
        return
    if len(sources) < 2:
        raise ValueError(f"checkpoints lists {len(sources)} source; fusion needs at least two")
    if not all(is_imported(s) for s in sources) and len(sources) != num_parents:
        raise ValueError(f"checkpoints lists {len(sources)} sources but task.parents has {num_parents} models: a "
                         "levanter checkpoint takes its architecture from task.parents[i] (hf:/timm: sources carry "
                         "their own)")


def load_parents(sources: list[str], task_config) -> list[eqx.Module]:
    """Every parent model; a missing or unreadable source is a ``ConfigError`` naming ``checkpoints[i]``."""
    models = []
    for i, source in enumerate(sources):
        try:
            if is_imported(source):
                from common_jax.hf import load_pretrained

                models.append(load_pretrained(source))
            else:
                models.append(load_model(task_config.abstract_model(i), source))
        except (FileNotFoundError, ValueError) as e:
            raise ConfigError(f"checkpoints[{i}] ({source}): {e}") from e
    return models


def check_export_dir(out_dir: str) -> None:
    """``ConfigError`` if ``export_hf`` already holds a checkpoint (nothing is overwritten)."""
    if (Path(out_dir) / "config.json").exists():
        raise ConfigError(f"export_hf: {out_dir} already holds a checkpoint (config.json); choose a new folder")


def export_hf(model, out_dir: str) -> Path:
    """Write ``model`` to ``out_dir`` as an HF folder (``config.json`` + ``model.safetensors``)."""
    from common_jax.hf import save_pretrained

    return save_pretrained(model, out_dir)
