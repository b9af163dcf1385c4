"""The shared testbed seen from the root namespace, as dom0 sees its guests: real sshd, real
dockerd, real xapi simulator. Every test leaves the testbed as it found it."""

import io
import json
import os
import socket
import subprocess
import sys

import paramiko
import pytest

from waiting import wait_for
from xscontainer.poolkeys import generate_keypair
from xscontainer.testbed import TestbedError
from xscontainer.transport.ssh import open_streamlocal_channel

SSH_TIMEOUT = 15


def _pkey(testbed):
    pair = testbed.pool_keypair()
    key_type = pair.public_line.split()[0]
    cls = {"ssh-ed25519": paramiko.Ed25519Key, "ssh-rsa": paramiko.RSAKey}.get(key_type, paramiko.ECDSAKey)
    return cls.from_private_key(io.StringIO(pair.private_pem))


def _transport(vm):
    transport = paramiko.Transport(socket.create_connection((vm["ip"], vm["ssh_port"]), timeout=SSH_TIMEOUT))
    transport.start_client(timeout=SSH_TIMEOUT)
    return transport


def _login(testbed, vm):
    transport = _transport(vm)
    transport.auth_publickey(vm["ssh_user"], _pkey(testbed))
    return transport


def _exec(transport, command):
    channel = transport.open_session(timeout=SSH_TIMEOUT)
    channel.settimeout(SSH_TIMEOUT)
    channel.exec_command(command)
    out = b""
    while True:
        chunk = channel.recv(65536)
        if not chunk:
            break
        out += chunk
    return channel.recv_exit_status(), out.decode()


def _http_over(stream, path):
    stream.sendall(("GET %s HTTP/1.0\r\nHost: docker\r\n\r\n" % path).encode())
    data = b""
    while True:
        chunk = stream.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


def _poll(predicate, timeout=30.0):
    return wait_for(predicate, timeout, "the testbed's daemons")


def _cli(testbed, *args):
    return subprocess.run([sys.executable, "-m", "xscontainer.testbed.cli"] + list(args[:1])
                          + ["--dir", testbed.directory] + list(args[1:]),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=120)


def test_info_describes_the_pool_and_its_vms(testbed):
    info = testbed.info()
    assert info["status"] == "up"
    assert len(info["hosts"]) == 2 and len(info["vms"]) == 3
    assert [vm["name_label"] for vm in info["vms"]] == ["vm1", "vm2", "vm3"]
    assert len(set(vm["ip"] for vm in info["vms"])) == 3
    assert set(vm["host_uuid"] for vm in info["vms"]) == set(h["uuid"] for h in info["hosts"])
    for vm in info["vms"]:
        assert vm["ip"].startswith("169.254.")
        assert [c["name"] for c in vm["containers"]] == ["web", "burner", "sleeper", "exited"]
        assert os.path.exists(vm["docker_socket"])
    json.dumps(info)


def test_xapi_shows_the_vms_running_on_their_hosts_with_guest_networks(testbed):
    from xscontainer.xapi.session import close_session
    session = testbed.xapi_session()
    try:
        for vm in testbed.info()["vms"]:
            ref = session.xenapi.VM.get_by_uuid(vm["uuid"])
            record = session.xenapi.VM.get_record(ref)
            assert record["power_state"] == "Running"
            assert session.xenapi.host.get_uuid(record["resident_on"]) == vm["host_uuid"]
            networks = session.xenapi.VM_guest_metrics.get_networks(record["guest_metrics"])
            assert networks["0/ip"] == vm["ip"] and networks["0/ipv4/0"] == vm["ip"]
    finally:
        close_session(session)


def test_xe_script_talks_to_the_simulator(testbed):
    info = testbed.info()
    result = subprocess.run([info["xe"], "vm-list", "name-label=vm2", "params=uuid", "--minimal"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == info["vms"][1]["uuid"]


def test_sshd_answers_at_each_vm_address_with_that_vms_host_key(testbed):
    keys = set()
    for vm in testbed.info()["vms"]:
        transport = _transport(vm)
        try:
            key = transport.get_remote_server_key()
        finally:
            transport.close()
        assert key.get_name() == vm["ssh_host_key_type"]
        assert key.get_base64() == vm["ssh_host_key"]
        keys.add(key.get_base64())
    assert len(keys) == 3


def test_core_logs_in_with_the_pool_key_and_is_in_the_docker_group(testbed):
    vm = testbed.info()["vms"][0]
    transport = _login(testbed, vm)
    try:
        status, out = _exec(transport, "id -un; id -Gn")
    finally:
        transport.close()
    assert status == 0
    user, groups = out.split("\n")[:2]
    assert user == "core" and "docker" in groups.split()


def test_an_unknown_key_is_refused(testbed):
    vm = testbed.info()["vms"][0]
    transport = _transport(vm)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            transport.auth_publickey("core", paramiko.Ed25519Key.from_private_key(
                io.StringIO(generate_keypair().private_pem)))
    finally:
        transport.close()


def test_docker_api_through_ssh_lists_the_sample_containers(testbed):
    for vm in testbed.info()["vms"]:
        transport = _login(testbed, vm)
        try:
            channel = open_streamlocal_channel(transport, "/var/run/docker.sock", SSH_TIMEOUT)
            channel.settimeout(SSH_TIMEOUT)
            status, body = _http_over(channel, "/v1.41/containers/json?all=1")
        finally:
            transport.close()
        assert b" 200 " in status
        states = {c["Names"][0].lstrip("/"): c["State"] for c in json.loads(body.decode())}
        assert states == {"web": "running", "burner": "running", "sleeper": "paused", "exited": "exited"}


def test_docker_cli_over_ssh_shows_the_exit_code(testbed):
    vm = testbed.info()["vms"][1]
    transport = _login(testbed, vm)
    try:
        status, out = _exec(transport, "docker inspect --format '{{.State.ExitCode}}' exited")
    finally:
        transport.close()
    assert (status, out.strip()) == (0, "3")


def test_published_port_answers_at_the_vm_address(testbed):
    for vm in testbed.info()["vms"]:
        published = vm["containers"][0]["published"]
        with socket.create_connection((published["ip"], published["port"]), timeout=10) as sock:
            status, body = _http_over(sock, "/")
        assert b" 200 " in status and b"xscontainer testbed" in body


def test_forbidden_streamlocal_forwarding_is_refused_then_restored(testbed):
    vm = testbed.info()["vms"][2]
    testbed.set_streamlocal_forwarding("vm3", False)
    try:
        transport = _login(testbed, vm)
        try:
            with pytest.raises(paramiko.SSHException):
                open_streamlocal_channel(transport, "/var/run/docker.sock", SSH_TIMEOUT)
        finally:
            transport.close()
    finally:
        testbed.set_streamlocal_forwarding("vm3", True)
    assert testbed.info()["vms"][2]["allow_streamlocal"] is True


def test_vm_exec_kills_and_restarts_sshd_and_dockerd(testbed):
    vm = testbed.info()["vms"][1]
    inside = _cli(testbed, "vm-exec", "vm2", "--", "sh", "-c", "ip -4 -o addr show eth0; ls /var/run/docker.sock")
    assert inside.returncode == 0, inside.stderr
    assert vm["ip"] + "/24" in inside.stdout and "/var/run/docker.sock" in inside.stdout

    killed = _cli(testbed, "vm-exec", "vm2", "--", "sh", "-c", "kill $(cat /run/sshd.pid)")
    assert killed.returncode == 0, killed.stderr
    assert _poll(lambda: not testbed.sshd_running("vm2"))
    assert testbed.sshd_running("vm1")  # the other VMs' sshd are untouched
    restarted = _cli(testbed, "vm-exec", "vm2", "--", *testbed.sshd_argv("vm2", foreground=False))
    assert restarted.returncode == 0, restarted.stderr
    assert _poll(lambda: testbed.sshd_running("vm2"))

    pid = int(_cli(testbed, "vm-exec", "vm2", "--", "cat", "/var/run/docker.pid").stdout)
    killed = _cli(testbed, "vm-exec", "vm2", "--", "kill", str(pid))
    assert killed.returncode == 0, killed.stderr
    assert _poll(lambda: not testbed.dockerd_running("vm2"))
    # dockerd refuses to start while its pid file names a process, even a zombie not yet reaped.
    assert _poll(lambda: not os.path.exists("/proc/%d" % pid))
    assert testbed.dockerd_running("vm1")
    log = os.path.join(testbed.vm_dir("vm2"), "dockerd.log")
    command = " ".join("'%s'" % arg for arg in testbed.dockerd_argv("vm2"))
    restarted = _cli(testbed, "vm-exec", "vm2", "--", "sh", "-c",
                     "setsid %s >>%s 2>&1 </dev/null &" % (command, log))
    assert restarted.returncode == 0, restarted.stderr
    assert _poll(lambda: testbed.dockerd_running("vm2"))

    # live-restore: the containers kept their state; the published port is served again.
    transport = _login(testbed, vm)
    try:
        status, out = _exec(transport, "docker ps -a --format '{{.Names}} {{.State}}'")
    finally:
        transport.close()
    assert status == 0
    assert sorted(out.split("\n")[:-1]) == ["burner running", "exited exited", "sleeper paused", "web running"]
    published = vm["containers"][0]["published"]
    assert _poll(lambda: _answers(published["ip"], published["port"]))


def _answers(address, port):
    try:
        with socket.create_connection((address, port), timeout=2) as sock:
            return b" 200 " in _http_over(sock, "/")[0]
    except OSError:
        return False


def test_python_helpers_stop_and_start_the_daemons(testbed):
    testbed.stop_sshd("vm1")
    assert not testbed.sshd_running("vm1")
    testbed.start_sshd("vm1")
    assert testbed.sshd_running("vm1")
    testbed.stop_dockerd("vm1")
    assert not testbed.dockerd_running("vm1")
    testbed.start_dockerd("vm1")
    assert testbed.dockerd_running("vm1")
    names = testbed.docker("vm1", ["ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    assert sorted(names) == ["burner", "exited", "sleeper", "web"]


def test_vm_exec_reports_an_unknown_vm(testbed):
    with pytest.raises(TestbedError) as caught:
        testbed.vm_exec("vm9", ["true"])
    assert caught.value.code == "TESTBED_NO_SUCH_VM"
    result = _cli(testbed, "vm-exec", "vm9", "--", "true")
    assert result.returncode == 1 and "vm9" in result.stderr
