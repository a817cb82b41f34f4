"""Reading the model out of a levanter checkpoint, for analyses, fusion and evaluation outside training."""

import os
from typing import TypeVar

import haliax as hax
import jax
import numpy as np
from levanter.checkpoint import latest_checkpoint_path, load_checkpoint
from levanter.utils import fsspec_utils

M = TypeVar("M")


def resolve_checkpoint(path: str) -> str:
    """A concrete checkpoint folder: ``path`` itself if it is one, else the latest step under it."""
    if not fsspec_utils.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}: the path does not exist")
    if fsspec_utils.exists(os.path.join(path, "metadata.json")):
        return path
    try:
        return latest_checkpoint_path(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path!r} holds no complete levanter checkpoint (no step-*/metadata.json)") from None


def load_model(abstract_model: M, path: str, *, mesh: jax.sharding.Mesh | None = None) -> M:
    """The model saved in the levanter checkpoint at ``path`` (a run folder or one step of it).

    ``abstract_model`` gives the structure (e.g. ``eqx.filter_eval_shape(config.build, ...)``). Without a
    ``mesh`` the arrays land unsharded on the first device.
    """
    mesh = mesh if mesh is not None else jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    with hax.partitioning.set_mesh(mesh):
        return load_checkpoint(abstract_model, resolve_checkpoint(path), subpath="model", axis_mapping={}, mesh=mesh)
