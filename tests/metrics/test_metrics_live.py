"""Per-container metrics on the shared testbed: a monitor for host 1 (in this process) with its
reporter publishing to the simulator's xcp-rrdd, read back through xapi's VM data sources."""

import json
import math
import os
import subprocess
import sys
import threading

import pytest

from waiting import wait_for
from xscontainer.monitor.service import Monitor, MonitorOptions
from xscontainer.xapi.session import close_session, open_local_session

MONITOR_KEY = "xscontainer-monitor"
CPU = "container_burner_cpu"


@pytest.fixture(scope="module")
def bed(testbed, tmp_path_factory):
    info = testbed.info()
    host = info["hosts"][0]
    record = next(v for v in info["vms"] if v["host_uuid"] == host["uuid"])
    session = open_local_session(info["unix_socket"])
    options = MonitorOptions(control_dir=str(tmp_path_factory.mktemp("ctl")), poll_timeout=1.0,
                             backoff_initial=0.2, backoff_maximum=1.0, rrdd_socket=host["rrdd_socket"])
    monitor = Monitor(lambda: open_local_session(info["unix_socket"]), host["inventory"], options)
    thread = threading.Thread(target=monitor.run, name="test-monitor")
    thread.start()
    ref = session.xenapi.VM.get_by_uuid(record["uuid"])
    try:
        session.xenapi.VM.remove_from_other_config(ref, MONITOR_KEY)
        session.xenapi.VM.add_to_other_config(ref, MONITOR_KEY, "True")
        yield testbed, session, monitor, record, ref
    finally:
        session.xenapi.VM.remove_from_other_config(ref, MONITOR_KEY)
        monitor.stop()
        thread.join(30)
        close_session(session)
    assert not thread.is_alive()


def burner_cpu(session, ref):
    """The value rrdd holds, None while unknown or not listed."""
    names = {d["name_label"] for d in session.xenapi.VM.get_data_sources(ref)}
    if CPU not in names:
        return None
    value = session.xenapi.VM.query_data_source(ref, CPU)
    return None if math.isnan(value) else value


def watched_running(monitor, vm_uuid):
    """Names of the VM's running containers as its watcher last listed them."""
    watcher = monitor.host.watchers().get(vm_uuid)
    running = watcher.running_containers() if watcher is not None else None
    return [name.lstrip("/") for _, name in running or []]


def docker_stats_cpu(testbed, vm):
    out = testbed.docker(vm, ["stats", "--no-stream", "--format", "{{.CPUPerc}}", "burner"]).stdout
    return float(out.strip().rstrip("%"))


def test_the_burners_cpu_appears_within_two_readings_and_matches_docker_stats(bed):
    testbed, session, monitor, record, ref = bed
    vm = record["name_label"]
    wait_for(lambda: burner_cpu(session, ref) is not None, timeout=60, what="the burner's CPU data source")
    testbed.docker(vm, ["stop", "-t", "0", "burner"])
    wait_for(lambda: burner_cpu(session, ref) is None, timeout=60, what="the stopped burner's CPU to be unknown")
    testbed.docker(vm, ["start", "burner"])
    # From when the monitor knows it runs (the reporter samples the containers the VM's watcher
    # last listed; how soon that follows a change is the monitor tests' to check).
    wait_for(lambda: "burner" in watched_running(monitor, record["uuid"]), what="the watcher to list the burner")
    started_at = monitor.reporter.published
    wait_for(lambda: burner_cpu(session, ref) is not None, timeout=60, what="the restarted burner's CPU")
    # Counted in the reporter's writes (one per rrdd reading), not in seconds: the write under
    # way when the watcher listed the container may have sampled before; the next has it.
    assert monitor.reporter.published - started_at <= 2
    ours = wait_for(lambda: burner_cpu(session, ref) if monitor.reporter.published - started_at >= 3 else None,
                    timeout=60, what="a reading over a full interval")
    theirs = docker_stats_cpu(testbed, vm)
    assert theirs > 1.0  # the burner burns: the comparison below means something
    assert abs(ours - theirs) <= 10.0


def test_the_vm_lists_every_metric_of_its_running_containers(bed):
    testbed, session, monitor, record, ref = bed
    wait_for(lambda: burner_cpu(session, ref) is not None, timeout=60, what="the burner's CPU data source")
    listed = {d["name_label"]: d for d in session.xenapi.VM.get_data_sources(ref)}
    for metric in ("cpu", "memory", "memory_limit", "net_rx", "net_tx", "blk_read", "blk_write"):
        assert listed["container_web_%s" % metric]["enabled"]
    assert listed["container_web_memory"]["units"] == "B"
    assert session.xenapi.VM.query_data_source(ref, "container_web_memory") > 0
    assert "container_exited_cpu" not in listed  # not running: never published


def test_the_cli_shows_what_rrdd_recorded(bed):
    testbed, session, monitor, record, ref = bed
    wait_for(lambda: burner_cpu(session, ref) is not None, timeout=60, what="the burner's CPU data source")
    info = testbed.info()
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=info["unix_socket"], XSCONTAINER_INVENTORY=info["hosts"][0]["inventory"])

    def recorded_when_both_run():
        out = subprocess.run([sys.executable, "-m", "xscontainer.cli.main", "stats", "--json", "--recorded",
                              record["uuid"]], env=env, stdout=subprocess.PIPE, check=True).stdout
        rows = {r["name"]: r for r in json.loads(out.decode("utf-8"))["containers"]}
        return rows if {"web", "burner"} <= set(rows) else None

    # A reading the reporter missed (a loaded host) leaves every source unknown until the next.
    rows = wait_for(recorded_when_both_run, timeout=30, what="both running containers in stats --recorded")
    assert "exited" not in rows
    assert rows["burner"]["cpu_percent"] > 0 and rows["web"]["memory_usage"] > 0
    table = subprocess.run([sys.executable, "-m", "xscontainer.cli.main", "stats", "--recorded", record["uuid"]],
                           env=env, stdout=subprocess.PIPE, check=True).stdout.decode("utf-8")
    assert table.splitlines()[0].split()[:3] == ["NAME", "CPU", "%"]

    def watched_when_both_run():
        lines = subprocess.run([sys.executable, "-m", "xscontainer.cli.main", "stats", "--watch", "--count", "1"],
                               env=env, stdout=subprocess.PIPE, check=True).stdout.decode("utf-8").splitlines()
        shown = {tuple(line.split()[:3:2]) for line in lines[2:]}
        return {(record["name_label"], "burner"), (record["name_label"], "web")} <= shown

    # A later reading than the one above: it too may have been missed, so look again.
    wait_for(watched_when_both_run, timeout=30, what="both running containers in stats --watch")
