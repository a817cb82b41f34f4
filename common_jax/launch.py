"""Parsing YAML launches into config dataclasses without running them (for tests, the demo and tools).

``parse_config(cls, path, overrides)`` is what ``levanter.config.main`` does before calling a main: draccus
parses the YAML and ``--dotted.field value`` overrides into ``cls``, raising an error that names a bad field.
"""

from pathlib import Path
from typing import TypeVar

import draccus

T = TypeVar("T")


def parse_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """``cls`` from ``path`` (a draccus YAML) plus command-line style ``overrides`` such as ``["--a.b", "1"]``."""
    args = list(overrides)
    return draccus.parse(config_class=cls, config_path=str(path) if path is not None else None, args=args)
