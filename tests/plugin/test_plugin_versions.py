"""A half-upgraded pool: get_status (and so `xscontainer doctor`) names the hosts that have no
xscontainer, run the original product or another version. Pure rules, then a simulated
three-host pool whose second host lacks the plugin and whose third runs a stand-in of the
original (a plugin without get_version)."""

import json
import os
import subprocess
import sys
import xml.dom.minidom

import pytest

from xscontainer import __version__
from xscontainer.plugin.versions import (MISSING, OFFLINE, ORIGINAL, VERSION, HostVersion, classify,
                                         pool_note)
from xscontainer.sim.process import SimulatorProcess
from xscontainer.xapi.session import close_session

# What the original's XenAPIPlugin.dispatch answers for a function it does not have.
ORIGINAL_PLUGIN = '''#!/usr/bin/env python3
import sys, xmlrpc.client
method = xmlrpc.client.loads(sys.argv[1])[1]
print(xmlrpc.client.dumps(({"Status": "Failure", "ErrorDescription": ["UNKNOWN_XENAPI_PLUGIN_FUNCTION", method]},),
                          methodresponse=True))
'''


def test_classify_results_and_failures():
    assert classify("True11.0.0", None) == (VERSION, "11.0.0")
    assert classify(None, ["XENAPI_MISSING_PLUGIN", "xscontainer"]) == (MISSING, None)
    assert classify(None, ["UNKNOWN_XENAPI_PLUGIN_FUNCTION", "get_version"]) == (ORIGINAL, None)
    assert classify(None, ["HOST_OFFLINE", "OpaqueRef:x"]) == (OFFLINE, None)
    assert classify("Trueweird", None)[0] == "failed"


def test_pool_note_names_every_host_that_differs_and_nothing_when_all_agree():
    same = [HostVersion("h2", "u2", VERSION, "11.0.0")]
    assert pool_note("11.0.0", same) is None
    note = pool_note("11.0.0", [HostVersion("h2", "u2", MISSING), HostVersion("h3", "u3", ORIGINAL),
                                HostVersion("h4", "u4", VERSION, "10.9.1"), HostVersion("h5", "u5", VERSION, "11.0.0")])
    assert "host h2 (u2) has no xscontainer" in note
    assert "host h3 (u3) runs the original xscontainer" in note
    assert "host h4 (u4) runs the older xscontainer 10.9.1" in note
    assert "h5" not in note


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    simulator = SimulatorProcess(str(tmp_path_factory.mktemp("halfpool")), hosts=3)
    simulator.start(30.0)
    yield simulator
    assert simulator.stop() == 0


def test_status_and_doctor_name_the_hosts_not_upgraded(sim):
    session = sim.local_session()
    api = session.xenapi
    hosts = [api.host.get_by_uuid(h["uuid"]) for h in sim.info["hosts"]]
    plugin = os.path.join(sim.info["hosts"][2]["dom0_root"], "etc/xapi.d/plugins/xscontainer")
    saved = os.readlink(plugin)
    vm = api.VM.create({"name_label": "web-vm"})
    try:
        api.sim.remove_plugin(hosts[1], "xscontainer")
        os.unlink(plugin)
        with open(plugin, "w") as handle:
            handle.write(ORIGINAL_PLUGIN)
        os.chmod(plugin, 0o755)
        api.VM.start_on(vm, hosts[0], False, False)
        text = api.host.call_plugin(hosts[0], "xscontainer", "get_status", {"vmuuid": api.VM.get_uuid(vm)})
        status = xml.dom.minidom.parseString(text[len("True"):].encode("utf-8"))
        note = status.getElementsByTagName("pool_note")[0].firstChild.data
        names = [h["name_label"] for h in sim.info["hosts"]]
        assert note.startswith("This host runs xscontainer %s, but " % __version__)
        assert "host %s (%s) has no xscontainer" % (names[1], sim.info["hosts"][1]["uuid"]) in note
        assert "host %s (%s) runs the original xscontainer" % (names[2], sim.info["hosts"][2]["uuid"]) in note
        env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=sim.info["unix_socket"],
                   XSCONTAINER_INVENTORY=sim.info["hosts"][0]["inventory"])
        doctor = subprocess.run([sys.executable, "-m", "xscontainer.cli.main", "doctor", "web-vm", "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        assert json.loads(doctor.stdout)["pool"] == note, doctor.stderr
        api.sim.restore_plugin(hosts[1], "xscontainer")
        os.unlink(plugin)
        os.symlink(saved, plugin)
        text = api.host.call_plugin(hosts[0], "xscontainer", "get_status", {"vmuuid": api.VM.get_uuid(vm)})
        assert "<pool_note>None</pool_note>" in text  # every host runs this version
    finally:
        if not os.path.islink(plugin):
            os.unlink(plugin)
            os.symlink(saved, plugin)
        api.sim.restore_plugin(hosts[1], "xscontainer")
        api.VM.hard_shutdown(vm)
        api.VM.destroy(vm)
        close_session(session)
