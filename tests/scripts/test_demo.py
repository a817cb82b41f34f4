"""The demo orchestrator (scripts/demo.py): jobs run in their own processes, the report opens with the cross-paper
table, a failing job is reported and the others still run. Fake jobs stand in for the papers (each paper's
``run_demo`` is tested in its own package)."""

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def demo(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "fake_paper_demo.py").write_text(textwrap.dedent('''
        from pathlib import Path

        def run_demo(job_dir, preset):
            job_dir = Path(job_dir)
            job_dir.mkdir(parents=True, exist_ok=True)
            (job_dir / "curve.png").write_bytes(b"png")
            (job_dir / "report.md").write_text("# fake")
            return {"summary": f"accuracy 0.5 at preset {preset}", "figures": [f"{job_dir.name}/curve.png"]}
        '''))
    (tmp_path / "broken_paper_demo.py").write_text("def run_demo(job_dir, preset):\n    raise RuntimeError('boom')\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{ROOT}")
    return module


def test_report_opens_with_the_cross_paper_table(demo, tmp_path):
    jobs = [demo.Job("fake", "A fake paper (2024)", "fake_paper_demo", {"smoke": 1.0}),
            demo.Job("broken", "A broken paper (2025)", "broken_paper_demo", {"smoke": 1.0})]
    results = demo.run(jobs, tmp_path / "out", "smoke")
    assert results["fake"]["ok"] and results["fake"]["summary"] == "accuracy 0.5 at preset smoke"
    assert not results["broken"]["ok"] and "boom" in (tmp_path / "out" / "broken.log").read_text()
    report = (tmp_path / "out" / "report.md").read_text().splitlines()
    table = [line for line in report if line.startswith("| ")]
    assert table[0] == "| paper | result | time |"
    assert table[1].startswith("| A fake paper (2024) | accuracy 0.5 at preset smoke |")
    assert table[2].startswith("| A broken paper (2025) | failed: see broken.log |")
    assert "![curve](fake/curve.png)" in report and "[fake/report.md](fake/report.md)." in " ".join(report)
    assert set(json.loads((tmp_path / "out" / "summary.json").read_text())) == {"fake", "broken"}
    demo.copy_headline_figures(results, tmp_path / "out", tmp_path / "figures")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["fake.png"]


def test_every_paper_job_runs_at_every_preset_and_names_a_real_module(demo):
    papers = [job for job in demo.JOBS if job.name != "foundation"]
    assert len(papers) == 5
    for job in demo.JOBS:
        assert set(job.presets) <= set(job.expected_seconds)
        assert importlib.util.find_spec(job.module) is not None
    assert sum(job.expected_seconds["demo"] for job in papers) <= 600  # the demo's 10-minute budget


def test_unknown_job_is_a_usage_error(demo, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--jobs", "crate,nope"])
    assert exit_info.value.code == 2 and "unknown job(s) nope" in capsys.readouterr().err


def test_common_jax_names_no_paper_package():
    papers = ("qkvflow_jax", "nfn_jax", "crate_jax", "fusion_jax", "equitune_jax")
    offenders = [f"{path.relative_to(ROOT)}: {paper}" for path in (ROOT / "common_jax").rglob("*.py")
                 for paper in papers if paper in path.read_text()]
    assert not offenders, offenders
