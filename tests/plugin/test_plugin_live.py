"""The xscontainer plugin end to end: host.call_plugin through the simulator, real VMs, a monitor
per host (as systemd runs them), and the xe command an administrator would type."""

import json
import os
import signal
import subprocess
import sys
import xml.dom.minidom

import pytest
import XenAPI

from waiting import wait_for
from consumer_xml import xencenter_containers, xencenter_top
from xscontainer.plugin.functions import DEVMODE_FLAG, DEVMODE_REFUSAL, FUNCTIONS
from xscontainer.xapi.session import close_session, open_local_session

PLUGIN = "xscontainer"


class Pool:
    def __init__(self, testbed, logdir):
        self.testbed = testbed
        self.info = testbed.info()
        self.session = open_local_session(self.info["unix_socket"])
        api = self.session.xenapi
        self.hosts = [api.host.get_by_uuid(h["uuid"]) for h in self.info["hosts"]]
        self.monitors = []
        env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=self.info["unix_socket"])
        for host in self.info["hosts"]:
            log = os.path.join(logdir, "monitor-%s.log" % host["name_label"])
            self.monitors.append(subprocess.Popen(
                [sys.executable, "-m", "xscontainer.monitor.cli", "--inventory", host["inventory"],
                 "--log-file", log], env=env))

    def vm(self, host_index):
        host_uuid = self.info["hosts"][host_index]["uuid"]
        return next(v for v in self.info["vms"] if v["host_uuid"] == host_uuid)

    def call(self, fn, args, host_index=0):
        return self.session.xenapi.host.call_plugin(self.hosts[host_index], PLUGIN, fn, args)

    def failure(self, fn, args, host_index=0):
        try:
            result = self.call(fn, args, host_index)
        except XenAPI.Failure as exc:
            return exc.details
        raise AssertionError("%s(%r) succeeded: %r" % (fn, {k: v[:40] for k, v in args.items()}, result[:200]))

    def stop(self):
        for proc in self.monitors:
            proc.send_signal(signal.SIGTERM)
        for proc in self.monitors:
            assert proc.wait(30) == 0
        close_session(self.session)


@pytest.fixture(scope="module")
def pool(testbed, tmp_path_factory):
    pool = Pool(testbed, str(tmp_path_factory.mktemp("monitors")))
    try:
        yield pool
    finally:
        for record in pool.info["vms"]:
            pool.session.xenapi.VM.remove_from_other_config(
                pool.session.xenapi.VM.get_by_uuid(record["uuid"]), "xscontainer-monitor")
        pool.stop()


def docker_ps(pool, vm_uuid):
    api = pool.session.xenapi
    return {c.name: c for c in xencenter_containers(
        api.VM.get_other_config(api.VM.get_by_uuid(vm_uuid)).get("docker_ps"))}


def status_of(pool, vm_uuid):
    text = pool.call("get_status", {"vmuuid": vm_uuid})
    assert text.startswith("True")
    root = xml.dom.minidom.parseString(text[4:]).documentElement
    return {n.tagName: "".join(t.data for t in n.childNodes if t.nodeType == t.TEXT_NODE)
            for n in root.childNodes if n.nodeType == n.ELEMENT_NODE}


def test_register_monitors_and_deregister_removes(pool):
    vm = pool.vm(0)
    assert pool.call("register", {"vmuuid": vm["uuid"]}) == "TrueNone"
    wait_for(lambda: "web" in docker_ps(pool, vm["uuid"]), what="docker_ps after register")
    status = status_of(pool, vm["uuid"])
    assert status["state"] == "monitored" and status["host"] == pool.info["hosts"][0]["uuid"]
    assert pool.call("deregister", {"vmuuid": vm["uuid"]}) == "TrueNone"
    api = pool.session.xenapi
    ref = api.VM.get_by_uuid(vm["uuid"])
    assert api.VM.get_other_config(ref)["xscontainer-monitor"] == "False"
    wait_for(lambda: "docker_ps" not in api.VM.get_other_config(ref), what="keys removed")


@pytest.fixture
def registered(pool):
    vms = [pool.vm(0), pool.vm(1)]
    for vm in vms:
        pool.call("register", {"vmuuid": vm["uuid"]})
    for vm in vms:
        wait_for(lambda: "web" in docker_ps(pool, vm["uuid"]), what="docker_ps of %s" % vm["name_label"])
    return vms


def test_lifecycle_calls_with_xencenter_arguments_forwarded_from_the_coordinator(pool, registered):
    vm = registered[1]  # resident on host 2; XenCenter calls the coordinator, host 1
    container = docker_ps(pool, vm["uuid"])["web"].container  # the 10-char value XenCenter sends
    assert len(container) == 10
    assert pool.call("pause", {"vmuuid": vm["uuid"], "container": container}, host_index=0) == "True"
    # The plugin refreshes docker_ps itself: no event needs to arrive first.
    assert docker_ps(pool, vm["uuid"])["web"].status == "Up (Paused)"
    assert pool.call("unpause", {"vmuuid": vm["uuid"], "container": container}) == "True"
    assert docker_ps(pool, vm["uuid"])["web"].status == "Up"
    assert pool.call("stop", {"vmuuid": vm["uuid"], "container": "web"}) == "True"
    wait_for(lambda: docker_ps(pool, vm["uuid"])["web"].power_state == "Halted", what="web stopped")
    assert pool.call("start", {"vmuuid": vm["uuid"], "container": "web"}) == "True"
    assert pool.call("restart", {"vmuuid": vm["uuid"], "container": "web"}) == "True"
    wait_for(lambda: docker_ps(pool, vm["uuid"])["web"].status == "Up", what="web running")
    status = status_of(pool, vm["uuid"])
    assert status["host"] == pool.info["hosts"][1]["uuid"], "the call must run on the VM's host"


def test_top_inspect_logs_stats_refresh(pool, registered):
    vm = registered[0]
    top = pool.call("get_top", {"vmuuid": vm["uuid"], "object": "burner"})
    processes = xencenter_top(top[4:])
    assert processes and all(p["PID"] and p["TIME"] for p in processes)
    assert any("while" in p["CMD"] for p in processes)
    full_id = docker_ps(pool, vm["uuid"])["web"].id
    inspect = pool.call("get_inspect", {"vmuuid": vm["uuid"], "object": full_id})
    doc = xml.dom.minidom.parseString(inspect[4:])
    assert doc.documentElement.tagName == "docker_inspect"
    ids = [n for n in doc.documentElement.childNodes if n.nodeType == n.ELEMENT_NODE and n.tagName == "Id"]
    assert ids[0].firstChild.data == full_id
    pool.testbed.docker(vm["name_label"], ["run", "--name", "talker", "xscontainer/busybox:latest", "sh", "-c",
                                           "for i in 1 2 3; do echo out-$i; echo err-$i >&2; done"])
    try:
        logs = pool.call("get_logs", {"vmuuid": vm["uuid"], "container": "talker", "tail": "100"})
        short = pool.call("get_logs", {"vmuuid": vm["uuid"], "container": "talker", "tail": "1"})
    finally:
        pool.testbed.docker(vm["name_label"], ["rm", "-f", "talker"])
    assert logs.startswith("True")
    assert all("%s-%d" % (s, i) in logs for s in ("out", "err") for i in (1, 2, 3))  # both streams
    assert short.startswith("True") and "out-1" not in short and len(short) < len(logs)
    stats = pool.call("get_stats", {"vmuuid": vm["uuid"], "container": "burner"})
    stats_doc = xml.dom.minidom.parseString(stats[4:])
    names = [n.firstChild.data for n in stats_doc.getElementsByTagName("name")]
    assert names == ["burner"]
    assert stats_doc.getElementsByTagName("cpu_percent")
    every = xml.dom.minidom.parseString(pool.call("get_stats", {"vmuuid": vm["uuid"]})[4:])
    assert sorted(n.firstChild.data for n in every.getElementsByTagName("name")) == ["burner", "sleeper", "web"]
    assert pool.call("refresh", {"vmuuid": vm["uuid"]}) == "True"


def test_direct_path_when_no_monitor_runs(pool, registered):
    vm = registered[1]
    proc = pool.monitors[1]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, "SIGTERM must stop the monitor cleanly"
    try:
        top = pool.call("get_top", {"vmuuid": vm["uuid"], "object": "web"}, host_index=1)
        assert xencenter_top(top[4:])
        status = status_of(pool, vm["uuid"])
        assert status["state"] == "monitor not running"
        assert status["diagnosis"].endswith("(OK)")
        assert pool.call("pause", {"vmuuid": vm["uuid"], "container": "web"}) == "True"
        assert docker_ps(pool, vm["uuid"])["web"].status == "Up (Paused)"
        assert pool.call("unpause", {"vmuuid": vm["uuid"], "container": "web"}) == "True"
    finally:
        env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=pool.info["unix_socket"])
        host = pool.info["hosts"][1]
        pool.monitors[1] = subprocess.Popen([sys.executable, "-m", "xscontainer.monitor.cli", "--inventory",
                                             host["inventory"], "--log-file", "-"], env=env,
                                            stderr=subprocess.DEVNULL)


def test_xe_host_call_plugin(pool, registered):
    vm = registered[0]
    xe = pool.info["xe"]
    out = subprocess.run([xe, "host-call-plugin", "host-uuid=%s" % pool.info["hosts"][1]["uuid"],
                          "plugin=xscontainer", "fn=get_top", "args:vmuuid=%s" % vm["uuid"], "args:object=web"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=True)
    assert out.stdout.startswith("True<?xml")
    assert xencenter_top(out.stdout.strip()[4:])
    bad = subprocess.run([xe, "host-call-plugin", "host-uuid=%s" % pool.info["hosts"][0]["uuid"],
                          "plugin=xscontainer", "fn=get_top", "args:vmuuid=%s" % vm["uuid"],
                          "args:object=$(reboot)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stdout + bad.stderr


def test_dev_mode_gate(pool, registered):
    vm = registered[0]
    args = {"vmuuid": vm["uuid"], "command": "/containers/json"}
    assert not os.path.exists(DEVMODE_FLAG)
    assert pool.call("passthrough", args) == DEVMODE_REFUSAL
    assert pool.call("install_vm", {"url": "http://x", "sruuid": vm["uuid"]}) == DEVMODE_REFUSAL
    os.makedirs(os.path.dirname(DEVMODE_FLAG), exist_ok=True)
    open(DEVMODE_FLAG, "w").close()
    try:
        result = pool.call("passthrough", args)
        assert result.startswith("True")
        assert {c["Names"][0] for c in json.loads(result[4:])} >= {"/web", "/burner"}
        assert pool.failure("install_vm", {"url": "http://x", "sruuid": vm["uuid"]})[2] == "UNSUPPORTED"
    finally:
        os.unlink(DEVMODE_FLAG)


HUGE = "a" * (10 * 1024 * 1024)
HOSTILE = ["; reboot", "$(touch /tmp/pwned)", "`id`", "../../../etc/passwd", HUGE, "b" * (100 * 1024),
           "web\n", "0" * 65, "", "web\t", "OpaqueRef:NULL", "00000000-0000-0000-0000-000000000000"]


def test_hostile_arguments_get_clear_failures_and_touch_nothing(pool, registered):
    vm = registered[0]
    engine_events_before = pool.testbed.docker(vm["name_label"], ["ps", "-a", "--format", "{{.Names}} {{.State}}"]).stdout
    for fn, spec in sorted(FUNCTIONS.items()):
        if spec.devmode:
            continue
        base = {name: (vm["uuid"] if name in ("vmuuid",) else "web") for name in spec.required}
        cases = [dict(base, **{name: value}) for name in spec.required for value in HOSTILE]
        cases.append({})  # every required key missing
        cases.append(dict(base, unexpected="1"))
        for args in cases:
            details = pool.failure(fn, args)
            if HUGE in args.values():
                # Linux caps one argv element at 128 KiB: xapi itself cannot start the plugin.
                assert details[0] in ("INTERNAL_ERROR", "XENAPI_PLUGIN_FAILURE"), details[:2]
                continue
            assert details[0] == "XENAPI_PLUGIN_FAILURE" and details[1] == fn, (fn, details[:3])
            assert details[2] in ("INVALID_ARGUMENT", "VM_NOT_FOUND", "SR_NOT_FOUND", "VDI_NOT_FOUND",
                                  "CONTAINER_NOT_FOUND", "TEMPLATE_NOT_FOUND", "INVALID_CONFIGURATION"), \
                (fn, details[:4])
            assert details[3] and "Traceback" not in details[3]
    assert not os.path.exists("/tmp/pwned")
    after = pool.testbed.docker(vm["name_label"], ["ps", "-a", "--format", "{{.Names}} {{.State}}"]).stdout
    assert after == engine_events_before
    # The monitor still works.
    pool.testbed.docker(vm["name_label"], ["pause", "web"])
    try:
        wait_for(lambda: docker_ps(pool, vm["uuid"])["web"].status == "Up (Paused)", what="monitor alive")
    finally:
        pool.testbed.docker(vm["name_label"], ["unpause", "web"])
