"""One VM's watcher: keeps its engine event stream open and asks for refreshes when it changes.

The watcher's thread only connects and reads events; refreshes (engine reads, rendering, xapi
writes) run on the shared ``RefreshScheduler`` workers, coalesced per VM. Failures are retried
with back-off; after ``threshold`` seconds of failure one xapi message says why, and it goes
away when monitoring works again or stops.
"""

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from xscontainer.backoff import Backoff, RateLimit
from xscontainer.consumerxml.state import INFO, PS, VERSION, StartTimes, expected_state, may_change_start_time, render_values
from xscontainer.errors import XSContainerError
from xscontainer.metrics.sample import running_of_listing
from xscontainer.monitor.alarm import CLEAR, RAISE, FailureAlarm
from xscontainer.monitor.coalesce import refreshes_for
from xscontainer.monitor.view import Target

if TYPE_CHECKING:  # service.py builds the watchers, so it imports this module
    from xscontainer.monitor.service import Services  # noqa: F401

LOG = logging.getLogger(__name__)
# Once per VM: where the time to its first keys went (bench/scale.py reads these lines).
FIRST_KEYS_LOG = ("VM %s: first keys written %.3f s after monitoring started: slot_wait=%.3f connect=%.3f "
                  "queued=%.3f engine_read=%.3f xapi_write=%.3f")


class Watcher:
    def __init__(self, target: Target, services: "Services") -> None:
        self.target = target
        self._services = services
        self._stop = threading.Event()
        self._active = True
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._stream = None
        # Why the connection was closed from outside the watcher's thread (a failed refresh):
        # the stream then ends or breaks, and the status must name this cause, not that effect.
        self._cause = None  # type: Optional[XSContainerError]
        self.start_times = StartTimes()
        self._expectations = {}  # type: Dict[str, Callable]
        self._alarm = FailureAlarm(services.warn_after, services.clock)
        self._backoff = Backoff(**services.backoff)
        self._write_backoff = Backoff(**services.backoff)
        self._event_rate = RateLimit(clock=services.clock, **services.event_rate)
        self._paced = False  # logged once per VM when its events first come faster than the rate
        self._info_due = False  # docker_info and docker_version to be read since the connection
        self._running = None  # type: Optional[List[Tuple[str, str]]]  # (id, name), from the last list read
        self._status = {"vm": target.vm_uuid, "state": "connecting", "since": None,
                        "last_error": None, "last_error_code": None, "diagnosis": None,
                        "addresses": list(target.addresses), "docker_ps_note": None}  # type: Dict[str, Any]
        self._thread = threading.Thread(target=self._run, name="watch-%s" % target.vm_uuid[:8], daemon=True)
        # Where the time to the first keys went (logged once; bench/scale.py sums the lines).
        self._startup = {"began": services.clock()}  # type: Optional[Dict[str, float]]

    # -- owner's side --------------------------------------------------------------------
    def start(self) -> "Watcher":
        # Until its first keys (or its first failure), other VMs' docker_info reads wait: at
        # start-up they took the engines' CPU from the connections still to come.
        self._services.scheduler.starting(self.target.vm_uuid)
        self._thread.start()
        return self

    def signal_stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def stop(self, remove_keys: bool) -> None:
        """Stop, join, and (when monitoring of the VM ends) remove its keys and its message."""
        self.signal_stop()
        services = self._services
        services.scheduler.forget(self.target.vm_uuid)
        services.engines.close(self.target.vm_uuid)
        self._thread.join(30)
        with self._write_lock:
            self._active = False
        if remove_keys:
            try:
                services.writer.remove(self.target.vm_ref)
                if self._alarm.stop() == CLEAR or self._alarm.alerted:
                    services.alerts.clear(self.target.vm_uuid)
            except Exception as exc:  # xapi may be gone; the next start replaces stale values
                LOG.warning("VM %s: could not clean up after monitoring: %s", self.target.vm_uuid, exc)
        else:
            services.writer.forget(self.target.vm_ref)

    def status(self) -> Dict[str, Any]:
        with self._state_lock:
            return dict(self._status)

    def running_containers(self) -> Optional[List[Tuple[str, str]]]:
        """(id, name) of the running containers as the last list read showed them (kept current
        by the engine's events), None before the first; for the metrics reporter."""
        with self._state_lock:
            return self._running

    # -- the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        services = self._services
        uuid = self.target.vm_uuid
        while not self._stop.is_set():
            try:
                client = services.engines.client(uuid)
                waited = services.clock()
                with services.connect_slots:  # the first request opens the connection
                    slot = services.clock()
                    stream = client.events()
                self._stream = stream
                self._note_startup(slot_wait=slot - waited, connect=services.clock() - slot,
                                   requested=services.clock())
                if self._stop.is_set():
                    break
                # The stream is open before the full read: no change can fall between them.
                # Background: a thousand VMs connecting must not delay another VM's event; and
                # docker_info and docker_version (ten times docker_ps's cost to the engine) once
                # docker_ps is written, after every other VM's (see ``refresh``).
                with self._state_lock:
                    self._info_due = True
                services.scheduler.request(uuid, [PS], background=True)
                for event in stream:
                    kinds = refreshes_for(event.raw)
                    LOG.debug("VM %s: engine event %s %s -> %s", uuid, event.action, event.name, sorted(kinds))
                    if kinds:
                        if event.id:
                            if may_change_start_time(event.action or ""):
                                self.start_times.invalidate(event.id)
                            self._expect(event)
                        services.scheduler.request(uuid, kinds)
                    if not self._pace():
                        break
                if not self._stop.is_set():
                    raise XSContainerError("The engine closed its event stream.", code="ENGINE_NOT_ANSWERING")
            except XSContainerError as exc:
                if self._stop.is_set():
                    break
                self._failed(self._take_cause() or exc)
            except Exception as exc:  # a bug must not end monitoring of the VM for good
                if self._stop.is_set():
                    break
                LOG.exception("VM %s: watcher error", uuid)
                self._failed(self._take_cause() or XSContainerError("%s: %s" % (type(exc).__name__, exc)))
            finally:
                self._stream = None

    def _pace(self) -> bool:
        """Wait until the VM's event rate allows reading the next event; False once stopping."""
        while not self._stop.is_set():
            wait = self._event_rate.wait_time()
            if not wait:
                return True
            if not self._paced:
                self._paced = True
                LOG.warning("VM %s: its engine sends more than %g events a second; they are read no faster",
                            self.target.vm_uuid, self._services.event_rate["rate"])
            self._stop.wait(wait)
        return False

    def _take_cause(self) -> Optional[XSContainerError]:
        with self._state_lock:
            cause, self._cause = self._cause, None
        return cause

    def _expect(self, event) -> None:
        check = expected_state(event.action, event.name or "")
        if check is not None:
            with self._state_lock:
                self._expectations[event.id] = check

    def _failed(self, exc: XSContainerError) -> None:
        services = self._services
        uuid = self.target.vm_uuid
        services.engines.close(uuid)
        services.scheduler.started(uuid)  # it may fail for long: others' deferred work goes on
        with self._state_lock:
            self._status.update(state="failing", last_error=exc.message, last_error_code=exc.code)
        LOG.warning("VM %s: %s (%s)", uuid, exc.message, exc.code)
        self._handle_alarm(self._alarm.failure(exc.message))
        delay = self._backoff.next_delay()
        until_alert = self._alarm.seconds_until_alert()
        while not self._stop.is_set() and delay > 0:
            step = delay if until_alert is None else min(delay, until_alert)
            self._stop.wait(step)
            delay -= step
            self._handle_alarm(self._alarm.check())
            until_alert = self._alarm.seconds_until_alert()

    def _handle_alarm(self, action: str) -> None:
        services = self._services
        uuid = self.target.vm_uuid
        try:
            if action == RAISE:
                diagnosis = services.diagnose(uuid)
                with self._state_lock:
                    self._status["diagnosis"] = diagnosis
                services.alerts.raise_alert(uuid, diagnosis)
            elif action == CLEAR:
                services.alerts.clear(uuid)
        except Exception as exc:
            LOG.warning("VM %s: could not update the xapi message: %s", uuid, exc)
            self._alarm.not_delivered(action)

    # -- called by the refresh workers -------------------------------------------------------
    def refresh(self, kinds) -> None:
        services = self._services
        with self._state_lock:
            expectations = dict(self._expectations)
        began = services.clock()
        rendered = render_values(services.engines.client(self.target.vm_uuid), kinds, self.start_times, expectations)
        read = services.clock()
        values = rendered.values
        with self._state_lock:  # met or given up; a newer one for the same container stays
            for cid, check in expectations.items():
                if self._expectations.get(cid) is check:
                    del self._expectations[cid]
            if rendered.ps is not None:
                self._status["docker_ps_note"] = ps_note(rendered.ps)
            if rendered.containers is not None:
                self._running = running_of_listing(rendered.containers)
        LOG.debug("VM %s: refreshed %s", self.target.vm_uuid, ", ".join(sorted(values)))
        with self._write_lock:
            if not self._active:
                return
            try:
                for key in ("docker_version", "docker_info", "docker_ps"):
                    if key in values:
                        services.writer.write(self.target.vm_ref, key, values[key])
            except Exception as exc:  # xapi's failure, not the engine's: keep the connection
                self._write_failed(kinds, exc)
                return
        self._write_backoff.reset()
        self._first_keys(began, read, services.clock())
        services.scheduler.started(self.target.vm_uuid)
        self._succeeded()
        self._ask_info_once(kinds)

    def _ask_info_once(self, kinds) -> None:
        """After the connection's first docker_ps, docker_info and docker_version, last."""
        with self._state_lock:
            due, self._info_due = self._info_due and not {INFO, VERSION} <= set(kinds), False
        if due:
            self._services.scheduler.request(self.target.vm_uuid, [INFO, VERSION], deferred=True)

    def _note_startup(self, **times: float) -> None:
        with self._state_lock:
            if self._startup is not None:
                self._startup.update(times)

    def _first_keys(self, began: float, read: float, written: float) -> None:
        """Log once where the time from the watcher's start to its first keys went."""
        with self._state_lock:
            times, self._startup = self._startup, None
        if times is None or "requested" not in times:
            return
        LOG.info(FIRST_KEYS_LOG, self.target.vm_uuid, written - times["began"],
                 times["slot_wait"], times["connect"], max(0.0, began - times["requested"]), read - began,
                 written - read)

    def _write_failed(self, kinds, exc: Exception) -> None:
        """Read and write again after a back-off: the writer no longer believes the keys written."""
        uuid = self.target.vm_uuid
        self._services.scheduler.started(uuid)
        delay = self._write_backoff.next_delay()
        message = "Could not write the VM's docker_* keys into xapi: %s" % (exc,)
        with self._state_lock:
            self._status.update(state="failing", last_error=message, last_error_code="XAPI_WRITE_FAILED")
        LOG.warning("VM %s: %s; retrying in %.1fs", uuid, message, delay)
        self._services.scheduler.request_later(uuid, kinds, delay)

    def _succeeded(self) -> None:
        self._backoff.reset()
        with self._state_lock:
            if self._status["state"] != "monitored":
                self._status.update(state="monitored", since=time.time())
            self._status.update(last_error=None, last_error_code=None, diagnosis=None)
            self._cause = None
        self._handle_alarm(self._alarm.success())

    def refresh_failed(self, exc: BaseException) -> None:
        """A refresh broke: drop the connection so the watcher reconnects and reads everything;
        the watcher reports ``exc`` as the reason (with its code)."""
        if not isinstance(exc, XSContainerError):
            exc = XSContainerError("%s: %s" % (type(exc).__name__, exc))
        LOG.info("VM %s: refresh failed (%s: %s); reconnecting", self.target.vm_uuid, exc.code, exc)
        stream = self._stream
        # Only while the stream is open (else the watcher is failing already, with its own
        # reason), and not an echo: a refresh whose connection was closed under it (closed=True).
        if stream is not None and not exc.details.get("closed"):
            with self._state_lock:
                if self._cause is None:  # the first failure is the cause
                    self._cause = exc
        self._services.engines.close(self.target.vm_uuid)
        if stream is not None:
            stream.close()


def ps_note(document) -> Optional[str]:
    """What ``get_status`` says about a ``docker_ps`` that had to be cut to fit in one xapi
    request; None when it lists every container whole."""
    if document.complete:
        return None
    note = "docker_ps lists %d of %d containers" % (document.listed, document.total)
    if document.listed < document.total:
        note += " (running ones first)"
    if document.abridged:
        note += ", %d of them with only the fields XenCenter and Xen Orchestra read" % document.abridged
    return note + ": xapi accepts at most 300 KiB per request."
