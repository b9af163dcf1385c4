"""Diagnosis produced by real faults on the shared testbed (no mocks): each case breaks one step
of the path dom0 -> sshd -> Docker socket -> engine, checks the stable code and that the message
is a sentence an administrator can act on, and puts the VM back as it was.

Also here: regression tests of fixes to the engine layer (anchored regexes, ASCII-only digits in
the HTTP parser and guest addresses, stats ``one-shot``), on the same real engine.
"""

import base64
import os
import signal
import socket
import subprocess
import sys

import pytest

from xscontainer.engine.connect import EngineConnections
from xscontainer.engine.diagnose import diagnose
from xscontainer.engine.httpparse import ResponseParser
from xscontainer.errors import EngineError, InvalidArgument
from xscontainer.poolkeys import PoolKeyCache, generate_keypair
from xscontainer.vmsettings import HOSTKEY_KEY, MODE_KEY, USERNAME_KEY, choose_addresses
from xscontainer.xapi.maps import remove_map_key, set_map_key
from xscontainer.xapi.session import close_session
from xscontainer.xapi.session import lend

TIMEOUT = 2
VM_NAME = "vm3"
SAVED_KEYS = (HOSTKEY_KEY, MODE_KEY, USERNAME_KEY)
UNIXSERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unixserver.py")


class Target(object):
    """vm3 of the shared testbed, a logged-in session and the pool key cache."""

    def __init__(self, testbed):
        self.testbed = testbed
        self.info = testbed.info()
        self.vm = [v for v in self.info["vms"] if v["name_label"] == VM_NAME][0]
        self.name = VM_NAME
        self.uuid = self.vm["uuid"]
        self.session = testbed.xapi_session()
        self.api = self.session.xenapi
        self.ref = self.api.VM.get_by_uuid(self.uuid)
        self.keys = PoolKeyCache(lend(self.session))
        self.saved = dict((k, v) for k, v in self.other_config().items() if k in SAVED_KEYS)

    def other_config(self):
        return self.api.VM.get_other_config(self.ref)

    def diagnose(self, uuid=None):
        return diagnose(lend(self.session), uuid or self.uuid, self.keys, timeout=TIMEOUT)

    def restore(self):
        current = self.other_config()
        for key in SAVED_KEYS:
            if key in self.saved:
                if current.get(key) != self.saved[key]:
                    set_map_key(self.api.VM, self.ref, key, self.saved[key])
            elif key in current:
                remove_map_key(self.api.VM, self.ref, key)


@pytest.fixture(scope="module")
def target(testbed):
    target = Target(testbed)
    try:
        yield target
        assert target.diagnose().ok  # every case put the VM back
    finally:
        target.restore()
        close_session(target.session)


@pytest.fixture(scope="module")
def throwaway(target):
    """A VM of the simulator with no engine behind it: running, no guest metrics yet."""
    api = target.api
    ref = api.VM.create({"name_label": "diagnose-throwaway"})
    host = api.host.get_by_uuid(target.info["hosts"][0]["uuid"])
    api.VM.start_on(ref, host, False, False)
    try:
        yield ref, api.VM.get_uuid(ref)
    finally:
        api.VM.hard_shutdown(ref)
        api.VM.destroy(ref)


def assert_actionable(result, code, vm_uuid, *hints, **kwargs):
    """The stable code, and a single sentence naming the VM and saying what to do (ending with
    a full stop, or with the ``command`` to run, which a stop would spoil when pasted)."""
    command = kwargs.get("command")
    assert result.code == code, result
    message = result.message
    assert vm_uuid in message, message
    assert message[:1].isupper(), message
    assert message.rstrip().endswith(".") or (command and message.rstrip().endswith(command)), message
    assert "Traceback" not in message and "\n" not in message and len(message) < 1000, message
    for hint in hints + ((command,) if command else ()):
        assert hint in message, (hint, message)


# -- the cases ------------------------------------------------------------------------------------

def test_a_healthy_vm_is_ok(target):
    result = target.diagnose()
    assert result.ok, result
    assert "API 1." in result.message
    assert target.other_config().get(HOSTKEY_KEY) == target.vm["ssh_host_key"]  # pinned by the testbed


def test_no_address(target, throwaway):
    _, uuid = throwaway
    assert_actionable(target.diagnose(uuid), "NO_ADDRESS", uuid, "guest tools")


def test_port_closed(target, throwaway):
    ref, uuid = throwaway
    # The testbed bridge's own address: on the VMs' network, nothing listens on its port 22.
    address = target.info["root_ip"]
    probe = socket.socket()
    probe.settimeout(TIMEOUT)
    try:
        probe.connect((address, 22))
        pytest.skip("something listens on %s:22 on this machine" % address)
    except ConnectionRefusedError:
        pass
    except OSError as exc:
        pytest.skip("%s:22 does not refuse connections here (%s)" % (address, exc))
    finally:
        probe.close()
    target.api.sim.set_guest_networks(ref, {"0/ip": address, "0/ipv4/0": address})
    try:
        assert_actionable(target.diagnose(uuid), "PORT_CLOSED", uuid, address, "sshd")
    finally:
        target.api.sim.clear_guest_metrics(ref)


def test_sshd_stopped_is_port_closed(target):
    target.testbed.stop_sshd(target.name)
    try:
        assert_actionable(target.diagnose(), "PORT_CLOSED", target.uuid, target.vm["ip"], "port 22")
    finally:
        target.testbed.start_sshd(target.name)


def test_ssh_auth_failed(target):
    path = os.path.join(target.testbed.vm_dir(target.name), "home", "core", ".ssh", "authorized_keys")
    with open(path) as handle:
        original = handle.read()
    target.testbed.authorize_key(target.name, generate_keypair(comment="someone-else").public_line)
    try:
        assert_actionable(target.diagnose(), "SSH_AUTH_FAILED", target.uuid, "authorized_keys",
                          "xscontainer-prepare-vm")
    finally:
        target.testbed.authorize_key(target.name, original)
    assert target.diagnose().ok


def test_ssh_hostkey_mismatch(target):
    pinned = target.other_config()[HOSTKEY_KEY]
    other = generate_keypair(comment="impostor").public_line.split()[1]
    assert base64.b64decode(other)[:15] == b"\x00\x00\x00\x0bssh-ed25519"
    set_map_key(target.api.VM, target.ref, HOSTKEY_KEY, other)
    try:
        assert_actionable(target.diagnose(), "SSH_HOSTKEY_MISMATCH", target.uuid, "changed",
                          command="xe vm-param-remove uuid=%s param-name=other-config param-key=%s"
                          % (target.uuid, HOSTKEY_KEY))
        assert target.other_config()[HOSTKEY_KEY] == other  # never auto-accepted
    finally:
        set_map_key(target.api.VM, target.ref, HOSTKEY_KEY, pinned)


def test_no_docker_socket(target):
    target.testbed.stop_dockerd(target.name)
    try:
        assert not os.path.exists(target.testbed.docker_socket(target.name))
        assert_actionable(target.diagnose(), "NO_DOCKER_SOCKET", target.uuid, "/var/run/docker.sock",
                          "systemctl start docker")
    finally:
        target.testbed.start_dockerd(target.name)


def test_docker_socket_denied(target):
    path = target.testbed.docker_socket(target.name)
    before = os.stat(path)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    try:
        assert_actionable(target.diagnose(), "DOCKER_SOCKET_DENIED", target.uuid, "usermod -aG docker core",
                          "xscontainer-username")
    finally:
        os.chown(path, before.st_uid, before.st_gid)
        os.chmod(path, before.st_mode & 0o7777)


def test_engine_not_answering(target):
    """A hung engine (SIGSTOPped: its socket still accepts) is named after one budget, not one per
    way to the socket: the search stops at the first way whose connection stayed silent."""
    with open(os.path.join(target.testbed.vm_dir(target.name), "run", "docker.pid")) as handle:
        pid = int(handle.read().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        result = target.diagnose()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert_actionable(result, "ENGINE_NOT_ANSWERING", target.uuid, "hung", "restart")
    assert "(through streamlocal)" in result.message  # the other ways were not waited for
    assert target.testbed.dockerd_running(target.name)


def test_api_too_old(target):
    path = target.testbed.docker_socket(target.name)
    target.testbed.stop_dockerd(target.name)
    server = None
    try:
        server = subprocess.Popen([sys.executable, UNIXSERVER, path, "old-engine"], stdout=subprocess.PIPE,
                                  universal_newlines=True)
        assert server.stdout.readline().strip() == "ready"
        assert_actionable(target.diagnose(), "API_TOO_OLD", target.uuid, "1.23", "Upgrade")
    finally:
        if server is not None:
            server.kill()
            server.wait(10)
            server.stdout.close()
        if os.path.exists(path):
            os.unlink(path)
        target.testbed.start_dockerd(target.name)


# -- regressions of engine-layer fixes, on the real engine ----------------------------------------

@pytest.fixture(scope="module")
def client(target):
    with EngineConnections(lend(target.session), target.keys, connect_timeout=5) as engines:
        yield engines.client(target.uuid)


def test_container_refs_with_a_trailing_newline_are_refused(client):
    web = client.inspect("web")["Id"]
    for ref in ("web\n", web + "\n", web[:12] + "\n"):
        with pytest.raises(InvalidArgument) as info:
            client.inspect(ref)
        assert info.value.code == "BAD_CONTAINER_REF"
    assert client.inspect(web)["Name"] == "/web"


def test_stats_one_shot(client):
    """one-shot answers with a single sample: precpu_stats is then empty (without it the engine
    waits for a second sample and fills precpu_stats, as test_testbed_engine's stats call does)."""
    assert tuple(int(p) for p in client.api_version.split(".")) >= (1, 41)
    single = client.stats("burner", one_shot=True)
    assert single["memory_stats"] and single["cpu_stats"].get("system_cpu_usage")
    assert not (single.get("precpu_stats") or {}).get("system_cpu_usage")


@pytest.mark.parametrize("head", [b"HTTP/1.1 20\xb2 OK\r\nContent-Length: 0\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\nContent-Length: 1\xb2\r\n\r\nx",
                                  b"HTTP/1.1 \xd9\xa2\xd9\xa0\xd9\xa0 OK\r\nContent-Length: 0\r\n\r\n"])
def test_non_ascii_digits_are_a_protocol_error(head):
    parser = ResponseParser("GET")
    parser.feed(head)
    with pytest.raises(EngineError) as info:
        while not parser.done:
            parser.next_event()
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"


def test_guest_addresses_with_odd_digits_are_skipped():
    assert choose_addresses({"0/ip": "169.254.3.\u00b2", "1/ip": "010.0.0.1", "\u00b2/ip": "10.0.0.2",
                             "2/ip": "169.254.3.4"}) == ["169.254.3.4", "10.0.0.2"]
