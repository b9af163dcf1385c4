"""Smoke test of bench/hostile.py (no testbed: a fake engine on a Unix socket): it prints one JSON
object with each hostile scenario's memory and CPU beside the sane baseline of the same run, and
every hostile answer ends in a bound, never in the client reading it all. Figures are reported,
not asserted (never timed assertions)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_hostile_bench_prints_one_json_object():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "hostile.py"), "--containers", "2000",
                             "--scenarios", "sane,endless,list_20000,one_byte_chunks,parallel_8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    document = json.loads(lines[0])
    assert document["bench"] == "hostile"
    for scenario in ("sane", "endless", "list_20000", "one_byte_chunks", "parallel_8"):
        for variant in ("as_is", "malloc_trim", "arena_max_2"):
            figures = document[scenario][variant]
            assert figures["rss_peak_mb"] >= figures["rss_before_mb"] > 0 and figures["cpu_s"] >= 0
        assert "peak_over_sane" in document[scenario]["as_is"]
    assert document["sane"]["as_is"]["outcomes"] == ["100"]
    assert document["endless"]["as_is"]["outcomes"] == ["ENGINE_RESPONSE_TOO_LARGE"]
    assert document["one_byte_chunks"]["as_is"]["outcomes"] == ["100"]
    assert document["parallel_8"]["as_is"]["outcomes"] == ["1000"]
