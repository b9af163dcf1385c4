"""The monitor across an xapi restart, and its shutdown.

A private simulator (so it can be restarted) describes one VM that is really the shared
testbed's vm1: same address, and the testbed's pool key copied into this pool's secrets.
"""

import shutil
import tempfile
import threading

import pytest

from consumer_xml import xencenter_containers
from waiting import wait_for
from xscontainer.monitor.service import Monitor, MonitorOptions
from xscontainer.poolkeys import PRIVATE_KEY_ENTRY, PUBLIC_KEY_ENTRY
from xscontainer.sim.process import SimulatorProcess
from xscontainer.xapi.session import close_session, open_local_session


def _adopt_testbed_vm(session, testbed):
    """Give the private pool the testbed's key and a VM that is the testbed's vm1."""
    api = session.xenapi
    pool = api.pool.get_all()[0]
    pair = testbed.pool_keypair()
    for entry, value in ((PRIVATE_KEY_ENTRY, pair.private_pem), (PUBLIC_KEY_ENTRY, pair.public_line)):
        secret = api.secret.create({"value": value, "other_config": {}})
        api.pool.add_to_other_config(pool, entry, api.secret.get_uuid(secret))
    vm1 = testbed.info()["vms"][0]
    ref = api.VM.create({"name_label": "adopted-vm1"})
    api.VM.start_on(ref, api.host.get_all()[0], False, False)
    api.sim.set_guest_networks(ref, {"0/ip": vm1["ip"], "0/ipv4/0": vm1["ip"]})
    api.VM.add_to_other_config(ref, "xscontainer-sshhostkey", vm1["ssh_host_key"])  # verified by its admin
    api.VM.add_to_other_config(ref, "xscontainer-monitor", "True")
    return ref, vm1


def _web_status(session, ref):
    containers = {c.name: c for c in xencenter_containers(session.xenapi.VM.get_other_config(ref).get("docker_ps"))}
    return containers["web"].status if "web" in containers else None


def test_xapi_restart_keeps_one_watcher_and_stop_leaves_no_thread(testbed, tmp_path):
    sim = SimulatorProcess(str(tmp_path / "xapi"))
    sim.start()
    threads_before = set(threading.enumerate())
    session = sim.local_session()
    monitor = None
    runner = None
    control_dir = None
    try:
        ref, vm1 = _adopt_testbed_vm(session, testbed)
        inventory = sim.info["hosts"][0]["inventory"]
        socket_path = sim.socket_path
        control_dir = tempfile.mkdtemp(prefix="xsc-ctl-")  # a Unix socket path must stay short
        options = MonitorOptions(control_dir=control_dir, poll_timeout=1.0, backoff_initial=0.1,
                                 backoff_maximum=0.5)
        monitor = Monitor(lambda: open_local_session(socket_path), inventory, options)
        runner = threading.Thread(target=monitor.run, name="monitor-under-test")
        runner.start()
        wait_for(lambda: _web_status(session, ref) == "Up", what="vm1 reflected")
        [watcher] = monitor.host.watchers().values()

        close_session(session)
        assert sim.stop() == 0
        sim.start()  # same directory: same database, refs and socket
        session = sim.local_session()
        wait_for(monitor.host.connected.is_set, what="the monitor to reconnect to xapi")
        assert list(monitor.host.watchers().values()) == [watcher], "the watcher survives, no duplicate"

        testbed.docker(vm1["name_label"], ["pause", "web"])
        try:
            wait_for(lambda: _web_status(session, ref) == "Up (Paused)", what="a change after the restart")
        finally:
            testbed.docker(vm1["name_label"], ["unpause", "web"])
        wait_for(lambda: _web_status(session, ref) == "Up", what="web running again")
        assert len(monitor.host.watchers()) == 1
    finally:
        if monitor is not None:
            monitor.stop()
            runner.join(30)
        close_session(session)
        sim.stop()
        shutil.rmtree(control_dir, ignore_errors=True)
    assert not runner.is_alive()
    leftovers = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert leftovers == [], "threads left behind: %s" % [t.name for t in leftovers]


def _run_monitor(socket_path, inventory, control_dir):
    options = MonitorOptions(control_dir=control_dir, poll_timeout=1.0)
    monitor = Monitor(lambda: open_local_session(socket_path), inventory, options)
    runner = threading.Thread(target=monitor.run, name="monitor-under-test")
    runner.start()
    return monitor, runner


def _docker_keys(session, ref):
    config = session.xenapi.VM.get_other_config(ref)
    return {key: value for key, value in config.items() if key.startswith("docker_")}


def test_a_restarted_monitor_writes_nothing_that_has_not_changed(testbed, tmp_path):
    sim = SimulatorProcess(str(tmp_path / "xapi"))
    sim.start()
    session = sim.local_session()
    control_dir = tempfile.mkdtemp(prefix="xsc-ctl-")
    try:
        ref, _ = _adopt_testbed_vm(session, testbed)
        inventory = sim.info["hosts"][0]["inventory"]
        first, runner = _run_monitor(sim.socket_path, inventory, control_dir)
        try:
            wait_for(lambda: _web_status(session, ref) == "Up" and len(_docker_keys(session, ref)) == 3,
                     what="vm1 reflected (docker_info and docker_version come after docker_ps)")
        finally:
            first.stop()
            runner.join(30)
        # docker_info carries dockerd's live counters (NFd: its open files), which a monitor's own
        # connections move: a restart whose values really changed proves nothing either way, so
        # restarts are repeated until one finds every value as it was.
        quiet = 0
        for _ in range(4):
            before = _docker_keys(session, ref)
            token = session.xenapi.event_from(["vm"], "", 0.0)["token"]
            second, runner = _run_monitor(sim.socket_path, inventory, control_dir)
            try:
                wait_for(lambda: [w for w in second.host.watchers().values() if w.status()["state"] == "monitored"],
                         what="the second monitor's first full refresh")
                batch = session.xenapi.event_from(["vm"], token, 0.5)
                after = _docker_keys(session, ref)
            finally:
                second.stop()
                runner.join(30)
            if after == before:
                assert [e for e in batch["events"] if e["ref"] == ref] == [], "unchanged keys were rewritten"
                quiet += 1
                break
        assert quiet, "every restart found dockerd's counters changed"
    finally:
        close_session(session)
        sim.stop()
        shutil.rmtree(control_dir, ignore_errors=True)
