"""bench/fusion_time.py at a smoke size: the shared timing method, the per-stage breakdown, its JSON."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_fusion_bench_writes_the_stage_breakdown(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    import fusion_time

    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["fusion_time.py", "--size", "cpu", "--num_images", "8", "--repeats", "1"])
    fusion_time.main()
    result = json.loads((tmp_path / "fusion_time.json").read_text())
    assert result["benchmark"] == "fusion_time" and result["num_images"] == 8
    assert result["ot_problems_per_fusion"] == 2 + 6 * 2  # patch, pos; q, k, v, o, fc1, fc2 per block
    assert result["emd_maps_not_optimal"] == 0
    for solver in ("sinkhorn", "emd"):
        stages = result["breakdown"][solver]
        parts = stages["activation_collection_s"] + stages["ot_solves_with_costs_s"] + stages["weight_transforms_s"]
        assert abs(parts - stages["total_s"]) < 2e-3 and stages["activation_collection_s"] > 0
    assert set(result["timings"]) == {"vanilla_average", "activation_collection", "weight_transforms",
                                      "fuse_sinkhorn", "fuse_emd"}
    assert "loadavg_1_5_15" in result["environment"] and "loadavg_1_5_15_after" in result["environment"]
