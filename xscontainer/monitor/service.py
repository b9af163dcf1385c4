"""Assembles the monitor: xapi session pool, engine connections, refresh workers, watchers, the
control socket; ``Monitor.run()`` blocks until ``stop()`` and leaves no thread behind."""

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

from xscontainer.consumerxml.state import ALL_KINDS, PS
from xscontainer.engine.client import LIFECYCLE
from xscontainer.engine.connect import EngineConnections
from xscontainer.engine.diagnose import diagnose
from xscontainer.engine.operations import run_operation
from xscontainer.errors import InvalidArgument, NotFound
from xscontainer.metrics.reporter import Reporter
from xscontainer.metrics.rrddclient import RrddClient
from xscontainer.monitor.alerts import Alerts
from xscontainer.monitor.coalesce import RefreshScheduler
from xscontainer.monitor.control import ControlServer, Splice
from xscontainer.monitor.daemon import HostMonitor
from xscontainer.monitor.watcher import Watcher
from xscontainer.monitor.writer import DOCKER_KEYS, OtherConfigWriter
from xscontainer.monitor.xapipool import SessionPool
from xscontainer.poolkeys import PoolKeyCache
from xscontainer.transport.control import CONTROL_DIR, control_socket_path
from xscontainer.transport.ssh import DOCKER_SOCKET
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.inventory import this_host_uuid

LOG = logging.getLogger(__name__)


class MonitorOptions(NamedTuple):
    """Threads: two per watched VM (its watcher, which connects and reads the engine's events,
    and paramiko's reader of its SSH connection; a TLS VM has only the first), plus
    ``refresh_workers``, plus about ten of the process (xapi loop, control socket, metrics,
    signals): 2 x VMs + 42 with the defaults, 2,042 at 1,000 VMs. A thread per VM is what a
    blocking, cancellable read of each VM's event stream costs (README: closing the transport
    unblocks it); its stack is virtual memory, RSS grows by ~0.1 MB per VM.

    A refresh mostly waits (engine round trips through the tunnel, xapi calls), so the workers
    outnumber the CPUs: with fewer workers than connection slots the first refreshes queued
    behind the connections (at 300 VMs the first keys waited a median 23 s for a worker with 8
    of them, 6 for start-up work). A quarter of them stay free for event-driven refreshes.
    """

    warn_after: float = 120.0  # seconds of failure before the xapi message, as the original
    refresh_workers: int = 32
    max_concurrent_connects: int = 24  # 1000 simultaneous SSH handshakes finish later, not sooner
    xapi_sessions: int = 8  # the workers' writes share them; each is one xapi connection
    poll_timeout: float = 1.0  # event.from wait; bounds how long SIGTERM waits for the xapi loop
    # Between two reads of xapi's events: changes of one VM made meanwhile come as one record
    # (the monitor's own three writes per VM came back as three whole VM records to parse, a
    # third of its interpreter time at 1,000 VMs); xapi's changes reach it this much later.
    event_gather: float = 0.2
    # While refreshes are queued or running, xapi's events wait up to this long: parsing the
    # records of their writes meanwhile took a fifth of the CPU of 100 VMs changing at once.
    event_settle: float = 1.0
    backoff_initial: float = 0.5
    backoff_maximum: float = 30.0
    # A VM's engine events read at most this fast once a burst came (docker compose starting 100
    # services sends about 500 at once); beyond, the engine waits (issue 13: a flood cost 69 % of
    # a core). Every event is still read, later.
    events_per_second: float = 100.0
    event_burst: int = 1000
    control_dir: str = CONTROL_DIR
    rrdd_socket: Optional[str] = None  # xcp-rrdd's socket: containers' metrics beside the VMs' (None: off)
    ssh_port: int = 22  # where the VMs' sshd listens (tests point it elsewhere)
    docker_socket: str = DOCKER_SOCKET  # the engine's socket inside the VMs


class Services:
    """What every watcher shares."""

    def __init__(self, sessions: SessionPool, engines: EngineConnections, scheduler: RefreshScheduler,
                 options: MonitorOptions, clock: Callable[[], float], pool_keys: PoolKeyCache) -> None:
        self.sessions = sessions
        self.engines = engines
        self.scheduler = scheduler
        self.writer = OtherConfigWriter(sessions)
        self.alerts = Alerts(sessions)
        self.warn_after = options.warn_after
        self.clock = clock
        # Jitter: a thousand VMs that failed together (a network outage) do not retry together.
        self.backoff = {"initial": options.backoff_initial, "maximum": options.backoff_maximum, "jitter": 0.3}
        self.event_rate = {"rate": options.events_per_second, "burst": options.event_burst}
        self.connect_slots = threading.BoundedSemaphore(options.max_concurrent_connects)
        self._pool_keys = pool_keys
        self._options = options

    @contextlib.contextmanager
    def holding_connects(self, count: int) -> Iterator[None]:
        """While ``count`` watchers start together, the free connection slots are held: the
        watchers started first would otherwise handshake while the rest are being started, and
        each start waits for the interpreter behind their work (200 starts took 46 s on a loaded
        machine, 4 s when nothing competed). Connections already under way go on."""
        held = 0
        if count > 1:
            while held < self._options.max_concurrent_connects and self.connect_slots.acquire(blocking=False):
                held += 1
        try:
            yield
        finally:
            for _ in range(held):
                self.connect_slots.release()

    def diagnose(self, vm_uuid: str) -> str:
        result = diagnose(self.sessions.session, vm_uuid, self._pool_keys,
                          socket_path=self._options.docker_socket, ssh_port=self._options.ssh_port)
        return "%s (%s)" % (result.message, result.code)


def _destroy_secrets(session: Session, uuids) -> None:
    for uuid in uuids:
        try:
            session.xenapi.secret.destroy(session.xenapi.secret.get_by_uuid(uuid))
            LOG.info("destroyed TLS secret %s: no VM refers to it any more", uuid)
        except Failure:
            pass


class Monitor:
    def __init__(self, session_factory: Callable[[], Session], inventory_path: Optional[str] = None,
                 options: MonitorOptions = MonitorOptions(), clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self._inventory_path = inventory_path
        self._sessions = SessionPool(session_factory, options.xapi_sessions)
        self._pool_keys = PoolKeyCache(self._sessions.session)
        self._engines = EngineConnections(self._sessions.session, self._pool_keys, clock=clock,
                                          ssh_port=options.ssh_port, socket_path=options.docker_socket,
                                          records=lambda vm_uuid: self.host.vm_records(vm_uuid))
        self._scheduler = RefreshScheduler(self._refresh, options.refresh_workers, on_error=self._refresh_failed)
        self.services = Services(self._sessions, self._engines, self._scheduler, options, clock, self._pool_keys)
        self.host = HostMonitor(session_factory, self._start_watcher, inventory_path, options.poll_timeout,
                                on_pool_change=self._pool_keys.invalidate, cleanup_secrets=_destroy_secrets,
                                on_vm_changes=self._audit_keys, launching=self.services.holding_connects,
                                gather=options.event_gather, refreshing=self._scheduler.busy,
                                settle=options.event_settle, owned_keys=DOCKER_KEYS,
                                remove_keys=self._remove_unwatched_keys)
        self.host_uuid = this_host_uuid(inventory_path)
        self.control_path = control_socket_path(self.host_uuid, options.control_dir)
        self._control = ControlServer(self.control_path, self.handle_control)
        self._started = threading.Event()
        self.reporter = None  # type: Optional[Reporter]
        if options.rrdd_socket:
            self.reporter = Reporter(lambda: list(self.host.watchers()), self._engines.open_client,
                                     RrddClient(options.rrdd_socket), running_for=self._running_containers)

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> None:
        self._scheduler.start()
        self._control.start()
        if self.reporter is not None:
            self.reporter.start()
        self._started.set()
        try:
            self.host.run()
        finally:
            if self.reporter is not None:
                self.reporter.stop()
            self._control.stop()
            self._scheduler.stop(10)
            self._engines.close_all()
            if self.reporter is not None:
                self.reporter.join()
            self._sessions.close()

    def stop(self) -> None:
        self.host.stop()
        if self.reporter is not None:
            self.reporter.signal_stop()

    # -- watchers and refreshes ------------------------------------------------------------------
    def _start_watcher(self, target) -> Watcher:
        # What xapi already holds is not written again (after a monitor restart, say).
        self.services.writer.seed(target.vm_ref, self.host.vm_other_config(target.vm_ref))
        return Watcher(target, self.services).start()

    def _audit_keys(self, vm_refs) -> None:
        """Write again the keys that xapi's events show removed or replaced behind our back (the
        source host's monitor removes them after a migration, an administrator may)."""
        writer = self.services.writer
        watched = dict((w.target.vm_ref, w) for w in self.host.watchers().values())
        for vm_ref in set(vm_refs) | writer.suspects():
            watcher = watched.get(vm_ref)
            if watcher is None:
                continue
            lost = writer.audit(vm_ref, self.host.vm_other_config(vm_ref))
            if lost:
                LOG.info("VM %s: %s no longer as written; writing again", watcher.target.vm_uuid, ", ".join(lost))
                self._scheduler.request(watcher.target.vm_uuid, lost)

    def _remove_unwatched_keys(self, vm_ref: str, vm_uuid: str, keys: List[str]) -> None:
        """Keys no watcher keeps current (left by a monitor that stopped before the VM was
        deregistered, say): XenCenter would show them as the VM's state for good."""
        LOG.info("VM %s: not monitored here; removing %s, which nothing keeps current", vm_uuid, ", ".join(keys))
        try:
            self.services.writer.remove(vm_ref, keys)
        except Failure as exc:  # not worth a reconnection: the next change of the VM tries again
            LOG.warning("VM %s: could not remove %s: %s", vm_uuid, ", ".join(keys), exc)

    def _watcher(self, vm_uuid: str) -> Optional[Watcher]:
        return self.host.watchers().get(vm_uuid)

    def _running_containers(self, vm_uuid: str):
        watcher = self._watcher(vm_uuid)
        return watcher.running_containers() if watcher is not None else None

    def _refresh(self, vm_uuid: str, kinds) -> None:
        watcher = self._watcher(vm_uuid)
        if watcher is not None:
            watcher.refresh(kinds)

    def _refresh_failed(self, vm_uuid: str, kinds, exc: BaseException) -> None:
        watcher = self._watcher(vm_uuid)
        if watcher is not None:
            watcher.refresh_failed(exc)

    # -- the control socket ----------------------------------------------------------------------
    def handle_control(self, op: str, params: Dict[str, Any]) -> Any:
        vm_uuid = params.get("vm")
        if not isinstance(vm_uuid, str):
            raise InvalidArgument("The request names no VM.")
        watcher = self._watcher(vm_uuid)
        if op == "status":
            return dict(watcher.status(), host=self.host_uuid) if watcher is not None else None
        if op == "refresh":
            self._refresh_now(vm_uuid, watcher, ALL_KINDS)
            return None
        if op == "engine_stream":
            if watcher is None:  # no warm connection to lend; the caller connects itself
                raise NotFound("This monitor does not watch VM %s." % vm_uuid, code="NOT_WATCHED")
            return Splice(self._engines.tunnel(vm_uuid).open_stream())
        try:
            # Borrowed: a watcher's failure closing the VM's connection meanwhile does not cut
            # this call short (the connection ends when the call does).
            with self._engines.borrowed(vm_uuid) as client:
                result = run_operation(client, op, params)
            if op in LIFECYCLE:
                # Engines that send no pause/unpause events still show the new state at once.
                self._refresh_now(vm_uuid, watcher, frozenset([PS]))
            return result
        finally:
            if watcher is None:  # an on-demand connection to a VM we do not watch
                self._engines.close(vm_uuid)

    def _refresh_now(self, vm_uuid: str, watcher: Optional[Watcher], kinds) -> None:
        # Only a watcher writes a VM's keys: it is what removes them when monitoring stops, and
        # keys on a VM nobody watches would stay stale for good (XenCenter shows them anyway).
        if watcher is not None:
            watcher.refresh(kinds)
