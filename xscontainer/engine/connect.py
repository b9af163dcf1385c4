"""The facade the monitor and the plugin use: one warm connection (SSH or TLS tunnel + HTTP
keep-alive pool + Docker client) per VM, built from the VM's settings in xapi."""

import contextlib
import logging
import threading
import time
from typing import Callable, Dict, Iterator, NamedTuple, Optional

from xscontainer.engine.budget import PROCESS_BUDGET, VM_BUDGET, ByteBudget
from xscontainer.engine.client import DockerClient
from xscontainer.engine.http import HttpPool, Limits
from xscontainer.engine.probe import ping_engine
from xscontainer.errors import ConnectionFailure
from xscontainer.hostkeys import XapiHostKeyPin
from xscontainer.tlscerts import read_client_tls
from xscontainer.transport.ssh import DOCKER_SOCKET, SshTunnel
from xscontainer.transport.tcp import KEEPALIVE
from xscontainer.transport.tls import TlsTunnel, client_context
from xscontainer.vmsettings import VmSettings, read_vm_settings, settings_from_records
from xscontainer.xapi.session import SessionSource

LOG = logging.getLogger(__name__)


class VmRecords(NamedTuple):
    """A VM as xapi last showed it: what its connection settings and pin are made of."""

    vm_ref: str
    other_config: Dict[str, str]
    networks: Dict[str, str]  # its VM_guest_metrics.networks (empty when none)


class _Entry(object):
    """One VM's connection and who uses it: ``users`` borrowers; a ``retired`` entry (closed
    while borrowed) is no longer in the table and is closed when its last borrower returns it."""

    def __init__(self, mode: str, tunnel, pool: HttpPool, client: DockerClient) -> None:
        self.mode = mode
        self.tunnel = tunnel
        self.pool = pool
        self.client = client
        self.users = 0
        self.retired = False

    def close(self) -> None:
        # Final: a closed pool opens no stream and a closed tunnel never reconnects, so a thread
        # still holding this client gets CONNECTION_LOST instead of a connection nobody owns.
        self.pool.close()
        self.tunnel.close()


class EngineConnections(object):
    """``client(vm_uuid)`` returns the VM's ``DockerClient``, reusing its warm connection.

    ``sessions`` lends a logged-in xapi session (borrowed when settings, pins or secrets are
    read: at first use and at each reconnection); ``pool_keys`` is a
    ``PoolKeyCache`` (the private key is parsed once per process). A mode change in
    other_config takes effect after ``close(vm_uuid)``.

    Answers being read, decoded and held decoded by their callers take at most ``vm_budget``
    bytes per VM and ``process_budget`` for all VMs at once (``engine.budget``: an upper bound
    of what they really hold): the largest list a VM may send (16 MiB) decodes within a VM's
    share, and one hostile guest takes at most half of the process's.

    ``records(vm_uuid)``, when given, returns what the caller already knows of the VM from xapi
    (``VmRecords``: the monitor follows every VM through ``event.from``) or None; settings and
    the host-key pin are then read from it instead of from xapi. At a thousand VMs that is 12,000
    fewer xapi calls in the start-up (four to build, four to connect, two for each of the two pin reads).
    """

    def __init__(self, sessions: SessionSource, pool_keys,
                 clock: Callable[[], float] = time.monotonic, limits: Limits = Limits(),
                 connect_timeout: float = 10.0, keepalive: float = KEEPALIVE, max_idle: int = 4,
                 socket_path: str = DOCKER_SOCKET, ssh_port: int = 22, tls_port: int = 2376,
                 vm_budget: int = VM_BUDGET,
                 process_budget: int = PROCESS_BUDGET,
                 records: Optional[Callable[[str], Optional["VmRecords"]]] = None) -> None:
        self._sessions = sessions
        self._records = records
        self._vm_budget = vm_budget
        self._process_budget = ByteBudget(process_budget, "all VMs")
        self._pool_keys = pool_keys
        self._clock = clock
        self._limits = limits
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._max_idle = max_idle
        self._socket_path = socket_path
        self._ssh_port = ssh_port
        self._tls_port = tls_port
        self._lock = threading.Lock()
        self._entries = {}  # type: Dict[str, _Entry]

    def settings(self, vm_uuid: str) -> VmSettings:
        known = self._records(vm_uuid) if self._records is not None else None
        if known is not None:
            return settings_from_records(vm_uuid, known.vm_ref, known.other_config, known.networks)
        with self._sessions() as session:
            return read_vm_settings(session, vm_uuid)

    def _known_other_config(self, vm_uuid: str) -> Callable[[], Optional[Dict[str, str]]]:
        def other_config() -> Optional[Dict[str, str]]:
            known = self._records(vm_uuid) if self._records is not None else None
            return known.other_config if known is not None else None
        return other_config

    def _build(self, vm_uuid: str) -> _Entry:
        settings = self.settings(vm_uuid)

        def current_settings() -> VmSettings:
            return self.settings(vm_uuid)

        if settings.mode == "tls":
            def context():
                tls = read_client_tls(self._sessions, self.settings(vm_uuid))
                return client_context(tls.ca_cert, tls.client_cert, tls.client_key)
            tunnel = TlsTunnel(vm_uuid, current_settings, context, port=self._tls_port, clock=self._clock,
                               connect_timeout=self._connect_timeout)
        else:
            tunnel = SshTunnel(vm_uuid, current_settings, self._pool_keys.paramiko_key,
                               XapiHostKeyPin(self._sessions, vm_uuid, self._known_other_config(vm_uuid)),
                               ping_engine, socket_path=self._socket_path, port=self._ssh_port,
                               clock=self._clock, connect_timeout=self._connect_timeout,
                               keepalive=self._keepalive)
        budget = ByteBudget(self._vm_budget, "VM %s" % vm_uuid, self._process_budget)
        pool = HttpPool(tunnel.open_stream, self._limits, max_idle=self._max_idle, budget=budget, vm_uuid=vm_uuid)
        return _Entry(settings.mode, tunnel, pool, DockerClient(pool, vm_uuid))

    def _entry(self, vm_uuid: str, borrow: bool) -> _Entry:
        # The table lock is never held across I/O: building an entry reads xapi (a stuck call
        # would stall every VM). Two threads may build one concurrently; the loser's entry has
        # opened nothing yet and is simply closed.
        with self._lock:
            entry = self._entries.get(vm_uuid)
            if entry is not None:
                entry.users += borrow
                return entry
        built = self._build(vm_uuid)
        with self._lock:
            entry = self._entries.setdefault(vm_uuid, built)
            entry.users += borrow
        if entry is not built:
            built.close()
        return entry

    def client(self, vm_uuid: str) -> DockerClient:
        """The VM's client. After ``close(vm_uuid)`` it fails with CONNECTION_LOST: ask again."""
        return self._entry(vm_uuid, False).client

    def open_client(self, vm_uuid: str) -> DockerClient:
        """The client of the VM's connection if one is open or being opened (by its watcher);
        never a new one: NOT_CONNECTED otherwise."""
        with self._lock:
            entry = self._entries.get(vm_uuid)
        if entry is None:
            raise ConnectionFailure("No connection to the engine of VM %s is open." % vm_uuid, code="NOT_CONNECTED")
        return entry.client

    @contextlib.contextmanager
    def borrowed(self, vm_uuid: str) -> Iterator[DockerClient]:
        """The VM's client, which a ``close(vm_uuid)`` meanwhile does not interrupt: the
        connection is then closed when the block ends."""
        entry = self._entry(vm_uuid, True)
        try:
            yield entry.client
        finally:
            with self._lock:
                entry.users -= 1
                finished = entry.retired and entry.users == 0
            if finished:
                entry.close()

    def bytes_in_flight(self) -> int:
        """Bytes held now by answers being read or decoded, all VMs together (within
        ``process_budget``)."""
        return self._process_budget.used

    def tunnel(self, vm_uuid: str):
        """The VM's tunnel (``SshTunnel`` or ``TlsTunnel``), for diagnosis and tests."""
        return self._entry(vm_uuid, False).tunnel

    def close(self, vm_uuid: str) -> None:
        """Close the VM's connection (at once, or when its last borrower is done); the next
        ``client`` builds a new one."""
        with self._lock:
            entry = self._entries.pop(vm_uuid, None)
            if entry is not None and entry.users:
                entry.retired = True
                entry = None
        if entry is not None:
            entry.close()

    def close_all(self) -> None:
        """Close every connection, borrowed or not (the owner is shutting down)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.close()

    def __enter__(self) -> "EngineConnections":
        return self

    def __exit__(self, *exc) -> None:
        self.close_all()
