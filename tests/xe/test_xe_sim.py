"""End-to-end: the real ``xe`` command (a subprocess) against the xapi simulator."""

import json
import os
import subprocess
import sys
import threading

import pytest

from xscontainer.xapi.session import close_session, open_local_session

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(REPO, "plugins")


def _start_simulator(directory):
    proc = subprocess.Popen(
        [sys.executable, "-m", "xscontainer.sim.cli", "--dir", directory, "--hosts", "2",
         "--plugins", PLUGINS, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    line = []

    def read_first_line():
        line.append(proc.stdout.readline())

    reader = threading.Thread(target=read_first_line)
    reader.start()
    reader.join(60)
    if not line or not line[0].strip():
        proc.kill()
        proc.wait()
        reader.join()
        raise RuntimeError("simulator did not start: %s" % proc.stderr.read())
    return proc, json.loads(line[0])


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("xesim"))
    proc, info = _start_simulator(directory)
    try:
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture(scope="module")
def api(sim):
    session = open_local_session(sim["unix_socket"])
    yield session
    close_session(session)


@pytest.fixture(scope="module")
def vms(api, sim):
    """Two user VMs: 'xe-vm1' running on the first host, 'xe-vm2' halted."""
    vm1 = api.xenapi.VM.create({"name_label": "xe-vm1"})
    vm2 = api.xenapi.VM.create({"name_label": "xe-vm2"})
    host = api.xenapi.host.get_by_uuid(sim["hosts"][0]["uuid"])
    api.xenapi.VM.start_on(vm1, host, False, False)
    return {"vm1": api.xenapi.VM.get_uuid(vm1), "vm2": api.xenapi.VM.get_uuid(vm2),
            "vm1_ref": vm1, "vm2_ref": vm2}


def run_xe(sim, *args, **kwargs):
    env = dict(os.environ)
    env["XSCONTAINER_XAPI_SOCKET"] = kwargs.get("socket", sim["unix_socket"])
    proc = subprocess.Popen([sys.executable, "-m", "xscontainer.sim.xe"] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=env)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def ok(sim, *args):
    code, out, err = run_xe(sim, *args)
    assert (code, err) == (0, ""), (args, out, err)
    return out


def fails(sim, *args):
    code, out, err = run_xe(sim, *args)
    assert code == 1, (args, out, err)
    assert out == ""
    return err


def test_host_list_shows_every_host_like_xe(sim, api):
    out = ok(sim, "host-list")
    expected = ""
    for ref in api.xenapi.host.get_all():
        record = api.xenapi.host.get_record(ref)
        expected_record = (
            "uuid ( RO)                : %s\n"
            "          name-label ( RW): %s\n"
            "    name-description ( RW): %s\n\n\n"
            % (record["uuid"], record["name_label"], record["name_description"]))
        assert expected_record in out
        expected += expected_record
    assert sorted(out.split("\n\n\n")) == sorted(expected.split("\n\n\n"))
    minimal = ok(sim, "host-list", "--minimal")
    assert sorted(minimal.strip().split(",")) == sorted(h["uuid"] for h in sim["hosts"])


def test_pool_list_and_param_get(sim, api):
    pool_uuid = ok(sim, "pool-list", "--minimal").strip()
    assert pool_uuid == sim["pool_uuid"]
    master = ok(sim, "pool-param-get", "uuid=" + pool_uuid, "param-name=master").strip()
    pool = api.xenapi.pool.get_all()[0]
    assert master == api.xenapi.host.get_uuid(api.xenapi.pool.get_master(pool))


def test_vm_list_with_params_and_filters(sim, vms):
    out = ok(sim, "vm-list", "name-label=xe-vm1", "params=power-state,uuid,resident-on")
    assert out == ("uuid ( RO)           : %s\n"
                   "    power-state ( RO): running\n"
                   "    resident-on ( RO): %s\n\n\n" % (vms["vm1"], sim["hosts"][0]["uuid"]))
    running = ok(sim, "vm-list", "power-state=running", "is-control-domain=false", "--minimal")
    assert running.strip().split(",") == [vms["vm1"]]
    halted = ok(sim, "vm-list", "uuid=" + vms["vm2"], "params=resident-on", "--minimal")
    assert halted == "<not in database>\n"
    assert ok(sim, "vm-list", "name-label=no-such-vm") == ""
    assert ok(sim, "vm-list", "name-label=no-such-vm", "--minimal") == "\n"
    dom0s = ok(sim, "vm-list", "is-control-domain=true", "--minimal").strip().split(",")
    assert len(dom0s) == len(sim["hosts"])


def test_other_config_set_get_add_remove_key_by_key(sim, api, vms):
    uuid, ref = vms["vm2"], vms["vm2_ref"]
    api.xenapi.VM.add_to_other_config(ref, "theirs", "keep-me")
    ok(sim, "vm-param-set", "uuid=" + uuid, "other-config:xs-key=v1", "name-label=xe-vm2")
    ok(sim, "vm-param-set", "uuid=" + uuid, "other-config:xs-key=v2")
    assert ok(sim, "vm-param-get", "uuid=" + uuid, "param-name=other-config",
              "param-key=xs-key") == "v2\n"
    whole = ok(sim, "vm-param-get", "uuid=" + uuid, "param-name=other-config")
    assert "xs-key: v2" in whole and "theirs: keep-me" in whole
    ok(sim, "vm-param-add", "uuid=" + uuid, "param-name=other-config", "added=a1")
    config = api.xenapi.VM.get_other_config(ref)
    assert (config["xs-key"], config["added"], config["theirs"]) == ("v2", "a1", "keep-me")
    ok(sim, "vm-param-remove", "uuid=" + uuid, "param-name=other-config", "param-key=added")
    assert "added" not in api.xenapi.VM.get_other_config(ref)
    err = fails(sim, "vm-param-get", "uuid=" + uuid, "param-name=other-config",
                "param-key=nokey")
    assert err == "Error: Key nokey not found in map\n"
    err = fails(sim, "vm-param-remove", "uuid=" + uuid, "param-name=other-config",
                "param-key=nokey")
    assert err == "Error: Key nokey is not in map\n"
    err = fails(sim, "vm-param-add", "uuid=" + uuid, "param-name=other-config", "xs-key=v3")
    assert err.startswith("You tried to add a key-value pair to a map, but that key is "
                          "already there.\n")
    assert "key: xs-key" in err
    ok(sim, "vm-param-set", "uuid=" + uuid, "name-label=renamed")
    assert ok(sim, "vm-param-get", "uuid=" + uuid, "param-name=name-label") == "renamed\n"
    ok(sim, "vm-param-set", "uuid=" + uuid, "name-label=xe-vm2")
    assert fails(sim, "vm-param-set", "uuid=" + uuid, "power-state=running") == \
        "Error: Field 'power-state' is read-only.\n"


def test_pool_other_config_via_param_set(sim, api):
    pool_uuid = sim["pool_uuid"]
    ok(sim, "pool-param-set", "uuid=" + pool_uuid, "other-config:xe-test=1")
    assert ok(sim, "pool-param-get", "uuid=" + pool_uuid, "param-name=other-config",
              "param-key=xe-test") == "1\n"
    ok(sim, "pool-param-remove", "uuid=" + pool_uuid, "param-name=other-config",
       "param-key=xe-test")
    pool = api.xenapi.pool.get_all()[0]
    assert "xe-test" not in api.xenapi.pool.get_other_config(pool)


def test_host_call_plugin_prints_what_the_plugin_returned(sim, api, tmp_path):
    path = tmp_path / "payload"
    path.write_text("first line\nsecond, line\n")
    host_uuid = sim["hosts"][1]["uuid"]
    out = ok(sim, "host-call-plugin", "host-uuid=" + host_uuid, "plugin=echo", "fn=main",
             "args:greeting=hello world", "args:payload:file=" + str(path))
    host = api.xenapi.host.get_by_uuid(host_uuid)
    expected = api.xenapi.host.call_plugin(
        host, "echo", "main", {"greeting": "hello world", "payload": "first line\nsecond, line\n"})
    assert out == expected + "\n"
    assert "hello world" in out and "second, line" in out


def test_errors_look_like_the_real_xe(sim):
    assert fails(sim, "vm-param-get", "uuid=not-a-uuid", "param-name=uuid") == (
        "The uuid you supplied was invalid.\ntype: VM\nuuid: not-a-uuid\n")
    host_uuid = sim["hosts"][0]["uuid"]
    assert fails(sim, "host-call-plugin", "host-uuid=" + host_uuid, "plugin=no-such-plugin",
                 "fn=main") == ("The requested plugin could not be found.\n"
                                "name: no-such-plugin\n")
    assert fails(sim, "frobnicate") == "Unknown command: frobnicate\nFor usage run: 'xe help'\n"
    assert fails(sim, "host-call-plugin", "plugin=echo", "fn=main") == (
        "Required parameter not found: host-uuid\nFor usage run: 'xe help'\n")
    assert fails(sim, "vm-list", "colour=red") == "Error: Unknown field 'colour'\n"


def test_unreachable_socket(sim, tmp_path):
    code, out, err = run_xe(sim, "host-list", socket=str(tmp_path / "nothing"))
    assert code == 1
    assert err == "Unable to contact server. Please check server and port settings.\n"


def test_message_list(sim, api, vms):
    api.xenapi.message.create("XE_TEST_MESSAGE", "3", "VM", vms["vm1"], "body text")
    out = ok(sim, "message-list", "name=XE_TEST_MESSAGE")
    assert "name ( RO): XE_TEST_MESSAGE\n" in out
    assert "obj-uuid ( RO): %s\n" % vms["vm1"] in out
    assert "body ( RO): body text\n" in out


def test_tcp_login_with_password_and_password_file(sim, tmp_path):
    url = sim["xapi_url"]
    hostport = url.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    out = ok(sim, "host-list", "--minimal", "-s", host, "-p", port, "-u", sim["username"],
             "-pw", sim["password"])
    assert sorted(out.strip().split(",")) == sorted(h["uuid"] for h in sim["hosts"])
    pwf = tmp_path / "pwf"
    pwf.write_text("%s\n%s\n" % (sim["username"], sim["password"]))
    out = ok(sim, "pool-list", "--minimal", "-s", host, "-p", port, "-pwf", str(pwf))
    assert out.strip() == sim["pool_uuid"]
    err = fails(sim, "host-list", "-s", host, "-p", port, "-u", sim["username"],
                "-pw", "wrong-password")
    assert err == "Authentication failed\nFor usage run: 'xe help'\n"


def test_vm_start_and_shutdown(sim, api, vms):
    vm = api.xenapi.VM.create({"name_label": "xe-vm3"})
    uuid = api.xenapi.VM.get_uuid(vm)
    ok(sim, "vm-start", "uuid=" + uuid)
    assert ok(sim, "vm-param-get", "uuid=" + uuid, "param-name=power-state") == "running\n"
    err = fails(sim, "vm-start", "vm=xe-vm3")
    assert err.startswith("You attempted an operation on a VM that was not in an appropriate "
                          "power state")
    assert "vm: %s (xe-vm3)\n" % uuid in err
    ok(sim, "vm-shutdown", "vm=xe-vm3")
    assert api.xenapi.VM.get_power_state(vm) == "Halted"
