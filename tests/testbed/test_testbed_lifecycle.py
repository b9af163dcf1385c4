"""Testbeds of their own: two up at once without clashing, `down` leaving nothing behind, and
`down` on a testbed whose `up` was killed half-way."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from xscontainer.testbed import Testbed, missing_prerequisites
from xscontainer.testbed import naming

_UNAVAILABLE = tuple(missing_prerequisites())
pytestmark = pytest.mark.skipif(bool(_UNAVAILABLE), reason="testbed unavailable on this machine: %s"
                                % "; ".join(_UNAVAILABLE))


def _cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "xscontainer.testbed.cli"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout)


def _ns_inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _snapshot(directory):
    """What the testbed in directory has on this machine now, to check after down."""
    directory = os.path.realpath(directory)
    with open(os.path.join(directory, "testbed.json")) as handle:
        state = json.load(handle)
    netns = [n for n in os.listdir("/run/netns") if n.startswith("xstb-%s-" % naming.testbed_hash(directory))]
    inodes = set()
    for name in netns:
        inodes.add(("net", _ns_inode(os.path.join("/run/netns", name))))
    for record in state.get("vms", {}).values():
        if record.get("anchor_pid"):
            inodes.add(("mnt", _ns_inode("/proc/%d/ns/mnt" % record["anchor_pid"])))
    inodes.discard(("net", None))
    inodes.discard(("mnt", None))
    return {"dir": directory, "hash": naming.testbed_hash(directory), "inodes": inodes,
            "processes": [(p["pid"], p["start"]) for p in state.get("processes", [])]}


def _start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            data = handle.read()
    except OSError:
        return None, None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def _leftovers(snap):
    """Everything of the snapshot's testbed still on this machine (zombies awaiting init count
    as gone: they hold no resources)."""
    found = []
    for pid, start in snap["processes"]:
        state, now = _start_time(pid)
        if now == start and state != "Z":
            found.append("recorded process %d" % pid)
    for pid_dir in glob.glob("/proc/[0-9]*"):
        for kind, inode in snap["inodes"]:
            if _ns_inode(os.path.join(pid_dir, "ns", kind)) == inode:
                state, _ = _start_time(int(os.path.basename(pid_dir)))
                if state not in (None, "Z"):
                    found.append("process %s in the testbed's %s namespace" % (pid_dir, kind))
    prefix = "xstb-%s-" % snap["hash"]
    found.extend("netns " + n for n in os.listdir("/run/netns") if n.startswith(prefix))
    found.extend("link " + n for n in os.listdir("/sys/class/net")
                 if n in ("xstb" + snap["hash"],) or n.startswith(("xv" + snap["hash"][:7], "xp" + snap["hash"][:7])))
    with open("/proc/self/mountinfo") as handle:
        found.extend("mount " + line.split()[4] for line in handle if snap["dir"] in line.split()[4])
    found.extend("cgroup " + d for d in glob.glob("/sys/fs/cgroup/*/" + prefix + "*")
                 + glob.glob("/sys/fs/cgroup/" + prefix + "*"))
    return found


def _http_ok(address, port):
    with socket.create_connection((address, port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return sock.recv(100).split(b"\r\n")[0]


def _banner_key_differs(vm_a, vm_b):
    import paramiko
    keys = []
    for vm in (vm_a, vm_b):
        transport = paramiko.Transport(socket.create_connection((vm["ip"], 22), timeout=10))
        try:
            transport.start_client(timeout=10)
            keys.append(transport.get_remote_server_key().get_base64())
        finally:
            transport.close()
    assert keys == [vm_a["ssh_host_key"], vm_b["ssh_host_key"]]
    return keys[0] != keys[1]


def test_two_testbeds_up_at_once_do_not_clash_and_down_leaves_nothing(tmp_path):
    dir_a, dir_b = str(tmp_path / "a"), str(tmp_path / "b")
    up = _cli("up", "--dir", dir_a, "--hosts", "1", "--vms", "1", "--containers", "1", "--no-monitor")
    try:
        assert up.returncode == 0, up.stderr
        info_a = json.loads(up.stdout.strip().splitlines()[-1])
        for key in ("xapi_url", "username", "password", "pool_uuid", "hosts", "vms"):
            assert key in info_a
        assert set(info_a["vms"][0]) >= {"uuid", "name_label", "ip", "host_uuid", "ssh_port",
                                         "docker_socket", "ssh_host_key"}
        bed_b = Testbed(dir_b)
        info_b = bed_b.up(hosts=1, vms=1, containers=1, monitor=False)
        try:
            vm_a, vm_b = info_a["vms"][0], info_b["vms"][0]
            assert info_a["bridge"] != info_b["bridge"]
            assert vm_a["ip"].rsplit(".", 1)[0] != vm_b["ip"].rsplit(".", 1)[0]
            assert _banner_key_differs(vm_a, vm_b)
            for vm in (vm_a, vm_b):
                assert b" 200 " in _http_ok(vm["ip"], 8080)
            snap_a = _snapshot(dir_a)
            assert snap_a["inodes"]
            down = _cli("down", "--dir", dir_a)
            assert down.returncode == 0, down.stderr
            assert _leftovers(snap_a) == []
            assert b" 200 " in _http_ok(vm_b["ip"], 8080)  # B is untouched by A's down
        finally:
            snap_b = _snapshot(dir_b)
            bed_b.down()
        assert _leftovers(snap_b) == []
        assert _cli("down", "--dir", dir_a).returncode == 0  # idempotent
        bed_b.down()
    finally:
        _cli("down", "--dir", dir_a)


def test_down_removes_a_testbed_whose_up_was_killed_half_way(tmp_path):
    directory = str(tmp_path / "half")
    proc = subprocess.Popen([sys.executable, "-m", "xscontainer.testbed.cli", "up", "--dir", directory,
                             "--hosts", "1", "--vms", "2", "--no-monitor"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = os.path.join(directory, "testbed.json")
    snap = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with open(state_path) as handle:
                    state = json.load(handle)
            except (OSError, ValueError):
                state = {}
            roles = [p["role"] for p in state.get("processes", [])]
            if "dockerd" in roles:  # namespaces exist and daemons are starting
                snap = _snapshot(directory)
                break
            time.sleep(0.02)
        assert snap is not None, "up never reached the dockerd stage"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        down = _cli("down", "--dir", directory)
        assert down.returncode == 0, down.stderr
        assert _leftovers(_snapshot(directory)) == []
        assert _leftovers(snap) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _cli("down", "--dir", directory)


def test_vm_exec_on_a_testbed_that_is_down_says_so(tmp_path):
    result = _cli("vm-exec", "--dir", str(tmp_path), "vm1", "--", "true")
    assert result.returncode == 1 and "no VM" in result.stderr
