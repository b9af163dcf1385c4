"""The xscontainer plugin end to end: host.call_plugin through the simulator, real VMs, a monitor
per host (as systemd runs them), and the xe command an administrator would type."""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import xml.dom.minidom
import xmlrpc.client

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


def docker_ps(pool, vm_uuid, present=True):
    """name -> container from VM.other_config:docker_ps. The writer's remove+add is not atomic:
    when the VM is monitored, wait out an instant of absence instead of reading "no containers"."""
    api = pool.session.xenapi
    ref = api.VM.get_by_uuid(vm_uuid)
    if present:
        value = wait_for(lambda: api.VM.get_other_config(ref).get("docker_ps"), timeout=10,
                         what="docker_ps of %s" % vm_uuid)
    else:
        value = api.VM.get_other_config(ref).get("docker_ps")
    return {c.name: c for c in xencenter_containers(value)}


def status_of(pool, vm_uuid):
    text = pool.call("get_status", {"vmuuid": vm_uuid})
    assert text.startswith("True")
    root = xml.dom.minidom.parseString(text[4:]).documentElement
    return {n.tagName: "".join(t.data for t in n.childNodes if t.nodeType == t.TEXT_NODE)
            for n in root.childNodes if n.nodeType == n.ELEMENT_NODE}


def test_register_monitors_and_deregister_removes(pool):
    vm = pool.vm(0)
    assert pool.call("register", {"vmuuid": vm["uuid"]}) == "TrueNone"
    wait_for(lambda: "web" in docker_ps(pool, vm["uuid"], present=False), what="docker_ps after register")
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
        wait_for(lambda: "web" in docker_ps(pool, vm["uuid"], present=False), what="docker_ps of %s" % vm["name_label"])
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
        control = "/run/xscontainer/monitor-%s.sock" % host["uuid"]
        wait_for(lambda: os.path.exists(control), what="the restarted monitor's control socket")


def test_every_function_through_xe_host_call_plugin(pool, registered, tmp_path):
    vm = registered[0]
    api = pool.session.xenapi
    template = next(r["uuid"] for r in api.VM.get_all_records().values()
                    if r["is_a_template"] and "coreos" in r["name_label"].lower())
    sr = api.SR.get_uuid(api.pool.get_default_SR(api.pool.get_all()[0]))
    halted = api.VM.create({"name_label": "xe-drive-target"})
    config_file = tmp_path / "cloud-config.yaml"

    def xe(fn, *args, host_index=0):
        argv = [pool.info["xe"], "host-call-plugin", "host-uuid=%s" % pool.info["hosts"][host_index]["uuid"],
                "plugin=xscontainer", "fn=" + fn] + list(args)
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)

    vmarg = "args:vmuuid=%s" % vm["uuid"]
    try:
        for fn, args in [("register", [vmarg]), ("get_status", [vmarg]), ("refresh", [vmarg]),
                         ("pause", [vmarg, "args:container=web"]), ("unpause", [vmarg, "args:container=web"]),
                         ("restart", [vmarg, "args:container=web"]), ("stop", [vmarg, "args:container=exited"]),
                         ("get_top", [vmarg, "args:object=web"]), ("get_inspect", [vmarg, "args:object=web"]),
                         ("get_logs", [vmarg, "args:container=web", "args:tail=5"]),
                         ("get_stats", [vmarg, "args:container=web"])]:
            out = xe(fn, *args, host_index=1)  # on the other host: forwarded
            assert out.returncode == 0 and out.stdout.startswith("True"), (fn, out.stdout, out.stderr)
        default = xe("get_config_drive_default", "args:templateuuid=" + template)
        assert default.returncode == 0 and default.stdout.startswith("True#cloud-config")
        config_file.write_text(default.stdout[4:])
        created = xe("create_config_drive", "args:vmuuid=" + api.VM.get_uuid(halted), "args:sruuid=" + sr,
                     "args:configuration:file=%s" % config_file)
        assert created.returncode == 0 and created.stdout.startswith("True"), created.stdout + created.stderr
        shown = xe("get_config_drive_configuration", "args:vdiuuid=" + created.stdout.strip()[4:])
        assert shown.returncode == 0 and shown.stdout[4:].rstrip("\n") == default.stdout[4:].rstrip("\n")
        bad = xe("get_top", vmarg, "args:object=$(reboot)")
        assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stdout + bad.stderr
        assert xe("deregister", vmarg).stdout.startswith("True")
    finally:
        for vbd in api.VM.get_VBDs(halted):
            vdi = api.VBD.get_VDI(vbd)
            api.VBD.destroy(vbd)
            api.VDI.destroy(vdi)
        api.VM.destroy(halted)


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


def _hostile_cases(vm_uuid):
    """(function, arguments) for each non-devmode function: each required argument hostile in turn,
    all of them missing, one unexpected."""
    for fn, spec in sorted(FUNCTIONS.items()):
        if spec.devmode:
            continue
        base = {name: (vm_uuid if name in ("vmuuid",) else "web") for name in spec.required}
        cases = [dict(base, **{name: value}) for name in spec.required for value in HOSTILE]
        if spec.required:
            cases.append({})  # every required key missing
        cases.append(dict(base, unexpected="1"))
        for args in cases:
            yield fn, args


def _hostile_outcome(pool, sessions, opened, fn, args):
    """What xapi answered the call, on this thread's own session (a session is one connection)."""
    session = getattr(sessions, "session", None)
    if session is None:
        session = sessions.session = open_local_session(pool.info["unix_socket"])
        opened.append(session)
    try:
        return "succeeded", session.xenapi.host.call_plugin(pool.hosts[0], PLUGIN, fn, args)
    except XenAPI.Failure as exc:
        return "failed", exc.details
    except (xmlrpc.client.ProtocolError, OSError) as exc:
        sessions.session = None  # xapi closed the connection
        return "refused", exc


def test_hostile_arguments_get_clear_failures_and_touch_nothing(pool, registered):
    vm = registered[0]
    engine_events_before = pool.testbed.docker(vm["name_label"], ["ps", "-a", "--format", "{{.Names}} {{.State}}"]).stdout
    cases = list(_hostile_cases(vm["uuid"]))
    sessions, opened = threading.local(), []
    try:
        # Four calls at once, as several consoles make them: 359 plugin runs one by one took 52 s.
        with concurrent.futures.ThreadPoolExecutor(4) as workers:
            outcomes = list(workers.map(lambda case: _hostile_outcome(pool, sessions, opened, *case), cases))
    finally:
        for session in opened:
            close_session(session)
    for (fn, args), (outcome, details) in zip(cases, outcomes):
        shown = (fn, {k: v[:40] for k, v in args.items()})
        if HUGE in args.values():
            # xapi refuses a request over 300 KiB at the HTTP level (500, connection closed).
            assert outcome == "refused", (shown, outcome)
            continue
        assert outcome == "failed", (shown, outcome, str(details)[:200])
        assert details[0] == "XENAPI_PLUGIN_FAILURE" and details[1] == fn, (fn, details[:3])
        assert details[2] in ("INVALID_ARGUMENT", "ARGUMENT_TOO_LARGE", "VM_NOT_FOUND", "SR_NOT_FOUND",
                              "VDI_NOT_FOUND", "CONTAINER_NOT_FOUND", "TEMPLATE_NOT_FOUND",
                              "INVALID_CONFIGURATION"), (fn, details[:4])
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


def _download_vdi(pool, vdi_uuid, path):
    """GET /export_raw_vdi over plain HTTP, as an administrator's curl would."""
    import http.client
    import urllib.parse
    url = urllib.parse.urlparse(pool.info["xapi_url"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("GET", "/export_raw_vdi?" + urllib.parse.urlencode(
        {"session_id": pool.session.handle, "vdi": vdi_uuid, "format": "raw"}))
    response = conn.getresponse()
    assert response.status == 200
    with open(path, "wb") as handle:
        handle.write(response.read())
    conn.close()


PIN_KEYS = ("xscontainer-sshhostkey", "xscontainer-sshhostkey-vm", "xscontainer-sshhostkey-drive",
            "xscontainer-sshhostkey-fingerprint")


def _public_blob_of(private_text):
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_ssh_private_key(private_text.encode("ascii"), password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode("ascii").split()[1]


def _serve_host_key(pool, vm_name, private_text, public_line):
    """The guest gives its sshd this host key (as cloud-init or coreos-cloudinit would at boot):
    the key file sshd_config names, then sshd restarted (by its pid file)."""
    path = os.path.join(pool.testbed.vm_dir(vm_name), "ssh_host_ed25519_key")
    with open(os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(private_text)
    os.replace(path + ".tmp", path)
    with open(path + ".pub", "w") as handle:
        handle.write(public_line.strip() + "\n")
    pool.testbed.stop_sshd(vm_name)
    pool.testbed.start_sshd(vm_name)


def test_config_drive_through_the_plugin_makes_the_guest_monitored(pool, tmp_path):
    """The drive is checked with independent tools; it carries a host key that dom0 pinned, so a
    guest that applies the drive is monitored with no further step, and until it serves that
    key (the drive not applied, or an impostor at its address) it is refused."""
    import shutil
    from xscontainer.configdrive.iso import read_drive_file
    from xscontainer.configdrive.guestformats import guest_authorized_keys, guest_host_key
    api = pool.session.xenapi
    vm = pool.vm(0)
    ref = api.VM.get_by_uuid(vm["uuid"])
    api.VM.remove_from_other_config(ref, "xscontainer-monitor")
    wait_for(lambda: "docker_ps" not in api.VM.get_other_config(ref), what="monitoring stopped")
    # A new VM: no key is pinned for it (the testbed's pin stands for an administrator's).
    saved_pin = dict((k, v) for k, v in api.VM.get_other_config(ref).items() if k in PIN_KEYS)
    for key in PIN_KEYS:
        api.VM.remove_from_other_config(ref, key)
    key_path = os.path.join(pool.testbed.vm_dir(vm["name_label"]), "ssh_host_ed25519_key")
    saved_host_key = (open(key_path).read(), open(key_path + ".pub").read())
    template = next(r["uuid"] for r in api.VM.get_all_records().values()
                    if r["is_a_template"] and "coreos" in r["name_label"].lower())
    sr = api.SR.get_uuid(api.pool.get_default_SR(api.pool.get_all()[0]))
    configuration = pool.call("get_config_drive_default", {"templateuuid": template})[4:]
    # Make the guest refuse the pool key until it "boots" with the drive.
    original_keys = pool.testbed.pool_keypair().public_line
    pool.testbed.authorize_key(vm["name_label"], "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHmWzGFh0c1jL5D0GB3xq7FQqvQZ2mXz7Gf6YyDB6cbN nobody")
    try:
        vdi_uuid = pool.call("create_config_drive", {"vmuuid": vm["uuid"], "sruuid": sr,
                                                     "configuration": configuration}, host_index=1)[4:]
        assert api.VM.get_other_config(ref)["xscontainer-monitor"] == "True"
        image = str(tmp_path / "drive.img")
        _download_vdi(pool, vdi_uuid, image)
        blkid = subprocess.run(["blkid", "-p", "-o", "export", image], stdout=subprocess.PIPE,
                               universal_newlines=True, check=True).stdout
        assert "LABEL=config-2" in blkid and "TYPE=iso9660" in blkid
        if shutil.which("xorriso"):
            listing = subprocess.run(["xorriso", "-indev", image, "-find", "/", "-type", "f"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     universal_newlines=True).stdout
            assert "/openstack/latest/user_data" in listing and "/openstack/latest/meta_data.json" in listing
        data = open(image, "rb").read()
        user_data = read_drive_file(data, "openstack/latest/user_data").decode()
        meta = json.loads(read_drive_file(data, "openstack/latest/meta_data.json").decode())
        assert meta["uuid"] == vm["uuid"]
        assert vm["name_label"] in user_data
        keys = guest_authorized_keys(user_data)
        assert original_keys.split()[1] in " ".join(keys)
        host_key = guest_host_key(user_data)
        pinned = api.VM.get_other_config(ref)
        assert host_key and pinned["xscontainer-sshhostkey"] == _public_blob_of(host_key)
        assert pinned["xscontainer-sshhostkey-vm"] == vm["uuid"]
        assert pool.call("get_config_drive_configuration", {"vdiuuid": vdi_uuid}, host_index=1)[4:] == configuration
        # The pool key is authorized, but what answers serves another host key than the drive's.
        pool.testbed.authorize_key(vm["name_label"], "\n".join(keys))
        wait_for(lambda: status_of(pool, vm["uuid"]).get("last_error_code") == "SSH_HOSTKEY_MISMATCH",
                 timeout=60, what="a guest without the drive's host key refused")
        assert status_of(pool, vm["uuid"])["state"] != "monitored"
        assert "docker_ps" not in api.VM.get_other_config(ref)
        # The guest boots and applies the drive: its keys and its host key. Nothing else is done.
        _serve_host_key(pool, vm["name_label"], host_key,
                        "ssh-ed25519 %s" % pinned["xscontainer-sshhostkey"])
        wait_for(lambda: "web" in docker_ps(pool, vm["uuid"], present=False), timeout=60, what="the new VM monitored")
        assert status_of(pool, vm["uuid"])["state"] == "monitored"
    finally:
        api.VM.remove_from_other_config(ref, "xscontainer-monitor")
        wait_for(lambda: "docker_ps" not in api.VM.get_other_config(ref), what="monitoring stopped")
        _serve_host_key(pool, vm["name_label"], saved_host_key[0], saved_host_key[1])
        for key in PIN_KEYS:
            api.VM.remove_from_other_config(ref, key)
        for key, value in saved_pin.items():
            api.VM.add_to_other_config(ref, key, value)
        pool.testbed.authorize_key(vm["name_label"], original_keys)
        for vbd in api.VM.get_VBDs(ref):
            record = api.VBD.get_record(vbd)
            if record["other_config"].get("config-drive", "").lower() == "true":
                if record["currently_attached"]:
                    api.VBD.unplug(vbd)
                vdi = record["VDI"]
                api.VBD.destroy(vbd)
                api.VDI.destroy(vdi)


# What a colourful program prints: ANSI escape sequences (ESC is not allowed in XML 1.0, and xapi
# refuses a plugin output holding one) and text beyond ASCII (dom0's Python is in the ASCII locale
# under xapi). The plugin makes the ESC visible as the four characters \x1b.
COLOURFUL = "\x1b[31mrouge caf\u00e9\x1b[0m \u4e2d\u6587 \U0001f600"
COLOURFUL_SEEN = COLOURFUL.replace("\x1b", "\\x1b")


def test_logs_of_ansi_colours_and_non_ascii_text_reach_the_client_with_escapes_visible(pool, registered):
    vm = registered[0]
    pool.testbed.docker(vm["name_label"], ["run", "--name", "colours", "xscontainer/busybox:latest",
                                           "echo", COLOURFUL])
    try:
        logs = pool.call("get_logs", {"vmuuid": vm["uuid"], "container": "colours"})
        forwarded = pool.call("get_logs", {"vmuuid": vm["uuid"], "container": "colours"}, host_index=1)
    finally:
        pool.testbed.docker(vm["name_label"], ["rm", "-f", "colours"])
    assert logs == "True" + COLOURFUL_SEEN + "\n"
    assert forwarded == logs


def cx_text(node):
    return "".join(t.data for t in node.childNodes if t.nodeType == t.TEXT_NODE)


def test_inspect_and_top_of_a_container_with_non_ascii_and_escapes(pool, registered):
    vm = registered[0]
    script = "sleep 1000; : " + COLOURFUL
    pool.testbed.docker(vm["name_label"], ["run", "-d", "--name", "bizarre", "-e", "GREETING=" + COLOURFUL,
                                           "xscontainer/busybox:latest", "sh", "-c", script])
    try:
        inspect = pool.call("get_inspect", {"vmuuid": vm["uuid"], "object": "bizarre"})
        top = pool.call("get_top", {"vmuuid": vm["uuid"], "object": "bizarre"})
    finally:
        pool.testbed.docker(vm["name_label"], ["rm", "-f", "bizarre"])
    doc = xml.dom.minidom.parseString(inspect[4:].encode("utf-8"))
    env = [cx_text(item) for node in doc.getElementsByTagName("Env") for item in node.childNodes
           if item.nodeType == item.ELEMENT_NODE]
    assert "GREETING=" + COLOURFUL_SEEN in env
    assert any(cx_text(n) == script.replace("\x1b", "\\x1b")
               for cmd in doc.getElementsByTagName("Cmd") for n in cmd.childNodes if n.nodeType == n.ELEMENT_NODE)
    commands = [p["CMD"] for p in xencenter_top(top[4:])]
    shown = next(c for c in commands if c.startswith("sh -c sleep 1000; : "))
    # ps itself shows a control character as '?'; whatever else it shows arrives intact.
    assert shown.replace("\\x1b", "?") == ("sh -c " + script).replace("\x1b", "?")


def test_calls_about_an_unregistered_vm_write_no_docker_keys(pool):
    # Nothing removes docker_* from a VM nobody monitors, and XenCenter lists them whatever
    # xscontainer-monitor says (issue 13 item 14): refresh and lifecycle calls must not write them,
    # through the monitor or directly.
    host = pool.info["hosts"][0]
    vm = [v for v in pool.info["vms"] if v["host_uuid"] == host["uuid"]][1]
    api = pool.session.xenapi
    ref = api.VM.get_by_uuid(vm["uuid"])

    def calls_leave_no_keys():
        assert pool.call("refresh", {"vmuuid": vm["uuid"]}) == "True"
        assert pool.call("pause", {"vmuuid": vm["uuid"], "container": "web"}) == "True"
        assert pool.call("unpause", {"vmuuid": vm["uuid"], "container": "web"}) == "True"
        assert not [k for k in api.VM.get_other_config(ref) if k.startswith("docker_")]

    assert "xscontainer-monitor" not in api.VM.get_other_config(ref)
    calls_leave_no_keys()
    api.VM.add_to_other_config(ref, "xscontainer-monitor", "False")
    try:
        calls_leave_no_keys()
        proc = pool.monitors[0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        try:
            calls_leave_no_keys()
        finally:
            env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=pool.info["unix_socket"])
            pool.monitors[0] = subprocess.Popen([sys.executable, "-m", "xscontainer.monitor.cli", "--inventory",
                                                 host["inventory"], "--log-file", "-"], env=env,
                                                stderr=subprocess.DEVNULL)
            control = "/run/xscontainer/monitor-%s.sock" % host["uuid"]
            wait_for(lambda: os.path.exists(control), what="the restarted monitor's control socket")
    finally:
        api.VM.remove_from_other_config(ref, "xscontainer-monitor")
