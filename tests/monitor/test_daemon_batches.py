"""The monitor's xapi loop reads changes in batches: each of its own writes comes back as an event
of the whole VM record, and a batch read as soon as one change is there holds one change
(issue 18: parsing those records took a third of the monitor's interpreter time at 1,000 VMs)."""

import threading
import time

from xscontainer.monitor.daemon import HostMonitor

HOST_UUID = "5628516e-6ba1-43c7-8d28-3a2ab663f8f7"


class BusyXapi:
    """event.from that always has one change to report, at once, as a pool under load does."""

    def __init__(self):
        self.calls = 0
        self.xenapi = self
        self.host = type("Host", (), {"get_by_uuid": staticmethod(lambda uuid: "OpaqueRef:host")})()
        self.session = type("SessionClass", (), {"logout": staticmethod(lambda: None)})()

    def event_from(self, classes, token, timeout):
        self.calls += 1
        vm = {"uuid": "vm-1", "power_state": "Halted", "other_config": {}, "resident_on": "OpaqueRef:NULL"}
        return {"events": [{"class": "vm", "ref": "OpaqueRef:vm-1", "operation": "mod", "snapshot": vm}],
                "token": "%020d,%020d" % (self.calls, 0), "valid_ref_counts": {}}


def test_changes_are_read_in_batches_a_gather_time_apart(tmp_path):
    inventory = tmp_path / "xensource-inventory"
    inventory.write_text("INSTALLATION_UUID='%s'\n" % HOST_UUID)
    xapi = BusyXapi()
    monitor = HostMonitor(lambda: xapi, lambda target: None, str(inventory), poll_timeout=0.2, gather=0.1)
    runner = threading.Thread(target=monitor.run)
    began = time.monotonic()
    runner.start()
    try:
        time.sleep(0.5)
    finally:
        monitor.stop()
        runner.join(10)
    elapsed = time.monotonic() - began  # however long a loaded machine made it
    assert not runner.is_alive()
    # At most one read per gather time (without it: 78,000 in 0.5 s).
    assert 1 <= xapi.calls <= 2 + elapsed / 0.1, "%d event.from calls in %.2f s" % (xapi.calls, elapsed)


def test_while_refreshes_run_the_loop_reads_at_most_every_settle_time(tmp_path):
    # Each write of a refresh comes back as the VM's whole record: parsing those while other VMs'
    # refreshes wait took a fifth of the CPU of 100 VMs changing at once (issue 18).
    inventory = tmp_path / "xensource-inventory"
    inventory.write_text("INSTALLATION_UUID='%s'\n" % HOST_UUID)
    xapi = BusyXapi()
    busy = threading.Event()
    busy.set()
    monitor = HostMonitor(lambda: xapi, lambda target: None, str(inventory), poll_timeout=0.2, gather=0.02,
                          refreshing=busy.is_set, settle=0.25)
    runner = threading.Thread(target=monitor.run)
    began = time.monotonic()
    runner.start()
    try:
        time.sleep(1.0)
        busy_calls, busy_elapsed = xapi.calls, time.monotonic() - began
        busy.clear()
        time.sleep(0.5)
    finally:
        monitor.stop()
        runner.join(10)
    assert not runner.is_alive()
    assert 2 <= busy_calls <= 2 + busy_elapsed / 0.25, "%d event.from calls in %.2f s" % (busy_calls, busy_elapsed)
    assert xapi.calls - busy_calls >= 5  # idle again: every gather time (0.02 s), not every 0.25 s
