"""The simulator's xcp-rrdd: registration, readings checked as rrdd checks them (skips after a
failure), and the VM data-source calls of xapi that show the result."""

import math
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree

import pytest
import XenAPI

from xscontainer.metrics.protocol import HEADER_SIZE, DataSource, encode_payload
from xscontainer.metrics.rrddclient import RrddClient, RrddError
from xscontainer.metrics.shmfile import PluginFile
from xscontainer.sim.rrdd import HostRrdd
from xscontainer.sim.rrddserver import RrddHub

VM = "0b1d2c3e-0000-4000-8000-000000000001"
OTHER_VM = "0b1d2c3e-0000-4000-8000-000000000002"


def cpu(value, vm=VM, name="container_web_cpu", default=True):
    return DataSource(name, value, "float", "gauge", "vm " + vm, "%", "CPU", 0.0, default=default)


def rx(value):
    return DataSource("container_web_net_rx", value, "int64", "derive", "vm " + VM, "B/s", "", 0.0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def rrdd(tmp_path):
    host = HostRrdd("h1", str(tmp_path), lambda: {VM: 1 << 30}, Clock())
    yield host
    host.close()


def publish(rrdd, uid, timestamp, sources):
    with open(rrdd.get_path(uid), "wb") as handle:  # in place: same inode, as a plugin writes
        handle.write(encode_payload(timestamp, sources).ljust(4096, b"\0"))


def values(rrdd, vm=VM):
    """Our sources' values (NaN as None), without rrdd's own "memory"."""
    result = {}
    for name in (d["name_label"] for d in rrdd.vm_data_sources(vm) if d["name_label"] != "memory"):
        value = rrdd.query_vm_ds(vm, name)
        result[name] = None if math.isnan(value) else value
    return result


def test_register_needs_the_file(rrdd):
    with pytest.raises(Exception) as info:
        rrdd.register("p", "Five_Seconds", "V2")
    assert info.value.details[0] == "Rrdd_internal_error"
    assert rrdd.next_reading("p") == -1.0


def test_readings_reach_the_vm_and_other_owners_do_not(rrdd):
    publish(rrdd, "p", 10.0, [cpu(12.5), cpu(3.0, vm=OTHER_VM, name="container_db_cpu")])
    assert 0 < rrdd.register("p", "Five_Seconds", "V2") <= 5.0
    rrdd.read_all()
    assert values(rrdd) == {"container_web_cpu": 12.5}
    assert rrdd.vm_data_sources(OTHER_VM) == []  # not running on this host
    listed = rrdd.vm_data_sources(VM)[0]
    assert (listed["enabled"], listed["standard"], listed["units"], listed["value"]) == (True, True, "%", 0.0)


def test_a_bad_checksum_skips_readings_then_recovers(rrdd):
    publish(rrdd, "p", 10.0, [cpu(12.5)])
    rrdd.register("p", "Five_Seconds", "V2")
    rrdd.read_all()
    path = rrdd.get_path("p")
    with open(path, "r+b") as handle:  # a value changed without its CRC
        handle.seek(31)
        handle.write(b"\x7f")
    rrdd.read_all()
    assert rrdd.plugin_skip("p") == 2
    assert values(rrdd) == {"container_web_cpu": None}  # this reading lacks it
    publish(rrdd, "p", 20.0, [cpu(40.0)])
    rrdd.read_all()  # skipped
    assert values(rrdd) == {"container_web_cpu": None}
    rrdd.read_all()
    assert values(rrdd) == {"container_web_cpu": 40.0}
    assert rrdd.plugin_skip("p") == 0


def test_no_news_counts_as_a_failure(rrdd):
    publish(rrdd, "p", 10.0, [cpu(12.5)])
    rrdd.register("p", "Five_Seconds", "V2")
    rrdd.read_all()
    rrdd.read_all()
    assert rrdd.plugin_skip("p") == 2


def test_a_renamed_file_is_not_seen_until_registered_again(rrdd):
    publish(rrdd, "p", 10.0, [cpu(12.5)])
    rrdd.register("p", "Five_Seconds", "V2")
    rrdd.read_all()
    path = rrdd.get_path("p")
    with open(path + ".tmp", "wb") as handle:
        handle.write(encode_payload(20.0, [cpu(99.0)]))
    os.rename(path + ".tmp", path)
    rrdd.read_all()  # the old inode: no news
    assert values(rrdd) == {"container_web_cpu": None}
    rrdd.register("p", "Five_Seconds", "V2")  # known uid: nothing changes
    rrdd.read_all()
    assert values(rrdd) == {"container_web_cpu": None}
    rrdd.deregister("p")
    rrdd.register("p", "Five_Seconds", "V2")
    rrdd.read_all()
    assert values(rrdd) == {"container_web_cpu": 99.0}


def test_derive_rates_missing_sources_and_non_default_ones(rrdd):
    publish(rrdd, "p", 10.0, [rx(1000), cpu(1.0, name="container_x_cpu", default=False)])
    rrdd.register("p", "Five_Seconds", "V2")
    rrdd.read_all()
    assert math.isnan(rrdd.query_vm_ds(VM, "container_web_net_rx"))  # one reading: no rate yet
    with pytest.raises(Exception):
        rrdd.query_vm_ds(VM, "container_x_cpu")  # listed, not recorded
    publish(rrdd, "p", 15.0, [rx(6000), cpu(1.0, name="container_x_cpu", default=False)])
    rrdd.read_all()
    assert rrdd.query_vm_ds(VM, "container_web_net_rx") == 1000.0
    rrdd.add_vm_ds(VM, "container_x_cpu")
    assert rrdd.query_vm_ds(VM, "container_x_cpu") == 1.0
    publish(rrdd, "p", 20.0, [])
    rrdd.read_all()
    assert math.isnan(rrdd.query_vm_ds(VM, "container_web_net_rx"))  # gone: unknown, still listed
    assert {d["name_label"] for d in rrdd.vm_data_sources(VM)} == {"container_web_net_rx", "container_x_cpu", "memory"}


def test_updates_keep_the_recorded_sources_newest_first(tmp_path):
    wall = Clock()
    rrdd = HostRrdd("h1", str(tmp_path), lambda: {VM: 1 << 30}, Clock(), wallclock=wall)
    try:
        publish(rrdd, "p", 10.0, [cpu(1.0), cpu(2.0, name="container_x_cpu", default=False)])
        rrdd.register("p", "Five_Seconds", "V2")
        rrdd.read_all()
        wall.now += 5
        publish(rrdd, "p", 15.0, [cpu(3.0)])
        rrdd.read_all()
        legend, rows = rrdd.updates(0, None)
        assert legend == ["AVERAGE:vm:%s:container_web_cpu" % VM, "AVERAGE:vm:%s:memory" % VM]
        assert rows == [(1005, [3.0, 1 << 30]), (1000, [1.0, 1 << 30])]
        assert rrdd.updates(1001, None)[1] == [(1005, [3.0, 1 << 30])]
        assert rrdd.updates(0, {OTHER_VM}) == ([], [(1005, []), (1000, [])])
    finally:
        rrdd.close()


def test_the_plugin_interface_over_its_socket(tmp_path):
    hub = RrddHub(api=None)
    hub.hosts["h1"] = HostRrdd("h1", str(tmp_path / "metrics"), lambda: {VM: 1 << 30})
    os.makedirs(str(tmp_path / "metrics"))
    hub.listen("h1", str(tmp_path / "rrdd.sock"))
    hub.start()
    try:
        client = RrddClient(str(tmp_path / "rrdd.sock"))
        path = client.get_path("xscontainer")
        assert path == str(tmp_path / "metrics" / "xscontainer")
        with pytest.raises(RrddError):
            client.register("xscontainer")  # no file yet
        with open(path, "wb") as handle:
            handle.write(encode_payload(1.0, [cpu(5.0)]))
        assert 0 < client.register("xscontainer") <= 5.0
        assert 0 < client.next_reading("xscontainer") <= 5.0
        with pytest.raises(RrddError) as info:
            client.register("xscontainer", protocol="V3")
        assert info.value.description == ["Invalid_protocol", "V3"]
        client.deregister("xscontainer")
        assert client.next_reading("xscontainer") == -1.0
    finally:
        hub.stop()


def xe(sim, *argv):
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=sim.info["unix_socket"])
    return subprocess.run([sys.executable, "-m", "xscontainer.sim.xe"] + list(argv), env=env,
                          stdout=subprocess.PIPE, check=True).stdout.decode("utf-8")


def rrd_updates(sim, query):
    with urllib.request.urlopen(sim.url + "rrd_updates?" + query) as response:
        return ElementTree.fromstring(response.read())


def rrd_updates_status(sim, query):
    try:
        urllib.request.urlopen(sim.url + "rrd_updates?" + query).close()
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


class Publisher:
    """A plugin that writes a fresh reading every second through the reporter's own file
    writer, as a real plugin does: a reading the same as the last is no news to rrdd, and the
    source becomes unknown (NaN) until the next (the checks below took longer than rrdd's 5 s
    on a loaded machine)."""

    def __init__(self, path, sources):
        self._file = PluginFile(path)
        self._sources = sources
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._run, name="test-plugin", daemon=True)
        self._thread.start()

    def _write(self):
        self._file.write(encode_payload(time.time(), self._sources()), HEADER_SIZE)

    def _run(self):
        while not self._stop.wait(1.0):
            self._write()

    def stop(self):
        self._stop.set()
        self._thread.join()


def test_vm_data_sources_through_xapi(sim, session):
    api = session.xenapi
    host = api.host.get_by_uuid(sim.info["hosts"][0]["uuid"])
    vm = api.VM.create({"name_label": "metrics-vm"})
    vm_uuid = api.VM.get_uuid(vm)
    assert api.VM.get_data_sources(vm) == []  # halted: no RRD on any host
    with pytest.raises(XenAPI.Failure) as info:
        api.VM.query_data_source(vm, "container_web_cpu")
    assert info.value.details == ["VM_BAD_POWER_STATE", vm, "running;paused", "halted"]
    api.VM.start_on(vm, host, False, False)
    client = RrddClient(sim.info["hosts"][0]["rrdd_socket"])
    path = client.get_path("test")
    plugin = Publisher(path, lambda: [cpu(33.0, vm=vm_uuid)])
    try:
        client.register("test")
        deadline = time.monotonic() + 15
        while len(api.VM.get_data_sources(vm)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        listed = api.VM.get_data_sources(vm)
        assert [(d["name_label"], d["enabled"], d["units"], d["value"]) for d in listed] == [
            ("container_web_cpu", True, "%", 0.0), ("memory", True, "B", 0.0)]
        assert api.VM.query_data_source(vm, "container_web_cpu") == 33.0
        with pytest.raises(XenAPI.Failure) as info:
            api.VM.query_data_source(vm, "nothing")
        assert info.value.details[0] == "INTERNAL_ERROR"
        updates = rrd_updates(sim, "session_id=%s&start=0&cf=AVERAGE&interval=5" % session._session)
        legend = [e.text for e in updates.iter("entry")]
        column = legend.index("AVERAGE:vm:%s:container_web_cpu" % vm_uuid)
        rows = list(updates.iter("row"))
        assert int(updates.find("meta/rows").text) == len(rows) >= 1
        assert rows[0].findall("v")[column].text == "33"
        assert "AVERAGE:vm:%s:memory" % vm_uuid in legend
        assert rrd_updates_status(sim, "start=0") == 401
        assert rrd_updates_status(sim, "session_id=%s" % session._session) == 400
        listed = xe(sim, "vm-data-source-list", "uuid=" + vm_uuid)
        pairs = [tuple(part.strip() for part in line.split(":", 1)) for line in listed.splitlines() if ":" in line]
        assert pairs[:7] == [("name_label", "container_web_cpu"), ("name_description", "CPU"), ("enabled", "true"),
                             ("standard", "true"), ("min", "0."), ("max", "inf"), ("units", "%")]
        assert xe(sim, "vm-data-source-query", "uuid=" + vm_uuid, "data-source=container_web_cpu") == "33.000000\n"
    finally:
        plugin.stop()
        client.deregister("test")
        api.VM.hard_shutdown(vm)
