"""Write the table of the latest benchmark figures into ``bench/README.md`` from ``bench/results/*.json``.

    python bench/report.py [--check]

Every ``ratio*`` / ``*_ratio`` figure (and MFU, zoo models per minute) of every result file becomes a row
(``gpu.json``: of each stage's results), with the ratio of the medians beside it where the benchmark reports one
(``median_<key>`` or ``<key>_median``), the command that produced it, its date, the machine and the load average
(1 minute, before and after the timing); a file timed with fewer than 7 interleaved repetitions is named but not quoted.
``determinism_*.json`` add their groups of bit-identical settings (the ``seeds`` probe: the accuracy of each seed
and their spread), and the same probe run on several CPUs is compared across them. Only the part of
``bench/README.md`` between the two ``report.py`` markers is rewritten, so the table is never typed by hand;
``--check`` exits 1 if that part is out of date instead.
"""

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"
BEGIN = "<!-- report.py: begin (generated from bench/results/*.json; do not edit by hand) -->"
END = "<!-- report.py: end -->"
SKIPPED_KEYS = ("timings", "environment")
ITEM_LABELS = ("case", "batch", "name", "size", "models")  # what names an element of a list of results
FIGURE_KEYS = ("mfu", "models_per_minute")  # absolute figures quoted beside the ratios
MIN_REPEATS = 7  # fewer interleaved repetitions than this: a check of the code path, not a quoted figure


def ratios(record: Any, context: tuple[str, ...] = ()) -> Iterator[tuple[str, float, float | None]]:
    """``(what, ratio, median ratio or None)`` for every ``ratio*`` or ``*_ratio`` key in ``record`` (nested), in
    file order, its median from ``median_<key>`` or ``<key>_median``; likewise for the :data:`FIGURE_KEYS` (MFU,
    zoo models per minute)."""
    if isinstance(record, dict):
        for key, value in record.items():
            if key in SKIPPED_KEYS:
                continue
            if ((key.startswith("ratio") or key.endswith("_ratio") or key in FIGURE_KEYS)
                    and isinstance(value, int | float) and not isinstance(value, bool)):
                median = record.get(f"median_{key}", record.get(f"{key}_median"))
                what = (key.removeprefix("ratio") if key.startswith("ratio") else key).strip("_").replace("_", " ")
                yield " / ".join((*context, what)), float(value), median
            elif isinstance(value, dict | list):
                yield from ratios(value, (*context, key))
    elif isinstance(record, list):
        for index, item in enumerate(record):
            label = next((f"{k} {item[k]}" for k in ITEM_LABELS if isinstance(item, dict) and k in item), str(index))
            yield from ratios(item, (*context[:-1], f"{context[-1] if context else ''}[{label}]"))


def machine(environment: dict) -> str:
    devices = environment.get("devices") or []
    if environment.get("jax_backend") not in (None, "cpu") and devices:
        return f"{len(devices)} x {devices[0].split(':', 1)[-1]}"
    cpu = environment.get("cpu", {}).get("model_name") or environment.get("processor", "?")
    return f"{cpu}, {environment.get('cpu_count', '?')} CPUs"


def load(environment: dict) -> str:
    before, after = environment.get("loadavg_1_5_15"), environment.get("loadavg_1_5_15_after")
    return f"{before[0]:.2f} → {after[0]:.2f}" if before and after else (f"{before[0]:.2f}" if before else "?")


def fewest_repeats(record: Any) -> int | None:
    """The fewest timed samples of any unit in ``record`` (``samples_s`` lists, nested), None if it has none."""
    if isinstance(record, dict):
        found = [len(record["samples_s"])] if isinstance(record.get("samples_s"), list) else []
        found += [n for value in record.values() if (n := fewest_repeats(value)) is not None]
    elif isinstance(record, list):
        found = [n for value in record if (n := fewest_repeats(value)) is not None]
    else:
        return None
    return min(found, default=None)


def rows_of(name: str, record: dict) -> list[str]:
    environment = record.get("environment", {})
    command = environment.get("command") or f"python bench/{name}.py"
    date = environment.get("date", "?")[:10]
    rows = []
    for what, value, median in ratios(record):
        rows.append(f"| {name} | {what} | {value:.3g} | {'' if median is None else f'{median:.3g}'} | `{command}` "
                    f"| {date} | {machine(environment)} | {load(environment)} |")
    return rows


def braces(groups: list[list[str]]) -> str:
    """``{a, b} ≠ {c}``: groups of settings with bit-identical results."""
    return " ≠ ".join("{" + ", ".join(g) + "}" for g in groups)


def determinism_lines(record: dict) -> list[str]:
    environment, cpu = record.get("environment", {}), record.get("cpu", {})
    lines = [(f"- `{environment.get('command', 'python bench/determinism.py')}` ({environment.get('date', '?')[:10]}, "
              f"{cpu.get('model_name')} family/model {'/'.join(map(str, cpu.get('family_model_stepping', [])[:2]))}, "
              f"ISA {' '.join(cpu.get('isa_flags', []))}; {record.get('what', '')}): "
              f"{braces(record.get('bit_identical_groups', []))}")]
    per_op = record.get("bit_identical_groups_per_op", {})
    lines += [f"  - {op}: {braces(groups)}" for op, groups in per_op.items() if len(groups) > 1]
    same = [op for op, groups in per_op.items() if len(groups) == 1]
    if same:
        lines.append(f"  - the same bits in every setting: {', '.join(same)}")
    differing = {name: run["first_differing_loss_index"] for name, run in record.get("runs", {}).items()
                 if run.get("first_differing_loss_index") is not None}
    if differing:
        lines.append("  - first logged training loss that differs from the first setting's: "
                     + ", ".join(f"{name} at index {index}" for name, index in differing.items()))
    accuracy = {name: run["result"]["final_test"]["accuracy"] for name, run in record.get("runs", {}).items()
                if "accuracy" in run.get("result", {}).get("final_test", {})}
    if accuracy:
        lines.append("  - test accuracy: " + ", ".join(f"{name} {100 * a:.2f}%" for name, a in accuracy.items()))
    return lines


def cpu_label(record: dict) -> str:
    """``AMD 25/17``: a determinism record's CPU vendor, family and model."""
    cpu = record.get("cpu", {})
    vendor = (cpu.get("model_name") or "?").split()[0].split("(")[0]
    return f"{vendor} {'/'.join(map(str, cpu.get('family_model_stepping', [])[:2]))}"


def same_bits(results: dict[str, Any]) -> list[list[str]]:
    """Groups of the names in ``results`` whose values are equal."""
    groups: dict[str, list[str]] = {}
    for name, value in results.items():
        groups.setdefault(json.dumps(value, sort_keys=True), []).append(name)
    return list(groups.values())


def cross_machine_lines(records: list[dict]) -> list[str]:
    """The same probe (same ``what``) run on several CPUs: all their settings grouped by bit-identical results
    (``native/x`` reads ``<cpu> x``, an emulated setting ``<host cpu> as <model>/x``); per op for the ``ops``
    probe."""
    by_what: dict[str, list[dict]] = {}
    for record in records:
        if "runs" in record and "final_test_accuracy" not in record:
            by_what.setdefault(record.get("what", ""), []).append(record)
    lines = []
    for what, same_probe in by_what.items():
        cpus = sorted({cpu_label(record) for record in same_probe})
        if len(cpus) < 2:
            continue
        results = {(f"{cpu_label(record)} {name.removeprefix('native/')}" if name.startswith("native/")
                    else f"{cpu_label(record)} as {name}"): run["result"]
                   for record in same_probe for name, run in record["runs"].items() if "result" in run}
        lines.append(f"- {what}, across {' and '.join(cpus)}: {braces(same_bits(results))}")
        if all("bit_identical_groups_per_op" in record for record in same_probe):
            ops = list(dict.fromkeys(op for result in results.values() for op in result))
            per_op = {op: same_bits({name: result.get(op) for name, result in results.items()}) for op in ops}
            lines += [f"  - {op}: {braces(groups)}" for op, groups in per_op.items() if len(groups) > 1]
            same = [op for op, groups in per_op.items() if len(groups) == 1]
            if same:
                lines.append(f"  - the same bits on every CPU and in every setting: {', '.join(same)}")
    return lines


def seeds_line(record: dict) -> str:
    """One line: the final test accuracy of each seed and their spread."""
    environment, spread = record.get("environment", {}), record["final_test_accuracy"]
    std = "" if spread.get("std") is None else f" +- {spread['std']:.2f}"
    per_seed = ", ".join(f"{name} {value:.2f}%" for name, value in spread["test_accuracy_percent"].items())
    return (f"- `{environment.get('command', 'python bench/determinism.py --probes seeds')}` "
            f"({environment.get('date', '?')[:10]}, {machine(environment)}; {record.get('what', '')}): {per_seed}; "
            f"mean {spread['mean']:.2f}%{std} (sample std), range {spread['min']:.2f}-{spread['max']:.2f}%")


def table() -> str:
    header = ("| benchmark | what is compared | figure (of minima) | of medians | command | date | machine "
              "| load (1 min, before → after) |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    extra: list[str] = []
    determinism: list[str] = []
    probes: list[dict] = []

    def add(name: str, record: dict) -> None:
        repeats = fewest_repeats(record)
        if repeats is None or repeats >= MIN_REPEATS:
            lines.extend(rows_of(name, record))
        else:
            extra.append(f"Not quoted: `{name}` from `{record.get('environment', {}).get('command')}`, {repeats} "
                         f"repeats (< {MIN_REPEATS}: a check of the code path).")

    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        if path.stem.startswith("determinism"):
            determinism += [seeds_line(record)] if "final_test_accuracy" in record else determinism_lines(record)
            probes.append(record)
        elif path.stem == "gpu":
            for stage, result in record.get("stages", {}).items():
                for name, stage_record in result.get("results", {}).items():
                    add(f"gpu: {name}", stage_record)
                if result.get("status") != "ok":
                    extra.append(f"GPU suite stage `{stage}`: {result.get('status')} "
                                 f"({result.get('reason') or 'after ' + str(result.get('seconds')) + ' s'}).")
        else:
            add(path.stem, record)
    if determinism:
        extra += ["", "Determinism probes:", "", *determinism]
    across = cross_machine_lines(probes)
    if across:
        extra += ["", "The same probes on different machines:", "", *across]
    return "\n".join([BEGIN, "", *lines, "", *extra, "", END])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if bench/README.md's table is out of date")
    args = parser.parse_args()
    text = README.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{README} has no report.py markers; put these two lines where the table goes:\n{BEGIN}\n{END}")
    head, rest = text.split(BEGIN, 1)
    updated = head + table() + rest.split(END, 1)[1]
    if args.check:
        sys.exit(0 if updated == text else f"{README} is out of date: run python bench/report.py")
    README.write_text(updated)
    print(f"wrote the table of {len(list(RESULTS.glob('*.json')))} result files into {README}")


if __name__ == "__main__":
    main()
