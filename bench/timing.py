"""The one timing method of every benchmark in this folder: interleaved repetitions in one process, load recorded.

A benchmark hands :func:`interleaved` a few zero-argument callables, each running one unit of work to completion
(e.g. ten compiled train steps, ``jax.block_until_ready`` included). Each is called ``warmup`` times first (so
compilation and first-touch costs are excluded), then the callables are called in turn, ``repeats`` times over,
alternating their order every round, so slow drifts of the machine (another process, thermal state) fall on all
of them alike. The result holds every sample and, per callable, the min and the median; ratios are taken between
minima (the least-disturbed run of each), the medians are reported beside them.

:func:`environment` records what decides a figure: ``os.getloadavg()`` before and after, the CPU count, the JAX
backend and device, the package versions. :func:`write_result` prints the benchmark's JSON and writes it to
``bench/results/<name>.json`` (or to ``$BENCH_RESULTS/<name>.json``: the GPU suite keeps its results apart that
way); ``bench/README.md`` quotes the latest of these files through ``bench/report.py``.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
RESULTS_ENV = "BENCH_RESULTS"  # overrides RESULTS, e.g. bench/results/gpu for the GPU suite's stages
PACKAGES = ("jax", "jaxlib", "equinox", "marin-haliax", "marin-levanter", "optax", "diffrax", "numpy", "torch",
            "transformers", "timm", "pot")
CPU_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16",
                 "amx_tile")


def interleaved(work: dict[str, Callable[[], Any]], *, repeats: int = 7, warmup: int = 1) -> dict[str, dict]:
    """Time each callable of ``work`` by interleaved repetitions; ``{name: {"min_s", "median_s", "samples_s"}}``.

    ``repeats`` (>= 7 for a quoted figure) rounds each call every callable once, in the order of ``work`` on even
    rounds and in reverse on odd ones. Seconds are wall time per call.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for fn in work.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in work}
    names = list(work)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            start = time.perf_counter()
            work[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: {"min_s": min(s), "median_s": statistics.median(s), "samples_s": s} for name, s in samples.items()}


def ratio(timings: dict[str, dict], numerator: str, denominator: str) -> float:
    """``min(numerator) / min(denominator)``: e.g. the candidate's step time over the baseline's."""
    return timings[numerator]["min_s"] / timings[denominator]["min_s"]


def median_ratio(timings: dict[str, dict], numerator: str, denominator: str) -> float:
    """``median(numerator) / median(denominator)``, reported beside :func:`ratio` as a check on it."""
    return timings[numerator]["median_s"] / timings[denominator]["median_s"]


def cpu_description() -> dict[str, Any]:
    """The CPU's model name, family/model/stepping and vector-ISA flags (from /proc/cpuinfo, where there is one)
    and how many CPUs this process may run on (its affinity, which also sizes XLA's thread pool)."""
    info: dict[str, Any] = {"schedulable_cpus": len(os.sched_getaffinity(0))}
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
    except OSError:
        return info
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    flags = set(fields.get("flags", "").split())
    info["model_name"] = fields.get("model name")
    info["family_model_stepping"] = [fields.get("cpu family"), fields.get("model"), fields.get("stepping")]
    info["isa_flags"] = [f for f in CPU_ISA_FLAGS if f in flags]
    return info


def environment() -> dict[str, Any]:
    """What the machine was and how loaded it was: date, command, host, CPU, load average, JAX backend/devices,
    versions."""
    env: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", _repo_relative(sys.argv[0]), *sys.argv[1:]]),
        "platform": platform.platform(), "processor": platform.machine(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "cpu": cpu_description(), "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    try:
        import jax

        env["jax_backend"] = jax.default_backend()
        env["devices"] = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    except ImportError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    env["versions"] = versions
    return env


def _repo_relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(RESULTS.parents[1]))
    except ValueError:
        return path


def write_result(name: str, payload: dict[str, Any], env_before: dict[str, Any]) -> Path:
    """Print ``payload`` as JSON with the environment (load before and after the timing) and write it to
    ``bench/results/<name>.json`` (``$BENCH_RESULTS/<name>.json`` when that is set); returns the path."""
    after = environment()
    record = {"benchmark": name, **payload,
              "environment": {**env_before, "loadavg_1_5_15_after": after["loadavg_1_5_15"]}}
    text = json.dumps(record, indent=2)
    print(text, flush=True)
    folder = Path(os.environ.get(RESULTS_ENV) or RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(text + "\n")
    return path


def summarise(timings: dict[str, dict], digits: int = 5) -> dict[str, dict]:
    """The timings rounded for a JSON report (min, median and every sample, in seconds)."""
    return {name: {key: (round(v, digits) if isinstance(v, float) else [round(x, digits) for x in v])
                   for key, v in t.items()} for name, t in timings.items()}
