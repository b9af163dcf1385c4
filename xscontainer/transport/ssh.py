"""The SSH tunnel to a VM's Docker socket: one persistent, pinned, kept-alive paramiko connection
per VM, producing byte streams (channels) that end at ``/var/run/docker.sock`` in the guest.

Ways to reach the socket, tried in order until one passes the tunnel's ``probe`` (the engine's
``/_ping``, ``engine.probe.ping_engine``), then remembered:

1. ``direct-streamlocal@openssh.com`` (OpenSSH's Unix-socket forwarding): nothing but sshd runs
   in the guest, and each channel is a plain connection to the socket;
2. ``docker system dial-stdio`` (the docker CLI as a pipe to its engine);
3. ``socat - UNIX-CONNECT:<socket>``;
4. ``ncat -U <socket>``.

No command runs in the guest: an earlier version ran a no-op one after authentication so that
OpenSSH's sshd would set TCP_NODELAY, but requests and bursts of events measure the same without it
(tests/transport/test_ssh_tunnel.py says where), and it cost every guest a fork and an exec of its
user's shell per connection.
"""

import contextlib
import errno
import logging
import socket
import threading
import time
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import paramiko
from paramiko.common import cMSG_CHANNEL_OPEN
from paramiko.message import Message

from xscontainer.backoff import BackoffGate
from xscontainer.errors import ConnectionFailure, EngineError, XSContainerError
from xscontainer.hostkeys import check_host_key, host_key_algorithms_for
from xscontainer.transport.stream import Stream
from xscontainer.transport.tcp import IDLE_WAKE, KEEPALIVE, tcp_connect, tune_socket
from xscontainer.vmsettings import VmSettings

LOG = logging.getLogger(__name__)

DOCKER_SOCKET = "/var/run/docker.sock"
SSH_PORT = 22
STREAMLOCAL = "streamlocal"
DIAL_STDIO = "dial-stdio"
SOCAT = "socat"
NCAT = "ncat"
METHODS = (STREAMLOCAL, DIAL_STDIO, SOCAT, NCAT)

NO_ANSWER = "no answer in time"  # a probe's verdict for a silent engine
# Set on a transport by ``_shut``: it stays active until its reader has seen the shut-down.
SHUT_MARK = "_xscontainer_shut"


def exec_command_for(method: str, socket_path: str) -> str:
    quoted = "'%s'" % socket_path.replace("'", "'\\''")
    if method == DIAL_STDIO:
        return "docker -H unix://%s system dial-stdio" % quoted
    if method == SOCAT:
        return "socat - UNIX-CONNECT:%s" % quoted
    if method == NCAT:
        return "ncat -U %s" % quoted
    raise ValueError(method)


def usable(transport: paramiko.Transport) -> bool:
    """Active and not shut down by us (paramiko calls it active until its reader has ended)."""
    return transport.is_active() and not getattr(transport, SHUT_MARK, False)


def open_streamlocal_channel(transport: paramiko.Transport, path: str,
                             timeout: float) -> paramiko.Channel:
    """Open a ``direct-streamlocal@openssh.com`` channel (OpenSSH PROTOCOL 2.4), which paramiko's
    ``open_channel`` cannot build: same steps, with the socket path as the channel's data."""
    if not usable(transport):
        raise paramiko.SSHException("SSH session not active")
    with transport.lock:
        window_size = transport._sanitize_window_size(None)
        max_packet_size = transport._sanitize_packet_size(None)
        chanid = transport._next_channel()
        m = Message()
        m.add_byte(cMSG_CHANNEL_OPEN)
        m.add_string("direct-streamlocal@openssh.com")
        m.add_int(chanid)
        m.add_int(window_size)
        m.add_int(max_packet_size)
        m.add_string(path)
        m.add_string("")  # reserved
        m.add_int(0)  # reserved
        chan = paramiko.Channel(chanid)
        transport._channels.put(chanid, chan)
        transport.channel_events[chanid] = event = threading.Event()
        transport.channels_seen[chanid] = True
        chan._set_transport(transport)
        chan._set_window(window_size, max_packet_size)
    transport._send_user_message(m)
    if not event.wait(timeout):
        raise paramiko.SSHException("Timeout opening channel.")
    chan = transport._channels.get(chanid)
    if chan is not None:
        return chan
    raise transport.get_exception() or paramiko.SSHException("Unable to open channel.")


class ChannelStream(Stream):
    """A paramiko channel as a Stream."""

    def __init__(self, chan: paramiko.Channel, transport: paramiko.Transport, description: str) -> None:
        super().__init__(chan, description)
        self._transport = transport

    def alive(self) -> bool:
        chan = self._sock
        return usable(self._transport) and not chan.closed and not chan.eof_received \
            and not chan.exit_status_ready()

    def close_write(self) -> None:
        self._sock.shutdown_write()

    def eof_reason(self) -> str:
        """Why the peer closed the channel: the command's exit status and stderr when a command
        (socat, ncat, docker) carried it."""
        chan = self._sock
        err = chan.recv_stderr(4096) if chan.recv_stderr_ready() else b""
        status = chan.recv_exit_status() if chan.exit_status_ready() else None
        return "closed%s%s" % (" (exit status %s)" % status if status is not None else "",
                               ": " + err.decode("utf-8", "replace").strip() if err else "")

    def broken(self) -> Optional[str]:
        if not usable(self._transport):
            exc = self._transport.get_exception()
            return "the SSH connection ended%s" % (": %s" % exc if exc else "")
        return None


# probe(stream, deadline, clock): None when the engine answers on the stream by ``deadline`` (of
# ``clock``), NO_ANSWER when it stays silent until then, else why not (``engine.probe.ping_engine``).
Probe = Callable[[ChannelStream, float, Callable[[], float]], Optional[str]]


@contextlib.contextmanager
def closed_unless_handshaken(transport: paramiko.Transport, vm_uuid: str, address: str) -> Iterator[None]:
    """Close ``transport`` when the handshake inside fails; a paramiko, socket or EOF error
    becomes SSH_HANDSHAKE_FAILED, saying what it means to a user."""
    try:
        yield
    except XSContainerError:
        _shut(transport)
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        _shut(transport)
        raise ConnectionFailure("The SSH handshake with VM %s at %s failed: %s"
                                % (vm_uuid, address, exc or type(exc).__name__),
                                code="SSH_HANDSHAKE_FAILED", vm_uuid=vm_uuid) from exc


def aead_first(ciphers: Sequence[str]) -> Tuple[str, ...]:
    """Our cipher preference: AES-GCM first (any sshd since OpenSSH 6.2 has it), the others after.

    An AEAD cipher authenticates each packet itself; with the others paramiko checks an HMAC per
    packet byte by byte in Python (5 % of a profiled monitor's CPU: 100 VMs, 20 reflect rounds)."""
    return tuple(sorted(ciphers, key=lambda name: not name.endswith("-gcm@openssh.com")))


def start_client_for(transport: paramiko.Transport, pinned: Optional[str], timeout: float) -> str:
    """SSH handshake (no authentication yet); returns the server's host key (base64 blob).

    When a key is pinned we offer only its algorithm: a pool upgraded from the original product
    pinned RSA keys, and negotiating Ed25519 would look like a changed key.
    """
    options = transport.get_security_options()
    algorithms = host_key_algorithms_for(pinned)
    if algorithms:
        supported = [a for a in algorithms if a in options.key_types]
        if supported:
            options.key_types = supported
    options.ciphers = aead_first(options.ciphers)
    transport.start_client(timeout=timeout)
    return transport.get_remote_server_key().get_base64()


def start_pinned_client(transport: paramiko.Transport, pin, timeout: float) -> None:
    """SSH handshake that accepts only the pinned host key. The check runs before any
    credential is sent, so a wrong host never learns who we are."""
    check_host_key(pin, start_client_for(transport, pin.get(), timeout))


class SshTunnel(object):
    """One VM's SSH connection, opened on first use, reopened (with back-off) after it dies.

    ``settings`` is called at every (re)connection, so a changed address or user is picked up.
    ``probe`` says whether the engine answers on a new stream (see ``Probe``).
    ``open_stream()`` returns a new channel to the Docker socket; the HTTP pool above keeps
    channels for reuse. Thread-safe.
    """

    def __init__(self, vm_uuid: str, settings: Callable[[], VmSettings], pkey: Callable[[], paramiko.PKey],
                 pin, probe: Probe, socket_path: str = DOCKER_SOCKET, port: int = SSH_PORT,
                 clock: Callable[[], float] = time.monotonic, connect_timeout: float = 10.0,
                 keepalive: float = KEEPALIVE,
                 methods: Tuple[str, ...] = METHODS) -> None:
        self.vm_uuid = vm_uuid
        self._settings = settings
        self._pkey = pkey
        self._pin = pin
        self._probe = probe
        self.socket_path = socket_path
        self.port = port
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._methods = methods
        self._connect_lock = threading.Lock()  # one (re)connection at a time
        self._lock = threading.Lock()  # guards _transport and _closed; never held across I/O
        self._transport = None  # type: Optional[paramiko.Transport]
        self._closed = False
        self.address = None  # type: Optional[str]
        self.method = None  # type: Optional[str]  # the remembered way to the socket
        self.connects = 0
        self.backoff = BackoffGate(clock)

    # -- the SSH connection -------------------------------------------------------------------
    def transport(self) -> paramiko.Transport:
        with self._connect_lock:
            with self._lock:
                self._check_open()
                current = self._transport
                if current is not None and usable(current):
                    return current
                self._transport = None
            if current is not None:
                LOG.info("VM %s: SSH connection to %s lost (%s); reconnecting", self.vm_uuid, self.address,
                         current.get_exception())
                _shut(current)
            transport = self.backoff.attempt(self._connect)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._transport = transport
            if closed:  # closed while we connected: nobody would ever close this one
                _shut(transport)
                self._check_open()
            self.backoff.succeeded()
            self.connects += 1
            return transport

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionFailure("The SSH connection to VM %s was closed." % self.vm_uuid,
                                    code="CONNECTION_LOST", vm_uuid=self.vm_uuid, closed=True)

    def _connect(self) -> paramiko.Transport:
        settings = self._settings()
        sock, address = tcp_connect(settings.addresses, self.port, self._connect_timeout, self.vm_uuid, "sshd")
        tune_socket(sock, self._keepalive)
        transport = paramiko.Transport(sock)
        with closed_unless_handshaken(transport, self.vm_uuid, address):
            start_pinned_client(transport, self._pin, self._connect_timeout)
            self._authenticate(transport, settings.username, address)
            wake = max(IDLE_WAKE, float(self._keepalive))
            transport.set_keepalive(int(wake))
            # paramiko's reader thread wakes at every socket timeout (0.1 s by default) to see
            # whether it should stop: with a thousand VMs that alone costs a fifth of a core.
            # Keepalives are sent on the same wake-ups; dead peers are the kernel's to detect
            # (tcp.tune_socket), and close() shuts the socket down to wake the thread at once.
            sock.settimeout(wake)
        self.address = address
        LOG.info("VM %s: SSH connection to %s@%s established", self.vm_uuid, settings.username, address)
        return transport

    def _authenticate(self, transport: paramiko.Transport, username: str, address: str) -> None:
        try:
            transport.auth_publickey(username, self._pkey())
        except paramiko.AuthenticationException as exc:
            raise ConnectionFailure(
                "VM %s (%s) refused the pool's SSH key for user '%s': the key is not installed in "
                "~%s/.ssh/authorized_keys. Run xscontainer-prepare-vm for this VM, or set "
                "other-config:xscontainer-username to the right user." % (self.vm_uuid, address, username, username),
                code="SSH_AUTH_FAILED", vm_uuid=self.vm_uuid, username=username) from exc
        if not transport.is_authenticated():
            raise ConnectionFailure("VM %s refused the SSH login of user '%s'." % (self.vm_uuid, username),
                                    code="SSH_AUTH_FAILED", vm_uuid=self.vm_uuid, username=username)

    def exec(self, command: str, timeout: float = 10.0, max_bytes: int = 65536) -> Tuple[int, bytes, bytes]:
        """Run a command in the guest (diagnosis): exit status, stdout, stderr, all within
        ``timeout`` seconds (of ``clock``) in total, however the guest drips its output."""
        deadline = self._clock() + timeout

        def remaining() -> float:
            left = deadline - self._clock()
            if left <= 0:
                raise socket.timeout()
            return left

        chan = self.transport().open_session(timeout=timeout)
        try:
            chan.settimeout(remaining())
            chan.exec_command(command)
            chan.shutdown_write()
            out, err = b"", b""
            # Output is small (far below the channel window), so reading stdout to its end and
            # then stderr cannot deadlock.
            for read, is_err in ((chan.recv, False), (chan.recv_stderr, True)):
                while True:
                    chan.settimeout(remaining())
                    data = read(65536)
                    if not data:
                        break
                    if is_err:
                        err = (err + data)[:max_bytes]
                    else:
                        out = (out + data)[:max_bytes]
            if not chan.status_event.wait(remaining()):
                raise socket.timeout()
            return chan.recv_exit_status(), out, err
        except socket.timeout as exc:
            raise EngineError("The command %r did not finish within %.0f s in VM %s."
                              % (command, timeout, self.vm_uuid), code="ENGINE_TIMEOUT") from exc
        finally:
            try:
                chan.close()
            except (paramiko.SSHException, OSError, EOFError):
                pass  # the connection is gone: what went wrong before says why

    # -- streams to the Docker socket ---------------------------------------------------------
    def open_stream(self) -> Stream:
        transport = self.transport()
        method = self.method
        if method is not None:
            try:
                return self._open(transport, method)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                if not usable(transport):
                    raise self._lost(exc)
                raise self._no_socket([(method, str(exc) or type(exc).__name__)])
        return self._discover(transport)

    def _open(self, transport: paramiko.Transport, method: str) -> ChannelStream:
        if method == STREAMLOCAL:
            chan = open_streamlocal_channel(transport, self.socket_path, self._connect_timeout)
        else:
            chan = transport.open_session(timeout=self._connect_timeout)
            chan.exec_command(exec_command_for(method, self.socket_path))
        return ChannelStream(chan, transport, "%s:%s via %s" % (self.vm_uuid, self.socket_path, method))

    def _discover(self, transport: paramiko.Transport) -> Stream:
        """Try the ways to the socket in order, within ``connect_timeout`` for all of them: a
        hung engine must not cost one timeout per way (each would reach the same silent socket).
        A way whose channel opened but got no answer in time ends the search with
        ``ENGINE_TIMEOUT``, the error a remembered way gives for a silent engine."""
        failures = []  # type: List[Tuple[str, str]]
        deadline = self._clock() + self._connect_timeout
        for method in self._methods:
            if deadline - self._clock() <= 0:
                failures.append((method, "not tried: the %.0f s budget is spent" % self._connect_timeout))
                continue
            try:
                stream = self._open(transport, method)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                if not usable(transport):
                    raise self._lost(exc)
                failures.append((method, str(exc) or type(exc).__name__))
                continue
            try:
                why = self._probe(stream, deadline, self._clock)
            except paramiko.SSHException as exc:
                why = str(exc) or type(exc).__name__
            if why is None:
                LOG.info("VM %s: reaching the Docker socket through %s", self.vm_uuid, method)
                self.method = method
                return stream
            stream.close()
            if why == NO_ANSWER:
                raise EngineError(
                    "The Docker engine in VM %s accepts connections on %s (through %s) but did not answer "
                    "within %.0f s: it is hung or overloaded; restart it in the VM (systemctl restart "
                    "docker)." % (self.vm_uuid, self.socket_path, method, self._connect_timeout),
                    code="ENGINE_TIMEOUT", vm_uuid=self.vm_uuid, method=method)
            failures.append((method, why))
        raise self._no_socket(failures)

    def _lost(self, exc: BaseException) -> ConnectionFailure:
        return ConnectionFailure("The SSH connection to VM %s broke: %s" % (self.vm_uuid, exc or type(exc).__name__),
                                 code="CONNECTION_LOST", vm_uuid=self.vm_uuid)

    def _no_socket(self, failures: List[Tuple[str, str]]) -> ConnectionFailure:
        return ConnectionFailure(
            "Cannot reach the Docker engine's socket %s in VM %s (%s). Check that the engine runs "
            "and that user's group may use the socket." % (
                self.socket_path, self.vm_uuid, "; ".join("%s: %s" % f for f in failures)),
            code="ENGINE_UNREACHABLE", vm_uuid=self.vm_uuid, failures=failures)

    def close(self) -> None:
        """Close for good (the owner is done): a later use fails instead of reconnecting."""
        with self._lock:
            self._closed = True
            transport, self._transport = self._transport, None
        if transport is not None:
            _shut(transport)


def _shut(transport: paramiko.Transport) -> None:
    """Close ``transport``. A live reader thread closes the socket itself once the shut-down
    wakes it (paramiko's ``Transport.run`` does on its way out): closed under a reader between
    two reads, the descriptor's number went to the next connection, whose socket the old
    reader then waited on until its own time-out (30 s)."""
    try:
        transport.sock.shutdown(socket.SHUT_RDWR)  # the reader sees the end of the stream now
    except AttributeError:  # not a socket (paramiko accepts socket-like objects): its own close
        transport.close()
        return
    except OSError as exc:
        if exc.errno == errno.EBADF:  # closed already: nobody reads it any more
            transport.close()
            return
        # ENOTCONN (the peer reset, or keepalives timed out): shut and its waiters woken all the same
    setattr(transport, SHUT_MARK, True)
    if transport.is_alive() and transport is not threading.current_thread():
        return
    transport.close()
    transport.sock.close()  # close() leaves alone the socket of a transport never started
