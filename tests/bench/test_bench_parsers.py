"""Smoke test of the pure benches (no testbed): each prints one JSON object with a figure and
a same-run baseline. Figures are not asserted (never timed assertions)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_bench(script, *args):
    """The one JSON object the bench printed."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", script)] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_parsers_bench_prints_one_json_object():
    document = run_bench("parsers.py", "--size", "2048", "--repeat", "1")
    assert document["bench"] == "parsers" and document["size"] == 2048
    for shape in ("chunked_one_read", "chunked_socket_reads", "event", "log_frames"):
        assert "ratio" in document[shape] and len(document[shape]) >= 3
    assert "h11_comparison" not in document


def test_xapi_parse_bench_prints_one_json_object():
    document = run_bench("xapi_parse.py", "--records", "3", "--repeat", "1")
    assert document["bench"] == "xapi_parse" and document["records"] == 3
    assert document["xmlrpc_client_ms_per_record"] > 0 and document["xmlrpcparse_ms_per_record"] > 0


def test_sim_persist_bench_prints_one_json_object():
    document = run_bench("sim_persist.py", "--vms", "5", "--changed", "2", "--repeat", "1")
    assert document["bench"] == "sim_persist" and document["vms"] == 5 and document["changed"] == 2
    assert document["whole_state_ms"] > 0 and document["dump_ms"] > 0 and document["dump_bytes"] > 0


def test_xapi_call_bench_prints_one_json_object():
    document = run_bench("xapi_call.py", "--writes", "5", "--rounds", "1")
    assert document["bench"] == "xapi_call" and document["writes"] == 5
    assert document["cpu_ms_per_write"]["http_client"] > 0 and document["cpu_ms_per_write"]["local_socket"] > 0
