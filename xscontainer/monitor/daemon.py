"""The host monitor: follows xapi's events and runs one watcher per VM this host must monitor.

xapi's side only: which VMs (``view.py``), starting and stopping their watchers, surviving xapi
restarts without ever running two watchers for one VM. What a watcher does is in ``watcher.py``.
"""

import concurrent.futures
import contextlib
import logging
import threading
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Set, Tuple

from xscontainer.backoff import Backoff
from xscontainer.errors import XapiError
from xscontainer.monitor.view import CLASSES, Target, XapiView, orphaned_tls_secrets
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.inventory import this_host_uuid
from xscontainer.xapi.session import TRANSPORT_ERRORS, close_session

LOG = logging.getLogger(__name__)
# Whatever xapi (or its absence) does to a call: the loop reconnects. Anything else is a bug of
# ours and ends run() with the exception, so that the service exits non-zero and is restarted.
XAPI_ERRORS = TRANSPORT_ERRORS + (Failure, XapiError)
SETTLE_POLL = 0.05  # how often the xapi loop looks whether refreshes still run


def checked_batch(batch: Any) -> Dict[str, Any]:
    """An event.from result as we rely on it (a struct with an events list and a token)."""
    if not isinstance(batch, dict) or not isinstance(batch.get("events"), list) \
            or not isinstance(batch.get("token"), str) \
            or not all(isinstance(e, dict) for e in batch["events"]):
        raise XapiError("xapi answered event.from with something that is not an event batch.",
                        code="XAPI_PROTOCOL_ERROR")
    return batch


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield  # contextlib.nullcontext is 3.7+


class HostMonitor:
    """Owns the watcher threads; ``run`` returns once ``stop()`` was called and all are joined."""

    def __init__(self, session_factory: Callable[[], Session], start_watcher: Callable,
                 inventory_path: Optional[str] = None, poll_timeout: float = 5.0,
                 retry_initial: float = 0.5, retry_maximum: float = 10.0, on_pool_change: Optional[Callable[[], None]] = None,
                 cleanup_secrets: Optional[Callable] = None,
                 on_vm_changes: Optional[Callable[[List[str]], None]] = None,
                 launching: Optional[Callable[[int], ContextManager]] = None, gather: float = 0.0,
                 refreshing: Optional[Callable[[], bool]] = None, settle: float = 0.0,
                 owned_keys: Tuple[str, ...] = (),
                 remove_keys: Optional[Callable[[str, str, List[str]], None]] = None) -> None:
        self._session_factory = session_factory
        self._gather = gather  # seconds between two reads of a busy xapi (see MonitorOptions)
        self._refreshing = refreshing  # () -> whether refreshes are queued or running
        self._settle = settle  # while they are, seconds between two reads at most
        self._start_watcher = start_watcher  # (Target) -> watcher with .stop(remove_keys) and .target
        self._inventory_path = inventory_path
        self._poll_timeout = poll_timeout
        self._retry = Backoff(retry_initial, retry_maximum)
        self._on_pool_change = on_pool_change
        self._cleanup_secrets = cleanup_secrets
        self._on_vm_changes = on_vm_changes  # (refs of VMs a batch changed), after reconcile
        self._launching = launching  # (how many) -> held while that many watchers start together
        self._owned_keys = owned_keys  # other_config keys that only a watcher of the VM may hold
        self._remove_keys = remove_keys  # (VM ref, uuid, keys): removes them from a VM not watched
        self._stop = threading.Event()
        self._watchers = {}  # type: Dict[str, object]
        self._lock = threading.Lock()
        self._view = XapiView()
        self._session = None  # type: Optional[Session]
        self.connected = threading.Event()

    # -- public --------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._follow_xapi()
                    self._retry.reset()
                except XAPI_ERRORS as exc:
                    if self.connected.is_set():
                        self._retry.reset()  # it worked until now: a new incident, retry soon
                    self.connected.clear()
                    delay = self._retry.next_delay()
                    LOG.warning("xapi connection lost (%s: %s); retrying in %.1fs, watchers kept",
                                type(exc).__name__, exc, delay)
                    self._stop.wait(delay)
                finally:
                    self._drop_session()
        finally:
            self._stop_all_watchers(remove_keys=False)

    def stop(self) -> None:
        self._stop.set()
        # The watchers stop reading at once, while the xapi loop finishes its event.from wait:
        # at a thousand VMs their teardown is most of the stop.
        for watcher in self.watchers().values():
            watcher.signal_stop()

    def vm_other_config(self, vm_ref: str) -> Dict[str, str]:
        """other_config of a VM as the last event showed it (empty when unknown)."""
        return dict(self._view.vms.get(vm_ref, {}).get("other_config", {}))

    def vm_records(self, vm_uuid: str):
        """The VM as xapi's events last showed it (``VmRecords``), None when unknown."""
        return self._view.vm_records(vm_uuid)

    def watchers(self) -> Dict[str, object]:
        with self._lock:
            return dict(self._watchers)

    # -- xapi loop ----------------------------------------------------------------------
    def _follow_xapi(self) -> None:
        self._session = self._session_factory()
        api = self._session.xenapi
        host_ref = api.host.get_by_uuid(this_host_uuid(self._inventory_path))
        # An empty token returns every object as an 'add' together with a token: a consistent
        # full read, so no change between the read and the first wait can be missed.
        batch = checked_batch(api.event_from(CLASSES, "", 0.0))
        self._view.reset()
        self._view.apply(batch["events"])
        self.connected.set()
        stopped = self._reconcile(host_ref)
        self._remove_unwatched_keys(host_ref, list(self._view.vms), stopped)
        self._vms_changed(list(self._view.vms))
        token = batch["token"]
        while not self._stop.wait(self._gather) and self._let_refreshes_finish():
            batch = checked_batch(api.event_from(CLASSES, token, self._poll_timeout))
            token = batch["token"]
            changes = self._view.apply(batch["events"])
            if changes.pool_changed and self._on_pool_change:
                self._on_pool_change()
            if changes.deleted_vms and self._cleanup_secrets:
                orphans = orphaned_tls_secrets(changes.deleted_vms, self._view.tls_secrets_in_use())
                if orphans:
                    self._cleanup_secrets(self._session, orphans)
            stopped = self._reconcile(host_ref)
            self._remove_unwatched_keys(host_ref, changes.changed_vms, stopped)
            self._vms_changed(changes.changed_vms)

    def _let_refreshes_finish(self) -> bool:
        """Wait while refreshes are queued or running, ``settle`` seconds at most: their writes
        come back as whole VM records, and parsing those would slow the refreshes still to come.
        False once stopping."""
        waited = self._gather
        while self._refreshing is not None and waited < self._settle and self._refreshing():
            if self._stop.wait(SETTLE_POLL):
                return False
            waited += SETTLE_POLL
        return not self._stop.is_set()

    def _vms_changed(self, refs: List[str]) -> None:
        if self._on_vm_changes is None:
            return
        try:
            self._on_vm_changes(refs)
        except Exception:  # a bug there must not stop the xapi loop, hence every watcher
            LOG.exception("handling changed VMs failed")

    def _remove_unwatched_keys(self, host_ref: str, refs: List[str], stopped: Set[str]) -> None:
        """Our keys on VMs resident here that nobody watches; not on those whose watcher has
        just removed them (``stopped``)."""
        if self._remove_keys is None or not self._owned_keys:
            return
        candidates = [ref for ref in refs if ref not in stopped]
        for ref, keys in self._view.unwatched_with_keys(host_ref, candidates, self._owned_keys).items():
            self._remove_keys(ref, self._view.vms[ref].get("uuid", ""), keys)

    def _drop_session(self) -> None:
        if self._session is not None:
            close_session(self._session)
            self._session = None

    # -- watchers -----------------------------------------------------------------------
    def _reconcile(self, host_ref: str) -> Set[str]:
        """Start and stop watchers as xapi now says; the refs of VMs whose watcher stopped and
        removed its keys."""
        desired = self._view.targets(host_ref)
        with self._lock:
            current = dict(self._watchers)
        stopped = set()
        for uuid, watcher in current.items():
            wanted = desired.get(uuid)
            if wanted is None:
                LOG.info("VM %s: monitoring stops", uuid)
                self._stop_watcher(uuid, remove_keys=True)
                stopped.add(watcher.target.vm_ref)
            elif wanted != watcher.target:
                LOG.info("VM %s: connection settings changed, reconnecting", uuid)
                self._stop_watcher(uuid, remove_keys=False)
        with self._lock:
            missing = [t for uuid, t in desired.items() if uuid not in self._watchers]
        if missing:
            with (self._launching(len(missing)) if self._launching is not None else _nothing()):
                for target in missing:
                    self._launch(target)
        return stopped

    def _launch(self, target: Target) -> None:
        LOG.info("VM %s: monitoring starts (%s)", target.vm_uuid, ", ".join(target.addresses))
        watcher = self._start_watcher(target)
        with self._lock:
            self._watchers[target.vm_uuid] = watcher

    def _stop_watcher(self, uuid: str, remove_keys: bool) -> None:
        with self._lock:
            watcher = self._watchers.pop(uuid, None)
        if watcher is not None:
            watcher.stop(remove_keys=remove_keys)

    def _stop_all_watchers(self, remove_keys: bool) -> None:
        with self._lock:
            watchers = list(self._watchers.values())
            self._watchers.clear()
        for watcher in watchers:
            watcher.signal_stop()
        if not watchers:
            return
        # Each stop closes a connection and joins threads: one after another that is seconds at
        # a thousand VMs, so SIGTERM would outlast systemd's patience.
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(watchers))) as pool:
            list(pool.map(lambda w: w.stop(remove_keys=remove_keys), watchers))
