"""One vocabulary of run sizes for every reproduction entry point: ``--preset smoke | demo | full``.

- ``smoke``: a few steps of every stage; checks that the pipeline runs end to end (seconds to a minute per paper).
  Its numbers mean nothing.
- ``demo``: small models trained for real, sized so that the whole demo (``bash scripts/demo.sh``, all five
  papers) finishes in about 10 minutes on 2 CPU cores. The numbers are real measurements of a small setting,
  not the paper's.
- ``full``: the spec's CPU reproduction plan (minutes to about half an hour per paper on 2 CPU cores).

Every ``<package>.main.reproduce`` takes ``--preset`` (default ``demo``) and exposes
``run_demo(job_dir, preset) -> dict`` whose result carries ``"summary"`` (one line for the cross-paper table) and
``"figures"`` (PNG paths relative to ``job_dir.parent``, the paper's headline figure first).
"""

PRESETS = ("smoke", "demo", "full")
DEFAULT_PRESET = "demo"


def check_preset(preset: str) -> str:
    """``preset`` if it is one of :data:`PRESETS`, else a ``ValueError`` naming the field and the choices."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)} (got {preset!r})")
    return preset
