"""The SSH tunnel against a real sshd (127.0.0.1) forwarding to a scripted engine socket:
pinning, fallback when stream-local forwarding is forbidden, reconnection, auth, back-off."""

import os
import shutil
import socket
import tempfile
import threading

import pytest

from waiting import wait_for

from xscontainer.engine.client import DockerClient
from xscontainer.engine.http import HttpPool
from xscontainer.engine.probe import ping_engine
from xscontainer.errors import ConnectionFailure, EngineError
from xscontainer.hostkeys import fingerprint
from xscontainer.transport.ssh import DIAL_STDIO, NCAT, SOCAT, STREAMLOCAL, SshTunnel

from engine.unixserver import UnixServer, json_response, read_request

from .sshrig import MemoryPin, SshRig

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sshd"),
                                reason="needs root and OpenSSH's sshd")


def engine(conn):
    while True:
        line = read_request(conn)
        if line is None:
            return
        if " /_ping " in line:
            conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK")
        elif "/events" in line:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            conn.recv(1)  # silent until the peer goes away
            return
        else:
            conn.sendall(json_response(b'[{"Id": "%s", "Names": ["/web"]}]' % (b"a" * 64)))


@pytest.fixture(scope="module")
def engine_socket():
    directory = tempfile.mkdtemp(prefix="xsc-eng-")
    os.chmod(directory, 0o755)
    server = UnixServer(os.path.join(directory, "docker.sock"), engine)
    yield server
    server.close()
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def rig():
    rig = SshRig()
    yield rig
    rig.close()


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def tunnel_for(rig, server, pin=None, clock=None, **kw):
    return SshTunnel("vm-test", rig.settings, rig.pkey, pin or MemoryPin(pinned=rig.host_key_b64()), ping_engine,
                     socket_path=server.path,
                     port=rig.port, clock=clock or Clock(), connect_timeout=5, **kw)


def test_an_unpinned_key_is_never_trusted_on_first_use(rig, engine_socket):
    pin = MemoryPin()
    tunnel = tunnel_for(rig, engine_socket, pin)
    before_log = len(rig.log_text())
    before = engine_socket.connections
    with pytest.raises(ConnectionFailure) as info:
        tunnel.open_stream()
    assert info.value.code == "SSH_HOSTKEY_UNVERIFIED"
    assert fingerprint(rig.host_key_b64()) in info.value.message and "--host-key-fingerprint" in info.value.message
    assert pin.pinned is None and pin.pins == 0 and engine_socket.connections == before
    new_log = rig.log_text()[before_log:]
    assert "userauth" not in new_log.lower() and "Accepted" not in new_log
    tunnel.close()


def test_pinned_connection_and_channels_are_reused(rig, engine_socket):
    pin = MemoryPin(pinned=rig.host_key_b64())
    tunnel = tunnel_for(rig, engine_socket, pin)
    client = DockerClient(HttpPool(tunnel.open_stream))
    before = engine_socket.connections
    for _ in range(5):
        assert client.containers()[0]["Names"] == ["/web"]
    assert pin.pinned == rig.host_key_b64()
    assert tunnel.method == STREAMLOCAL
    assert tunnel.connects == 1
    assert engine_socket.connections - before == 1  # one channel, HTTP/1.1 keep-alive
    client.close()
    tunnel.close()


def test_changed_host_key_is_refused_before_anything_is_sent(rig, engine_socket):
    other = SshRig()  # another key
    try:
        pin = MemoryPin(pinned=other.host_key_b64())
    finally:
        other.close()
    tunnel = tunnel_for(rig, engine_socket, pin)
    before_log = len(rig.log_text())
    before = engine_socket.connections
    with pytest.raises(ConnectionFailure) as info:
        tunnel.open_stream()
    assert info.value.code == "SSH_HOSTKEY_MISMATCH"
    assert "xe vm-param-remove uuid=vm-test param-name=other-config param-key=xscontainer-sshhostkey" \
        in info.value.message
    assert pin.pins == 0 and engine_socket.connections == before
    new_log = rig.log_text()[before_log:]
    assert "userauth" not in new_log.lower() and "Accepted" not in new_log
    tunnel.close()


def test_refused_key_is_auth_failure(rig, engine_socket):
    rig.authorize(False)
    try:
        with pytest.raises(ConnectionFailure) as info:
            tunnel_for(rig, engine_socket).open_stream()
    finally:
        rig.authorize(True)
    assert info.value.code == "SSH_AUTH_FAILED"
    assert "xscontainer-prepare-vm" in info.value.message


@pytest.mark.parametrize("methods, expected", [
    ((STREAMLOCAL, DIAL_STDIO, SOCAT, NCAT), DIAL_STDIO),
    ((STREAMLOCAL, SOCAT, NCAT), SOCAT),
    ((STREAMLOCAL, NCAT), NCAT),
])
def test_fallback_when_streamlocal_is_forbidden(engine_socket, methods, expected):
    if expected == DIAL_STDIO and not shutil.which("docker"):
        pytest.skip("no docker CLI for dial-stdio")
    rig = SshRig(allow_streamlocal=False)
    try:
        tunnel = tunnel_for(rig, engine_socket, methods=methods)
        client = DockerClient(HttpPool(tunnel.open_stream))
        for _ in range(3):
            assert client.containers()[0]["Id"] == "a" * 64
        assert tunnel.method == expected
        client.close()
        tunnel.close()
    finally:
        rig.close()


def test_killed_sshd_is_a_clear_error_then_reconnects(engine_socket):
    rig = SshRig()
    try:
        tunnel = tunnel_for(rig, engine_socket, keepalive=1)
        pool = HttpPool(tunnel.open_stream)
        client = DockerClient(pool)
        assert client.containers()
        events = pool.stream("GET", "/v1.41/events")  # holds a channel open, like the monitor
        rig.stop()
        with pytest.raises(ConnectionFailure) as info:
            for _ in events.iter_body():
                pass
        assert info.value.code == "CONNECTION_LOST"
        with pytest.raises(ConnectionFailure) as info:
            client.containers()
        assert info.value.code in ("PORT_CLOSED", "CONNECTION_LOST")
        rig.start()
        tunnel.backoff.succeeded()  # the test's clock does not move: lift the back-off
        assert client.containers()
        assert tunnel.connects == 2
        client.close()
        tunnel.close()
    finally:
        rig.close()


def test_backoff_uses_the_injected_clock(engine_socket):
    rig = SshRig()
    rig.stop()
    clock = Clock()
    tunnel = tunnel_for(rig, engine_socket, clock=clock)
    try:
        with pytest.raises(ConnectionFailure) as first:
            tunnel.open_stream()
        assert first.value.code == "PORT_CLOSED"
        rig.start()
        with pytest.raises(ConnectionFailure) as second:  # still backing off: no new attempt
            tunnel.open_stream()
        assert second.value.details.get("backoff") is True
        clock.now += 60
        tunnel.open_stream().close()
    finally:
        tunnel.close()
        rig.close()


class SteppingClock(object):
    """Advances one second each time it is read: deadlines pass after a few reads."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_exec_is_bounded_as_a_whole_not_per_read(rig, engine_socket):
    tunnel = tunnel_for(rig, engine_socket, clock=SteppingClock())
    outcome = []

    def run():
        try:
            outcome.append(tunnel.exec("yes", timeout=5))  # output without end, never a silent read
        except EngineError as exc:
            outcome.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)  # bounds a failing test only
    tunnel.close()
    assert outcome, "exec of an endless command did not end"
    assert isinstance(outcome[0], EngineError) and outcome[0].code == "ENGINE_TIMEOUT"


def test_a_dead_peer_is_noticed_within_a_few_seconds(rig, engine_socket):
    """On a quiet connection (an idle event stream) the kernel probes the peer once the link is
    idle for TCP_KEEPIDLE, and gives up a probe or data unacknowledged for TCP_USER_TIMEOUT:
    together, the longest a VM whose network is cut can still look connected. It was 10 + 30 s
    (seen: 41 s)."""
    tunnel = tunnel_for(rig, engine_socket)
    try:
        sock = tunnel.transport().sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        user_timeout = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", 18)) / 1000.0
        idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        assert 0 < idle + user_timeout <= 8.0
    finally:
        tunnel.close()


def test_an_idle_connection_does_not_wake_a_thread_every_few_seconds(rig, engine_socket):
    """Dead peers are the kernel's to detect: paramiko's reader of a quiet connection wakes
    rarely (a thousand idle VMs woke it 500 times a second, ~4 % of a core at 300 VMs)."""
    tunnel = tunnel_for(rig, engine_socket)
    try:
        assert tunnel.transport().sock.gettimeout() >= 20
    finally:
        tunnel.close()


def sshd_log_of_one_request(rig, engine_socket):
    """What sshd logged while a new tunnel made one engine request."""
    tunnel = tunnel_for(rig, engine_socket)
    before_log = len(rig.log_text())
    client = DockerClient(HttpPool(tunnel.open_stream))
    assert client.containers()[0]["Names"] == ["/web"]
    client.close()
    tunnel.close()
    return rig.log_text()[before_log:]


def test_the_connection_uses_an_aead_cipher(rig, engine_socket):
    # AES-GCM authenticates in the cipher: no HMAC per packet, whose check paramiko does byte by
    # byte in Python (5 % of a profiled monitor's CPU: 100 VMs, 20 reflect rounds; issue 18).
    kex_lines = [line for line in sshd_log_of_one_request(rig, engine_socket).splitlines()
                 if "kex: client->server cipher" in line]
    assert kex_lines and all("gcm@openssh.com" in line and "MAC: <implicit>" in line for line in kex_lines), kex_lines


def test_the_connection_runs_no_command_in_the_guest(rig, engine_socket):
    # Each command is a fork and an exec of the user's shell in the guest: a thousand VMs
    # connecting cost a thousand of them, on the guests' CPUs. Without the no-op command that made
    # sshd set TCP_NODELAY, a warm request takes the same time (bench/tunnel.py: 0.68 ms median,
    # 0.72 with it) and a burst of 40 engine events arrives as fast (p90 13.9 ms, 15.0 with it).
    new_log = sshd_log_of_one_request(rig, engine_socket)
    assert "Accepted publickey" in new_log
    assert "Starting session" not in new_log and "exec request" not in new_log.lower(), new_log[-2000:]


def test_close_leaves_the_socket_to_a_reader_between_two_reads(rig, engine_socket):
    """The descriptor is closed by paramiko's reader once it has left the socket, never under it:
    closed between two of its reads, its number went to the next connection, whose socket the
    old reader then waited on until its own 30 s time-out (a leaked-looking connection on a
    loaded machine). Here the reader is held between two reads while the tunnel closes."""
    tunnel = tunnel_for(rig, engine_socket)
    client = DockerClient(HttpPool(tunnel.open_stream))
    assert client.containers()[0]["Names"] == ["/web"]
    transport = tunnel.transport()
    stream = tunnel.open_stream()
    between, go_on = threading.Event(), threading.Event()
    read_message = transport.packetizer.read_message

    def held_read_message():
        between.set()
        go_on.wait(30)
        return read_message()
    transport.packetizer.read_message = held_read_message
    try:
        assert client.containers()[0]["Names"] == ["/web"]  # the reader comes back for more
        assert between.wait(10)
        tunnel.close()
        assert transport.is_alive() and transport.sock.fileno() != -1  # still the reader's
        # paramiko calls the transport active until its reader ends: its streams know better.
        assert not stream.alive() and stream.broken() == "the SSH connection ended"
    finally:
        go_on.set()
    wait_for(lambda: not transport.is_alive(), timeout=10, what="the reader to end at the shut-down socket")
    assert transport.sock.fileno() == -1  # closed on its way out
    client.close()
