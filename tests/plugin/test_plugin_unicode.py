"""The xscontainer plugin as xapi runs it (only PATH in its environment, so Python 3.6 is in the
ASCII C locale: the run on 3.6 is the proof), through host.call_plugin of the simulator; no VM
engine needed. The testbed tests (test_plugin_live.py) cover the container functions."""

import os

import pytest
import XenAPI

from xscontainer.sim.process import SimulatorProcess
from xscontainer.xapi.session import close_session

NON_ASCII = "caf\u00e9 \u00e9t\u00e9 \u20ac \u4e2d\u6587 \U0001f600"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    simulator = SimulatorProcess(str(tmp_path_factory.mktemp("psim")), hosts=2)
    simulator.start(30.0)
    yield simulator
    assert simulator.stop() == 0


@pytest.fixture(scope="module")
def session(sim):
    session = sim.url_session()
    yield session
    close_session(session)


def call(sim, session, fn, args, host_index=0):
    host = session.xenapi.host.get_by_uuid(sim.info["hosts"][host_index]["uuid"])
    return session.xenapi.host.call_plugin(host, "xscontainer", fn, args)


def running_vm(sim, session, name, host_index):
    """A VM resident on the given host (a halted one is refused before its arguments are read)."""
    api = session.xenapi
    vm = api.VM.create({"name_label": name})
    api.VM.start_on(vm, api.host.get_by_uuid(sim.info["hosts"][host_index]["uuid"]), False, False)
    return api.VM.get_uuid(vm)


def plugin_log(sim, host_index):
    path = os.path.join(sim.info["hosts"][host_index]["dom0_root"], "var/log/xscontainer.log")
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8")  # strict: the log is UTF-8


def test_config_drive_with_non_ascii_text_is_made_and_read_back(sim, session):
    api = session.xenapi
    sr = api.SR.get_uuid(api.pool.get_default_SR(api.pool.get_all()[0]))
    vm = api.VM.create({"name_label": "drive " + NON_ASCII})
    vm_uuid = api.VM.get_uuid(vm)
    default = call(sim, session, "get_config_drive_default", {"templateuuid": vm_uuid})
    assert default.startswith("True#cloud-config")
    configuration = default[4:].rstrip("\n") + "\n# " + NON_ASCII + "\n# caf\u00e9\n"
    try:
        # Made through the second host, read back through the first.
        created = call(sim, session, "create_config_drive",
                       {"vmuuid": vm_uuid, "sruuid": sr, "configuration": configuration}, 1)
        assert created.startswith("True")
        vdi = created[4:]
        shown = call(sim, session, "get_config_drive_configuration", {"vdiuuid": vdi})
        assert shown == "True" + configuration
    finally:
        for vbd in api.VM.get_VBDs(vm):
            vdi_ref = api.VBD.get_VDI(vbd)
            api.VBD.destroy(vbd)
            api.VDI.destroy(vdi_ref)
        api.VM.destroy(vm)


def test_non_ascii_in_a_failure_comes_back_intact(sim, session):
    vm_uuid = running_vm(sim, session, "x", 0)
    with pytest.raises(XenAPI.Failure) as err:
        call(sim, session, "get_logs", {"vmuuid": vm_uuid, "container": "caf\u00e9"})
    assert err.value.details[:3] == ["XENAPI_PLUGIN_FAILURE", "get_logs", "INVALID_ARGUMENT"]
    assert "caf\u00e9" in err.value.details[3]


def test_the_plugin_logs_utf8_to_var_log_of_its_dom0(sim, session):
    vm_uuid = running_vm(sim, session, "y", 1)
    with pytest.raises(XenAPI.Failure):
        call(sim, session, "get_top", {"vmuuid": vm_uuid, "object": "\u00e9t\u00e9"}, 1)
    text = plugin_log(sim, 1)
    line = next(line for line in text.splitlines() if "get_top" in line)
    assert "INVALID_ARGUMENT" in line and "\u00e9t\u00e9" in line and vm_uuid in line
