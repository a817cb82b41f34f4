"""The project demo: the five papers' reproductions at one preset, with an overall progress bar and one report.

    bash scripts/demo.sh [--smoke | --full] [DIR]            (the README's first command; DIR defaults to reports/demo)
    python scripts/demo.py --preset demo --out reports/demo [--jobs crate,fusion]

Each job is a package's ``run_demo(job_dir, preset)`` (``common_jax.presets``), run in its own Python process with
its output in ``DIR/<job>.log``, so that the terminal shows one overall progress bar with the time left (from each
job's expected duration at that preset, rescaled by how fast the finished jobs ran) and a line per finished job.
``--full`` also runs the two foundation jobs (the ``common_jax`` ViT and levanter's GPT-2). Writes
``DIR/report.md`` (opening with one table across the papers, then each paper's headline figure and its own
report), ``DIR/summary.json`` and each job's folder. A failed job is reported with the end of its log; the others
still run, and the command exits non-zero.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("smoke", "demo", "full")  # common_jax.presets.PRESETS (this script must start without importing JAX)


@dataclass(frozen=True)
class Job:
    name: str
    paper: str
    module: str  # exposes run_demo(job_dir, preset) -> {"summary", "figures", ...}
    expected_seconds: dict[str, float]  # per preset, measured on 2 CPU cores
    presets: tuple[str, ...] = PRESETS  # the presets this job runs at


JOBS = (
    Job("crate", "CRATE: white-box transformers via sparse rate reduction (NeurIPS 2023)", "crate_jax.main.reproduce",
        {"smoke": 40, "demo": 100, "full": 330}),
    Job("fusion", "Transformer fusion with optimal transport (ICLR 2024)", "fusion_jax.main.reproduce",
        {"smoke": 40, "demo": 100, "full": 240}),
    Job("equitune", "Efficient model-agnostic multi-group equivariant networks (TMLR 2024)",
        "equitune_jax.main.reproduce", {"smoke": 40, "demo": 100, "full": 300}),
    Job("qkvflow", "Neural ODE transformers / DiffEqFormer (ICLR 2025)", "qkvflow_jax.main.reproduce",
        {"smoke": 60, "demo": 100, "full": 1800}),
    Job("nfn", "Equivariant neural functional networks for transformers (ICLR 2025)", "nfn_jax.main.reproduce",
        {"smoke": 60, "demo": 100, "full": 450}),
    Job("foundation", "Foundation jobs: common_jax ViT and levanter GPT-2", "common_jax.main.foundation_demo",
        {"full": 400}, presets=("full",)),
)


def _child(module: str, job_dir: str, preset: str, result_path: str) -> None:
    """Runs in the job's own process: ``module.run_demo`` and its result written as JSON."""
    import importlib

    result = importlib.import_module(module).run_demo(Path(job_dir), preset)
    Path(result_path).write_text(json.dumps(result, indent=2, default=str))


class Progress:
    """One overall bar over the jobs' expected seconds; the time left is rescaled by the speed seen so far."""

    def __init__(self, jobs: list[Job], preset: str):
        from tqdm import tqdm

        self.expected = {job.name: job.expected_seconds[preset] for job in jobs}
        self.total = sum(self.expected.values())
        self.done_expected = 0.0  # expected seconds of the finished jobs
        self.done_actual = 0.0  # their actual seconds
        self.last_draw = 0.0
        # Redirected to a file, the bar is redrawn every 30 s instead of every 0.1 s.
        self.bar = tqdm(total=100, unit="%", dynamic_ncols=True, file=sys.stdout,
                        mininterval=0.1 if sys.stdout.isatty() else 30.0,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} elapsed{postfix}")

    def update(self, job: Job, index: int, count: int, job_elapsed: float) -> None:
        speed = self.done_actual / self.done_expected if self.done_expected else 1.0
        expected_now = self.expected[job.name] * speed
        fraction = min(job_elapsed / expected_now, 0.95) if expected_now else 0.95
        remaining_jobs = self.total - self.done_expected - self.expected[job.name]
        left = max(expected_now - job_elapsed, 0.05 * expected_now) + remaining_jobs * speed
        self.bar.set_description_str(f"[{index + 1}/{count}] {job.name}", refresh=False)
        self.bar.set_postfix_str(f"about {_clock(left)} left", refresh=False)
        self.bar.n = round(100 * (self.done_expected + fraction * self.expected[job.name]) / self.total, 1)
        if time.time() - self.last_draw >= self.bar.mininterval:
            self.bar.refresh()
            self.last_draw = time.time()

    def finish(self, job: Job, seconds: float, line: str) -> None:
        self.done_expected += self.expected[job.name]
        self.done_actual += seconds
        self.bar.write(line)

    def close(self) -> None:
        self.bar.n = 100
        self.bar.set_postfix_str("done", refresh=True)
        self.bar.close()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _run_job(job: Job, out: Path, preset: str, progress: Progress, index: int, count: int) -> dict:
    result_path = out / f"{job.name}.result.json"
    result_path.unlink(missing_ok=True)
    log_path = out / f"{job.name}.log"
    start = time.time()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", job.module,
                                    str(out / job.name), preset, str(result_path)],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ.copy())
        while process.poll() is None:
            progress.update(job, index, count, time.time() - start)
            time.sleep(0.5)
    seconds = round(time.time() - start, 1)
    if process.returncode == 0 and result_path.is_file():
        result = json.loads(result_path.read_text())
        progress.finish(job, seconds, f"  {job.name} ({_clock(seconds)}): {result.get('summary', '(no summary)')}")
        return {"ok": True, "seconds": seconds, **result}
    tail = log_path.read_text().splitlines()[-25:]
    progress.finish(job, seconds, f"  {job.name} FAILED after {_clock(seconds)} (exit {process.returncode}); "
                                  f"end of {log_path}:\n" + "\n".join("    " + line for line in tail))
    return {"ok": False, "seconds": seconds, "log": str(log_path), "summary": f"failed: see {log_path.name}"}


def _report(out: Path, preset: str, jobs: list[Job], results: dict[str, dict], seconds: float) -> Path:
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"# Demo report (preset `{preset}`)", "",
             f"Run on {when}, {platform.machine()}, {os.cpu_count()} CPU cores; {_clock(seconds)} in all. Every number "
             "below was measured by this run on the embedded data (`common_jax.presets` says what each preset "
             "trains).", "", "| paper | result | time |", "|---|---|---|"]
    lines += [f"| {job.paper} | {results[job.name]['summary']} | {_clock(results[job.name]['seconds'])} |"
              for job in jobs]
    for job in jobs:
        result = results[job.name]
        lines += ["", f"## {job.paper}", "", f"`{job.module}` at preset `{preset}`: {result['summary']}", ""]
        lines += [f"![{Path(png).stem}]({png})" for png in result.get("figures", [])[:1]]
        if (out / job.name / "report.md").is_file():
            lines += ["", f"Details, tables and every figure: [{job.name}/report.md]({job.name}/report.md)."]
        if not result["ok"]:
            lines += ["", f"The job failed; its log is `{job.name}.log`."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def copy_headline_figures(results: dict[str, dict], out: Path, target: Path) -> None:
    """Copies each successful job's first figure (relative to ``out``) to ``target/<job>.png``."""
    target.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        if result["ok"] and result.get("figures"):
            shutil.copyfile(out / result["figures"][0], target / f"{name}.png")


def run(jobs: list[Job], out: Path, preset: str) -> dict[str, dict]:
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    print(f"Demo, preset {preset}: {len(jobs)} jobs ({', '.join(job.name for job in jobs)}); logs and reports in {out}",
          flush=True)
    progress = Progress(jobs, preset)
    start = time.time()
    results = {}
    for index, job in enumerate(jobs):
        results[job.name] = _run_job(job, out, preset, progress, index, len(jobs))
        (out / "summary.json").write_text(json.dumps(results, indent=2))
    progress.close()
    report = _report(out, preset, jobs, results, time.time() - start)
    print(f"\nDemo report: {report} ({_clock(time.time() - start)} in all; results in {out / 'summary.json'})",
          flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(*argv[1:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="demo")
    parser.add_argument("--out", default="reports/demo")
    parser.add_argument("--jobs", default=None, help="comma-separated subset of: " + ", ".join(j.name for j in JOBS))
    parser.add_argument("--copy_figures", default=None, metavar="DIR",
                        help="also copy each job's headline figure to DIR/<job>.png (the README's figures)")
    args = parser.parse_args(argv)
    jobs = [job for job in JOBS if args.preset in job.presets]
    if args.jobs:
        wanted = args.jobs.split(",")
        unknown = sorted(set(wanted) - {job.name for job in JOBS})
        if unknown:
            parser.error(f"unknown job(s) {', '.join(unknown)}; choose from {', '.join(j.name for j in JOBS)}")
        jobs = [job for job in JOBS if job.name in wanted]
        for job in jobs:
            if args.preset not in job.presets:
                parser.error(f"job {job.name} runs only at preset(s) {', '.join(job.presets)}")
    results = run(jobs, Path(args.out), args.preset)
    if args.copy_figures:
        copy_headline_figures(results, Path(args.out), Path(args.copy_figures))
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
