"""Smoke test of the benchmarks: bench/reflect.py runs against the shared testbed and prints one
JSON object with its figures. Figures are not asserted (never timed assertions)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_reflect_bench_prints_one_json_object(testbed):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "reflect.py"), "--testbed",
                             testbed.directory, "--changes", "4", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    document = json.loads(lines[0])
    assert document["bench"] == "reflect"
    assert document["reflected"] == 4 and document["missed"] == 0
    assert set(["p50_ms", "p95_ms", "max_ms", "count"]) <= set(document["latency"])
    assert document["latency"]["count"] == 4
    info = testbed.info()
    vm_ref_uuid = [v["uuid"] for v in info["vms"] if v["name_label"] == document["vm"]][0]
    session = testbed.xapi_session()
    try:
        other_config = session.xenapi.VM.get_other_config(session.xenapi.VM.get_by_uuid(vm_ref_uuid))
    finally:
        from xscontainer.xapi.session import close_session
        close_session(session)
    assert other_config.get("xscontainer-monitor") != "True"  # left as found: not registered
    assert "docker_ps" not in other_config


def test_shared_namespace_addressing_of_the_scale_testbed():
    """Pure: how bench/scale.py's testbed (addresses_per_namespace=K) lays out VM addresses."""
    from xscontainer.testbed import config, naming
    per_ns = 100
    assert naming.namespaces_needed(1000, per_ns) == 10
    assert naming.extra_subnets_needed(1000, per_ns) == 10  # one routed /24 per namespace
    assert [naming.namespace_owner(i, per_ns) for i in (1, 100, 101, 1000)] == [1, 1, 101, 901]
    assert [naming.namespace_position(i, per_ns) for i in (1, 2, 100, 101)] == [0, 1, 99, 0]
    octets = list(range(20, 30))
    subnets = naming.namespace_subnets(octets, 2, per_ns)
    assert subnets == [21]
    assert naming.extra_address(subnets, 1) == "169.254.21.2"
    assert naming.extra_address(subnets, 99) == "169.254.21.100"
    addresses = set()
    for index in range(1, 1001):
        number = naming.namespace_number(index, per_ns)
        position = naming.namespace_position(index, per_ns)
        addresses.add(naming.vm_address(5, number) if position == 0 else
                      naming.extra_address(naming.namespace_subnets(octets, number, per_ns), position))
    assert len(addresses) == 1000
    assert naming.extra_subnets_per_namespace(300) == 2  # more than 253 extras spill into a second /24
    shared = config.sshd_config("169.254.5.2", "/k", shared=True)
    assert "ListenAddress 0.0.0.0:22" in shared and "MaxStartups" in shared
    assert "MaxStartups" not in config.sshd_config("169.254.5.2", "/k")


def test_the_scale_bench_reads_where_the_monitors_start_up_went(tmp_path):
    """Pure: the watcher's once-per-VM start-up line, as bench/scale.py sums it."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import scale
    finally:
        sys.path.remove(os.path.join(ROOT, "bench"))
    from xscontainer.monitor.watcher import FIRST_KEYS_LOG
    log = tmp_path / "monitor.log"
    lines = ["2026-12-02 10:00:00,000 INFO [x] xscontainer.monitor.daemon: VM u0: monitoring starts"]
    for index in range(4):
        lines.append("2026-12-02 10:00:01,000 INFO [refresh] xscontainer.monitor.watcher: "
                     + FIRST_KEYS_LOG % ("u%d" % index, 2.0 + index, 0.5, 1.0, 0.25 * index, 0.1, 0.2))
    log.write_text("\n".join(lines) + "\n")
    breakdown = scale.startup_breakdown(str(log))
    assert breakdown["vms"] == 4
    phases = breakdown["phases"]
    assert set(phases) == {"slot_wait", "connect", "queued", "engine_read", "xapi_write", "total"}
    assert phases["connect"]["sum_s"] == 4.0 and phases["queued"]["max_ms"] == 750.0
    assert phases["total"]["count"] == 4 and phases["total"]["p50_ms"] == 3000.0
