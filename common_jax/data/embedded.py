"""Paths of the data files that ship inside the package (see ``embedded/PROVENANCE.md``)."""

from importlib import resources
from pathlib import Path


def embedded_path(name: str) -> Path:
    """Absolute path of an embedded file, e.g. ``embedded_path("mnist10k.npz")``."""
    path = Path(str(resources.files("common_jax.data") / "embedded" / name))
    if not path.exists():
        raise FileNotFoundError(f"no embedded data file {name!r} (looked at {path})")
    return path
