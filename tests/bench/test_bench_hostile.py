"""Smoke test of bench/hostile.py (a testbed of its own: needs root): it prints one JSON object
with the running monitor's figures under a hostile mode beside the quiet baseline of the same run,
the budgets and a verdict per budget. Figures are reported, not asserted (never timed assertions):
the verdicts are booleans whatever they say."""

import json
import os
import subprocess
import sys

import pytest

from xscontainer.testbed import missing_prerequisites

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_hostile_bench_prints_one_json_object():
    reasons = missing_prerequisites()
    if reasons:
        pytest.skip("testbed unavailable on this machine: " + "; ".join(reasons))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "hostile.py"), "--modes", "endless",
                             "--window", "3", "--samples", "2", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    document = json.loads(lines[0])
    assert document["bench"] == "hostile" and set(document["modes"]) == {"quiet", "endless"}
    assert set(document["budgets"]) == {"rss_peak_mb", "cpu_share", "reflect_max_s"}
    for figures in document["modes"].values():
        assert figures["rss_peak_mb"] > 0 and figures["cpu_s"] >= 0 and figures["requests_served"] >= 0
        assert set(figures["pass"]) == {"memory", "cpu", "reflect"}
        assert all(isinstance(verdict, bool) for verdict in figures["pass"].values())
    # What the monitor made of the attack within a 3-s window depends on the machine's load (at load
    # 45 it had not read the 16 MiB yet): reported, not asserted.
    assert "hostile_vm_error" in document["modes"]["endless"]
    assert isinstance(document["pass"], bool)
