"""Bookkeeping of the benchmarks' shared timing method (bench/timing.py), with fake callables and a fake clock:
order alternation, warm-up calls excluded, min/median/ratios from the samples, where the JSON goes; the README
table (bench/report.py) and the GPU suite's stage runner (bench/gpu_suite.py) on fake results and fake stages.
No wall-clock assertions."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def timing():
    return load("timing")


class FakeClock:
    """``perf_counter`` stand-in: time moves only when a fake unit of work runs."""

    def __init__(self):
        self.now = 0.0
        self.calls: list[str] = []

    def perf_counter(self) -> float:
        return self.now

    def work(self, name: str, durations: list[float]):
        """A callable that logs its call and advances the clock by the next of ``durations`` (cycled)."""
        count = [0]

        def run():
            self.calls.append(name)
            self.now += durations[count[0] % len(durations)]
            count[0] += 1

        return run


def test_interleaved_alternates_order_and_excludes_warmup(timing, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    # warm-up durations (first two calls of each) are huge, so their inclusion would show in every statistic
    a = clock.work("a", [100.0, 100.0, 3.0, 1.0, 2.0, 5.0, 4.0])
    b = clock.work("b", [100.0, 100.0, 6.0, 2.0, 4.0, 10.0, 8.0])
    c = clock.work("c", [100.0, 100.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    timings = timing.interleaved({"a": a, "b": b, "c": c}, repeats=5, warmup=2)

    assert clock.calls[:6] == ["a", "a", "b", "b", "c", "c"]
    rounds = [clock.calls[6 + 3 * r: 9 + 3 * r] for r in range(5)]
    assert rounds == [["a", "b", "c"], ["c", "b", "a"]] * 2 + [["a", "b", "c"]]
    assert timings["a"]["samples_s"] == [3.0, 1.0, 2.0, 5.0, 4.0]
    assert timings["b"]["samples_s"] == [6.0, 2.0, 4.0, 10.0, 8.0]
    assert (timings["a"]["min_s"], timings["a"]["median_s"]) == (1.0, 3.0)
    assert (timings["b"]["min_s"], timings["b"]["median_s"]) == (2.0, 6.0)
    assert timing.ratio(timings, "b", "a") == 2.0
    assert timing.median_ratio(timings, "b", "a") == 2.0
    assert timing.ratio(timings, "c", "b") == 0.5


def test_interleaved_median_of_even_count_and_bad_arguments(timing, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    timings = timing.interleaved({"x": clock.work("x", [1.0, 4.0, 2.0, 8.0])}, repeats=4, warmup=0)
    assert timings["x"]["samples_s"] == [1.0, 4.0, 2.0, 8.0]
    assert timings["x"]["median_s"] == 3.0
    with pytest.raises(ValueError, match="repeats"):
        timing.interleaved({"x": clock.work("x", [1.0])}, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        timing.interleaved({"x": clock.work("x", [1.0])}, warmup=-1)


def test_write_result_records_environment_and_honours_results_folder(timing, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(timing.RESULTS_ENV, str(tmp_path / "gpu"))
    monkeypatch.setattr(sys, "argv", [str(BENCH / "crate_step.py"), "--batch", "8"])
    env = timing.environment()
    path = timing.write_result("fake_bench", {"ratio": 1.5, "timings": timing.summarise(
        {"a": {"min_s": 1.0 / 3, "median_s": 0.5, "samples_s": [1.0 / 3, 0.5]}}, digits=3)}, env)

    assert path == tmp_path / "gpu" / "fake_bench.json"
    record = json.loads(path.read_text())
    assert record == json.loads(capsys.readouterr().out)
    assert record["benchmark"] == "fake_bench" and record["ratio"] == 1.5
    assert record["timings"]["a"] == {"min_s": 0.333, "median_s": 0.5, "samples_s": [0.333, 0.5]}
    environment = record["environment"]
    assert environment["command"] == "python bench/crate_step.py --batch 8"
    assert len(environment["loadavg_1_5_15"]) == len(environment["loadavg_1_5_15_after"]) == 3
    assert environment["versions"]["jax"] and environment["jax_backend"] == "cpu"
    assert environment["cpu"]["schedulable_cpus"] >= 1


def test_report_takes_every_ratio_with_its_median_and_labels_list_items():
    report = load("report")
    record = {
        "ratio_a_over_b": 2.0, "median_ratio_a_over_b": 2.5,
        "results": [{"batch": 8, "ratio_x_over_y": 1.25}, {"batch": 32, "ratio_x_over_y": 1.0}],
        "breakdown": {"sinkhorn": {"ratio_over_vanilla": 30.0}},
        "gpt2": {"mfu": 0.41, "peak_bytes": 123, "flag": True},
        "forward": {"time_ratio": 0.75, "time_ratio_median": 0.8},
        "timings": {"ratio_ignored": 9.0},
        "environment": {"command": "python bench/fake.py --size b16", "date": "2026-01-02T03:04:05+00:00",
                        "jax_backend": "gpu", "devices": ["gpu:NVIDIA H200"], "loadavg_1_5_15": [0.5, 0, 0],
                        "loadavg_1_5_15_after": [0.75, 0, 0]},
    }
    assert list(report.ratios(record)) == [("a over b", 2.0, 2.5), ("results[batch 8] / x over y", 1.25, None),
                                           ("results[batch 32] / x over y", 1.0, None),
                                           ("breakdown / sinkhorn / over vanilla", 30.0, None),
                                           ("gpt2 / mfu", 0.41, None), ("forward / time ratio", 0.75, 0.8)]
    first = report.rows_of("fake", record)[0]
    assert first == ("| fake | a over b | 2 | 2.5 | `python bench/fake.py --size b16` | 2026-01-02 | 1 x NVIDIA H200 "
                     "| 0.50 → 0.75 |")


def test_report_table_covers_gpu_stages_failures_and_determinism_probes(monkeypatch, tmp_path):
    report = load("report")
    environment = {"command": "python bench/x.py", "date": "2026-01-02T00:00:00+00:00", "cpu_count": 2,
                   "cpu": {"model_name": "Fake CPU"}, "loadavg_1_5_15": [1.0, 0, 0],
                   "loadavg_1_5_15_after": [2.0, 0, 0]}
    records = {
        "gpu": {"stages": {
            "crate_step": {"status": "ok", "seconds": 50, "results": {"crate_step_b16": {
                "ratio_crate_over_vit_throughput": 1.7, "environment": environment,
                "timings": {"crate": {"samples_s": [0.1] * 7}}}}},
            "fusion_time": {"status": "ok", "seconds": 20, "results": {"fusion_time": {
                "ratio_over_vanilla_average": 30.0, "environment": environment,
                "timings": {"fuse": {"samples_s": [0.1] * 7}, "vanilla": {"samples_s": [0.1, 0.1]}}}}},
            "zoo_throughput": {"status": "timed_out", "seconds": 90, "results": {}}}},
        "determinism_seeds": {"what": "3 seeds", "environment": environment, "final_test_accuracy": {
            "test_accuracy_percent": {"seed_0": 95.9, "seed_1": 95.3}, "mean": 95.6, "std": 0.42, "min": 95.3,
            "max": 95.9}},
        "determinism_training": {"what": "50 steps", "environment": environment, "cpu": {"model_name": "Fake CPU"},
                                 "bit_identical_groups": [["default", "default_again"], ["one_core"]],
                                 "runs": {"default": {"first_differing_loss_index": None,
                                                      "result": {"final_test": {"accuracy": 0.959}}},
                                          "one_core": {"first_differing_loss_index": 3,
                                                       "result": {"final_test": {"accuracy": 0.961}}}}},
    }
    for cpu, family_model, rsqrt in (("AMD EPYC", ["25", "17"], "r1"), ("Intel(R) Xeon(R)", ["6", "167"], "r2")):
        records[f"determinism_ops_{family_model[0]}"] = {
            "what": "ops", "environment": environment, "bit_identical_groups_per_op": {},
            "cpu": {"model_name": cpu, "family_model_stepping": [*family_model, "1"]},
            "runs": {"native/default": {"result": {"rsqrt": rsqrt, "exp": "e"}},
                     "Haswell/default": {"result": {"rsqrt": "r3", "exp": "e"}}}}
    for name, record in records.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    table = report.table()

    assert ("| gpu: crate_step_b16 | crate over vit throughput | 1.7 |  | `python bench/x.py` | 2026-01-02 "
            "| Fake CPU, 2 CPUs | 1.00 → 2.00 |") in table
    assert "GPU suite stage `zoo_throughput`: timed_out (after 90 s)." in table
    assert "over vanilla average" not in table
    assert ("Not quoted: `gpu: fusion_time` from `python bench/x.py`, 2 repeats (< 7: a check of the code path)."
            in table)
    assert "seed_0 95.90%, seed_1 95.30%; mean 95.60% +- 0.42 (sample std), range 95.30-95.90%" in table
    assert "{default, default_again} ≠ {one_core}" in table
    assert "first logged training loss that differs from the first setting's: one_core at index 3" in table
    assert "  - test accuracy: default 95.90%, one_core 96.10%" in table
    assert ("- ops, across AMD 25/17 and Intel 6/167: {AMD 25/17 default} ≠ {AMD 25/17 as Haswell/default, "
            "Intel 6/167 as Haswell/default} ≠ {Intel 6/167 default}") in table
    assert "  - the same bits on every CPU and in every setting: exp" in table
    assert table.startswith(report.BEGIN) and table.endswith(report.END)


def test_gpu_suite_stage_collects_results_and_records_failures_and_timeouts(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    suite = load("gpu_suite")
    writes = ("import json, os, pathlib; print('log line'); "
              "pathlib.Path(os.environ['BENCH_RESULTS'], 'fake_b16.json').write_text(json.dumps({'ratio_a': 2.0}))")

    def stage(name, code):
        return suite.Stage(name, ("-c", code), ("-c", "raise SystemExit(7)"), 60)

    ok = suite.run_stage(stage("ok", writes), smoke=False, folder=tmp_path, timeout_s=60)
    assert (ok["status"], ok["returncode"], ok["results"]) == ("ok", 0, {"fake_b16": {"ratio_a": 2.0}})
    assert "log_tail" not in ok and (tmp_path / "ok.log").read_text() == "log line\n"

    failed = suite.run_stage(stage("failed", writes), smoke=True, folder=tmp_path, timeout_s=60)
    assert (failed["status"], failed["returncode"], failed["results"]) == ("failed", 7, {})
    assert "log_tail" in failed

    slow = suite.run_stage(stage("slow", "import time; time.sleep(60)"), smoke=False, folder=tmp_path,
                           timeout_s=0.5)
    assert (slow["status"], slow["returncode"]) == ("timed_out", None) and slow["seconds"] < 30
