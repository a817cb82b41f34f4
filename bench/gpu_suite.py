"""The GPU benchmark suite's runner: every stage in its own process with its own timeout, one merged JSON.

    python bench/gpu_suite.py [--cpu-smoke] [--out DIR] [--budget 420] [--only crate_step ...]

Normally started by ``bash bench/gpu_suite.sh``, which first sets up ``.venv-gpu``. Stages (issue 16, item 4):
DiffEqFormer vs levanter GPT-2 at GPT-2-small size in bf16, batch 8 and 32, with MFU (``qkvflow_step.py``);
CRATE-B/16 vs ViT-B/16 training step (``crate_step.py``); OT fusion of two ViT-B/16 (``fusion_time.py``); zoo
models per minute (``zoo_throughput.py``). Each stage writes its JSON through ``timing.write_result`` into its own
folder (``$BENCH_RESULTS``) and its output to a log; a stage that fails or runs out of time is recorded as such and
the next one runs. ``--budget`` caps the stages' total seconds: a stage gets at most what is left of it.

The merged record (stages with status, seconds, command and results; the environment) is printed as one JSON
object and written to ``bench/results/gpu.json``, and the stage folders stay under ``bench/results/gpu/``.
``--out DIR`` copies both there too. ``--cpu-smoke`` runs every stage at its tiny size on CPU, to test the
plumbing without a GPU; it writes ``gpu_smoke.json`` and ``gpu_smoke/`` into ``--out`` (default: a temporary
folder), never over the GPU figures.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from timing import RESULTS, RESULTS_ENV, environment

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stage:
    name: str
    gpu: tuple[str, ...]  # arguments of the script on the GPU
    smoke: tuple[str, ...]  # arguments for --cpu-smoke
    timeout_s: int  # on the GPU; a smoke stage gets the same


STAGES = (
    Stage("qkvflow_step", ("bench/qkvflow_step.py", "--size", "gpt2-small"),
          ("bench/qkvflow_step.py", "--size", "tiny", "--repeats", "2"), 180),
    Stage("crate_step", ("bench/crate_step.py", "--size", "b16"),
          ("bench/crate_step.py", "--size", "tiny", "--repeats", "2"), 90),
    Stage("fusion_time", ("bench/fusion_time.py", "--size", "vit_b16"),
          ("bench/fusion_time.py", "--size", "cpu", "--repeats", "2", "--num_images", "16"), 120),
    Stage("zoo_throughput", ("bench/zoo_throughput.py", "--models", "32", "256"),
          ("bench/zoo_throughput.py", "--models", "2", "--steps", "1", "--repeats", "2"), 90),
)
LOG_TAIL_CHARS = 3000


def run_stage(stage: Stage, smoke: bool, folder: Path, timeout_s: float) -> dict:
    """Run one stage's script with ``$BENCH_RESULTS`` = ``folder/<name>``; its record for the merged JSON."""
    results = folder / stage.name
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    command = [sys.executable, *(stage.smoke if smoke else stage.gpu)]
    env = {**os.environ, RESULTS_ENV: str(results)}
    if smoke:
        env["JAX_PLATFORMS"] = "cpu"
    log = folder / f"{stage.name}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        try:
            rc = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                                check=False).returncode
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            rc, status = None, "timed_out"
    record = {"status": status, "returncode": rc, "seconds": round(time.perf_counter() - start, 1),
              "timeout_s": round(timeout_s), "command": " ".join(["python", *command[1:]]),
              "results": {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}}
    if status != "ok":
        record["log_tail"] = log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="every stage at tiny sizes on CPU")
    parser.add_argument("--out", type=Path, help="also write the merged JSON, stage folders and logs here")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all stages together")
    parser.add_argument("--only", nargs="+", choices=[s.name for s in STAGES], help="run these stages only")
    parser.add_argument("--setup_seconds", type=float, help="what setting up the environment took (recorded)")
    args = parser.parse_args()

    name = "gpu_smoke" if args.cpu_smoke else "gpu"
    if args.cpu_smoke:
        base = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="gpu_suite_"))
    else:
        base = RESULTS
    folder = base / name
    deadline = time.perf_counter() + args.budget
    stages = {}
    for stage in STAGES:
        if args.only and stage.name not in args.only:
            continue
        left = deadline - time.perf_counter()
        if left < 10:
            stages[stage.name] = {"status": "skipped", "reason": f"suite budget of {args.budget:.0f} s spent"}
            continue
        stages[stage.name] = run_stage(stage, args.cpu_smoke, folder, min(stage.timeout_s, left))
        print(f"{stage.name}: {stages[stage.name]['status']} in {stages[stage.name]['seconds']} s",
              file=sys.stderr, flush=True)

    # the environment last: importing jax here earlier would hold the GPU's memory while the stages run
    record = {"suite": name, "setup_seconds": args.setup_seconds, "budget_s": args.budget, "stages": stages,
              "environment": environment()}
    text = json.dumps(record, indent=2)
    base.mkdir(parents=True, exist_ok=True)
    (base / f"{name}.json").write_text(text + "\n")
    if args.out is not None and args.out.resolve() != base.resolve():
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.json").write_text(text + "\n")
        shutil.copytree(folder, args.out / name, dirs_exist_ok=True)
    print(text, flush=True)
    sys.exit(0 if all(s["status"] == "ok" for s in stages.values()) else 1)


if __name__ == "__main__":
    main()
