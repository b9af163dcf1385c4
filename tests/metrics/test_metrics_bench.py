"""Smoke test of bench/metrics.py: one JSON object with both figures (never asserted: no timing)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_metrics_bench_prints_one_json_object():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "metrics.py"), "--vms", "2",
                             "--containers", "3", "--cycles", "1", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    document = json.loads(lines[0])
    assert document["bench"] == "metrics" and document["datasources"] == 2 * 3 * 7
    for figures in (document["reporter"], document["baseline_engine_reads_only"]):
        assert set(figures) == {"cpu_s_per_cycle", "wall_s_per_cycle", "core_percent_at_5s"}
    assert document["shared_files_bytes"] >= 3 * 4096  # the host's file and one per VM
