"""Every verb of the CLI, run as a subprocess against the shared testbed (simulated xapi, real sshd
and dockerd), in table and JSON form, with the error paths: unknown VM, ambiguous prefix, and an
unreachable VM with its diagnosis. Leaves the testbed's VMs as it found them."""

import json
import os
import subprocess
import sys

import pytest

from xscontainer.xapi.maps import remove_map_key, set_map_key
from xscontainer.xapi.session import close_session

KEYS = ("xscontainer-monitor", "docker_ps", "docker_info", "docker_version")


class Cli:
    def __init__(self, env, info):
        self.env = env
        self.info = info

    def run(self, *argv, columns=None, stdin=None):
        env = dict(self.env)
        if columns is not None:
            env["COLUMNS"] = str(columns)
        return subprocess.run([sys.executable, "-m", "xscontainer.cli.main"] + list(argv), env=env,
                              input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=120)

    def ok(self, *argv, **kwargs):
        result = self.run(*argv, **kwargs)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        return result.stdout

    def json(self, *argv):
        return json.loads(self.ok(*(argv + ("--json",))))


@pytest.fixture(scope="module")
def cli(testbed):
    info = testbed.info()
    vm1 = info["vms"][0]
    inventory = [h["inventory"] for h in info["hosts"] if h["uuid"] == vm1["host_uuid"]][0]
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=info["unix_socket"], XSCONTAINER_INVENTORY=inventory)
    env.pop("COLUMNS", None)
    session = testbed.xapi_session()
    try:
        api = session.xenapi
        before = {}
        for vm in info["vms"]:
            ref = api.VM.get_by_uuid(vm["uuid"])
            config = api.VM.get_other_config(ref)
            before[ref] = {key: config.get(key) for key in KEYS}
        runner = Cli(env, info)
        for vm in info["vms"]:
            runner.ok("register", vm["uuid"])
        runner.ok("ps", "--all-hosts", "--refresh")
        yield runner
    finally:
        try:
            for ref, values in before.items():
                for key, value in values.items():
                    if value is None:
                        remove_map_key(api.VM, ref, key)
                    else:
                        set_map_key(api.VM, ref, key, value)
        finally:
            close_session(session)


def names_of(info):
    return [vm["name_label"] for vm in info["vms"]]


# -- ps ----------------------------------------------------------------------------------------------------

def test_ps_table_shows_every_container_of_the_pool(cli):
    lines = cli.ok("ps", "--all-hosts").splitlines()
    assert lines[0].split() == ["VM", "CONTAINER", "NAME", "IMAGE", "STATUS", "UPTIME", "PORTS"]
    for vm in cli.info["vms"]:
        rows = {line.split()[2]: line for line in lines[1:] if line.split()[0] == vm["name_label"]}
        assert set(rows) == {"web", "burner", "sleeper", "exited"}
        assert rows["web"].split()[4] == "Up"
        assert rows["web"].endswith("%s:8080->80/tcp" % vm["ip"])
        assert "Up (Paused)" in rows["sleeper"] and "Exited (3)" in rows["exited"]
        assert rows["exited"].split()[-1] == "-"  # no uptime


def test_ps_json_and_default_scope_is_this_host(cli):
    data = cli.json("ps", "--all-hosts")
    assert sorted(v["name_label"] for v in data["vms"]) == sorted(names_of(cli.info))
    vm = data["vms"][0]
    web = [c for c in vm["containers"] if c["name"] == "web"][0]
    assert web["state"] == "running" and web["container"] == web["id"][:10]
    assert isinstance(web["uptime_seconds"], int) and web["started_at"].endswith("Z")
    assert web["ports"][0]["public_port"] == 8080 and web["ports"][0]["private_port"] == 80
    here = cli.info["vms"][0]["host_uuid"]
    local = cli.json("ps")
    assert sorted(v["uuid"] for v in local["vms"]) == sorted(v["uuid"] for v in cli.info["vms"] if v["host_uuid"] == here)
    assert all(v["host"]["uuid"] == here for v in local["vms"])


def test_ps_one_vm_by_prefix_and_narrow_terminal(cli):
    vm = cli.info["vms"][1]
    lines = cli.ok("ps", "--vm", vm["uuid"][:8], columns=70).splitlines()
    assert len(lines) == 5 and all(line.split()[0] == vm["name_label"] for line in lines[1:])
    assert all(len(line) <= 70 for line in lines)
    assert any("..." in line for line in lines)


def test_unknown_vm(cli):
    result = cli.run("ps", "--vm", "no-such-vm")
    assert result.returncode == 3
    assert result.stderr.strip() == "xscontainer: No VM is named 'no-such-vm' (by uuid, name or prefix). [VM_NOT_FOUND]"
    result = cli.run("top", "no-such-vm", "web", "--json")
    assert result.returncode == 3
    assert json.loads(result.stderr)["error"]["code"] == "VM_NOT_FOUND"


def test_ambiguous_prefix_lists_the_candidates(cli):
    result = cli.run("top", "vm", "web")  # the testbed's VMs are vm1, vm2, vm3
    assert result.returncode == 3 and "[VM_AMBIGUOUS]" in result.stderr
    for vm in cli.info["vms"]:
        assert "%s (%s)" % (vm["name_label"], vm["uuid"]) in result.stderr
    result = cli.run("pause", cli.info["vms"][0]["name_label"], "nosuch", "--json")
    assert result.returncode == 3 and json.loads(result.stderr)["error"]["code"] == "CONTAINER_NOT_FOUND"


# -- one container -------------------------------------------------------------------------------------

def test_top(cli):
    vm = cli.info["vms"][0]["name_label"]
    lines = cli.ok("top", vm, "web").splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert lines[1].endswith("httpd -f -p 80 -h /www")
    data = cli.json("top", vm, "burn")  # a unique name prefix
    assert data["container"]["name"] == "burner"
    assert data["titles"][-1] == "CMD" and "while" in data["processes"][0]["CMD"]
    result = cli.run("top", vm, "exited")
    assert result.returncode == 1 and "[ENGINE_ERROR]" in result.stderr and "not running" in result.stderr


def test_inspect(cli):
    vm = cli.info["vms"][0]
    data = cli.json("inspect", vm["uuid"], "web")
    assert data["Name"] == "/web" and data["Config"]["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]
    assert data["State"]["Running"] == "True"
    text = cli.ok("inspect", vm["name_label"], data["Id"][:12])
    assert "Name: /web" in text.splitlines() and "\n  Running: True\n" in text


def test_logs(cli):
    vm = cli.info["vms"][0]["name_label"]
    assert cli.run("logs", vm, "web", "--tail", "5").returncode == 0
    data = cli.json("logs", vm, "web")
    assert data["container"]["name"] == "web" and isinstance(data["logs"], str)
    assert cli.run("logs", vm, "web", "--tail", "0").returncode == 2


def test_stats(cli):
    vm = cli.info["vms"][0]["name_label"]
    lines = cli.ok("stats", vm, "web").splitlines()
    assert lines[0].split()[:3] == ["CONTAINER", "NAME", "CPU"] and lines[1].split()[1] == "web"
    data = cli.json("stats", vm)
    names = sorted(c["name"] for c in data["containers"])
    assert "web" in names and "burner" in names and "exited" not in names
    assert all(isinstance(c["memory_usage"], int) for c in data["containers"])


def test_lifecycle(cli, testbed):
    vm = cli.info["vms"][0]
    ps = cli.json("ps", "--vm", vm["name_label"])["vms"][0]["containers"]
    web = [c for c in ps if c["name"] == "web"][0]
    assert cli.ok("pause", vm["name_label"], web["id"][:6]) == "%s: paused web (%s)\n" % (vm["name_label"], web["container"])
    try:
        state = testbed.docker(vm["name_label"], ["inspect", "-f", "{{.State.Status}}", "web"]).stdout.strip()
        assert state == "paused"
        # The plugin wrote the new docker_ps: ps shows it without --refresh.
        row = [l for l in cli.ok("ps", "--vm", vm["name_label"]).splitlines() if " web " in l][0]
        assert "Up (Paused)" in row
    finally:
        data = cli.json("unpause", vm["name_label"], "web")
    assert data["action"] == "unpause" and data["container"]["id"] == web["id"]
    assert testbed.docker(vm["name_label"], ["inspect", "-f", "{{.State.Status}}", "web"]).stdout.strip() == "running"
    # The exited sample runs `exit 3`: starting, restarting and stopping it leave it as it was.
    for action in ("start", "restart", "stop"):
        assert cli.json(action, vm["name_label"], "exited")["action"] == action
    state = testbed.docker(vm["name_label"], ["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "exited"])
    assert state.stdout.split() == ["exited", "3"]


# -- VM level -------------------------------------------------------------------------------------------------

def test_register_and_deregister(cli):
    vm = cli.info["vms"][1]
    assert cli.json("deregister", vm["name_label"])["managed"] is False
    try:
        listed = [v["uuid"] for v in cli.json("ps", "--all-hosts")["vms"]]
        assert vm["uuid"] not in listed
    finally:
        assert cli.ok("register", vm["name_label"]).startswith("%s: registered" % vm["name_label"])
    assert vm["uuid"] in [v["uuid"] for v in cli.json("ps", "--all-hosts")["vms"]]


def test_doctor_healthy(cli):
    vm = cli.info["vms"][0]
    text = cli.ok("doctor", vm["name_label"])
    assert "Diagnosis:" in text and "(OK)" in text
    data = cli.json("doctor", vm["uuid"])
    assert data["healthy"] is True and data["code"] == "OK" and data["vm"]["uuid"] == vm["uuid"]


def test_unreachable_vm_with_its_diagnosis(cli, testbed):
    vm = cli.info["vms"][2]
    testbed.stop_sshd(vm["name_label"])
    try:
        result = cli.run("doctor", vm["name_label"])
        assert result.returncode == 4, result.stderr
        assert "(PORT_CLOSED)" in result.stdout and "What to do:" in result.stdout and "sshd" in result.stdout
        result = cli.run("doctor", vm["name_label"], "--json")
        data = json.loads(result.stdout)
        assert result.returncode == 4 and data["healthy"] is False and data["code"] == "PORT_CLOSED"
        assert data["advice"]
        result = cli.run("top", vm["name_label"], "web")
        assert result.returncode == 4 and result.stderr.strip().endswith("[PORT_CLOSED]")
        assert result.stderr.count(vm["name_label"] + ":") == 1
        # ps still shows the last known list, says why it is old, and exits with the failure's code.
        result = cli.run("ps", "--all-hosts", "--refresh")
        assert result.returncode == 4
        assert len([l for l in result.stdout.splitlines() if l.startswith(vm["name_label"] + " ")]) == 4
        assert "[PORT_CLOSED] (showing the last known list)" in result.stderr
        result = cli.run("ps", "--vm", vm["name_label"], "--refresh", "--json")
        assert result.returncode == 4 and json.loads(result.stdout)["vms"][0]["error"]["code"] == "PORT_CLOSED"
    finally:
        testbed.start_sshd(vm["name_label"])
    assert cli.run("doctor", vm["name_label"]).returncode == 0


# -- config drives, prepare-vm, --url ------------------------------------------------------------------------------

@pytest.fixture
def spare_vm(testbed):
    session = testbed.xapi_session()
    api = session.xenapi
    ref = api.VM.create({"name_label": "cli-config-drive-test"})
    try:
        yield api.VM.get_uuid(ref)
    finally:
        for vbd in api.VM.get_VBDs(ref):
            vdi = api.VBD.get_VDI(vbd)
            api.VBD.destroy(vbd)
            if vdi != "OpaqueRef:NULL":
                api.VDI.destroy(vdi)
        api.VM.destroy(ref)
        close_session(session)


def test_config_drive(cli, spare_vm, tmp_path):
    text = cli.ok("config-drive", "default", "CoreOS")
    assert text.startswith("#cloud-config") and "%CONTAINERPUBKEY%" in text
    assert cli.json("config-drive", "default", "CoreOS")["configuration"].startswith("#cloud-config")
    path = tmp_path / "cloud-config"
    path.write_text(text)
    created = cli.ok("config-drive", "create", spare_vm[:13], "--sr", "Local storage", "--file", str(path))
    vdi = created.split("VDI ")[1].split()[0]
    shown = cli.ok("config-drive", "show", vdi)
    assert shown.startswith("#cloud-config") and "%CONTAINERPUBKEY%" in shown
    data = cli.json("config-drive", "create", spare_vm, "--sr", "Local", "--file", str(path))
    assert data["vm"]["uuid"] == spare_vm and data["sr"]["name_label"] == "Local storage"
    assert cli.json("config-drive", "show", data["vdi"][:8])["vdi"]["uuid"] == data["vdi"]
    assert cli.run("config-drive", "show", "no-such-vdi").returncode == 3
    assert cli.run("config-drive", "default", "no-such-template").returncode == 3


def test_prepare_vm_is_delegated(cli):
    result = cli.run("prepare-vm", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout.lower()


def test_url_login(cli, tmp_path):
    info = cli.info
    secret = tmp_path / "password"
    secret.write_text(info["password"] + "\n")
    env = {k: v for k, v in cli.env.items() if k != "XSCONTAINER_XAPI_SOCKET"}
    base = [sys.executable, "-m", "xscontainer.cli.main", "--url", info["xapi_url"], "--username", info["username"]]

    def run(*argv, stdin=None):
        return subprocess.run(base + list(argv), env=env, input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=120)

    result = run("--password-file", str(secret), "ps", "--json")
    assert result.returncode == 0, result.stderr
    # Over --url there is no "this host": the whole pool is shown.
    assert len(json.loads(result.stdout)["vms"]) == len(info["vms"])
    assert run("--password-file", "-", "doctor", info["vms"][0]["name_label"], stdin=info["password"] + "\n").returncode == 0
    result = run("--password-file", "-", "ps", stdin="wrong\n")
    assert result.returncode == 5 and "[XAPI_AUTH_FAILED]" in result.stderr
