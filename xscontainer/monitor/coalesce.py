"""Which engine events refresh which key, and the scheduler that folds bursts of them into few
refreshes without ever leaving a stale final state.

The rule (per key, e.g. per VM): at most one refresh in flight; a request while none is queued or
running queues one; a request while one is queued joins it; a request while one is running marks
the key dirty, and when that refresh ends exactly one more runs. So N events during a refresh cost
one extra refresh, and the last refresh always starts after the last event: the final state
written is never older than the last change. ``CoalesceState`` is that bookkeeping, pure and
single-threaded; ``RefreshScheduler`` runs it with a fixed pool of worker threads shared by all
keys (a thousand VMs need not mean a thousand refresh threads).
"""

import collections
import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Dict, FrozenSet, Hashable, Iterable, List, Mapping, Optional, Set, Tuple

from xscontainer.consumerxml.state import INFO, PS

LOG = logging.getLogger(__name__)


def thread_cpu_time() -> float:
    """CPU seconds the calling thread has used (``time.thread_time`` is 3.7's)."""
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


# Container actions that change what docker_ps shows (health_status arrives as
# "health_status: healthy"; exec_* events, frequent with health checks, change nothing).
PS_ACTIONS = frozenset(["create", "start", "die", "kill", "stop", "restart", "pause", "unpause",
                        "destroy", "rename", "health_status"])
# Container actions that change docker_info's counters.
INFO_ACTIONS = frozenset(["create", "destroy"])
# Image actions that change docker_info's image count.
IMAGE_INFO_ACTIONS = frozenset(["pull", "delete", "import", "load"])


def event_action(event: Mapping) -> Tuple[str, str]:
    """(type, action) of an engine event, for both the current format (``Type``/``Action``) and
    the pre-1.22 one (``status`` only, always about a container); the action without any
    ``: detail`` suffix."""
    kind = event.get("Type") or "container"
    action = event.get("Action") or event.get("status") or ""
    if not isinstance(action, str):
        action = str(action)
    return str(kind), action.split(":", 1)[0].strip()


def refreshes_for(event: Mapping) -> FrozenSet[str]:
    """The keys (``PS``, ``INFO``) an engine event makes stale; empty when none."""
    kind, action = event_action(event)
    kinds = set()  # type: Set[str]
    if kind == "container":
        if action in PS_ACTIONS:
            kinds.add(PS)
        if action in INFO_ACTIONS:
            kinds.add(INFO)
    elif kind == "image" and action in IMAGE_INFO_ACTIONS:
        kinds.add(INFO)
    return frozenset(kinds)


def engine_event_filters() -> Dict[str, List[str]]:
    """The ``filters`` of ``GET /events`` that deliver exactly the events above (engines match
    ``health_status`` against ``health_status: ...`` since API 1.24)."""
    return {"type": ["container", "image"],
            "event": sorted(PS_ACTIONS | INFO_ACTIONS | IMAGE_INFO_ACTIONS)}


class CoalesceState:
    """Per-key pending/queued/running bookkeeping; not thread-safe (callers hold one lock)."""

    def __init__(self) -> None:
        self._pending = {}  # type: Dict[Hashable, Set[str]]
        self._queued = set()  # type: Set[Hashable]
        self._running = set()  # type: Set[Hashable]

    def mark(self, key: Hashable, kinds: Iterable[str]) -> bool:
        """Record that ``kinds`` of ``key`` are stale; True when the caller must queue ``key``."""
        kinds = set(kinds)
        if not kinds:
            return False
        self._pending.setdefault(key, set()).update(kinds)
        if key in self._running or key in self._queued:
            return False
        self._queued.add(key)
        return True

    def begin(self, key: Hashable) -> FrozenSet[str]:
        """A worker took ``key`` from the queue: the kinds to refresh now (empty: nothing to do,
        the key was forgotten meanwhile)."""
        self._queued.discard(key)
        kinds = self._pending.pop(key, None)
        if not kinds:
            return frozenset()
        self._running.add(key)
        return frozenset(kinds)

    def finish(self, key: Hashable) -> bool:
        """The refresh of ``key`` ended; True when requests came meanwhile and the caller must
        queue ``key`` again."""
        self._running.discard(key)
        if self._pending.get(key):
            self._queued.add(key)
            return True
        return False

    def forget(self, key: Hashable) -> None:
        """Drop what is pending for ``key`` (its monitoring stopped); a running refresh ends
        normally and is not repeated."""
        self._pending.pop(key, None)

    def pending(self, key: Hashable) -> FrozenSet[str]:
        return frozenset(self._pending.get(key, ()))

    def is_running(self, key: Hashable) -> bool:
        return key in self._running

    def idle(self) -> bool:
        return not self._pending and not self._running and not self._queued


class RefreshScheduler:
    """Runs ``refresh(key, kinds)`` on ``workers`` threads with the coalescing rule above.

    ``refresh`` exceptions go to ``on_error(key, kinds, exc)`` (or are logged) and are not
    retried here: a failed refresh means a broken engine connection, whose owner reconnects and
    requests a full refresh. A refresh that must be tried again later (xapi refused a write)
    asks for it with ``request_later``; the workers themselves wait for the due time, so no timer
    thread exists. ``stop()`` lets running refreshes end (their owners close the connections to
    unblock them), drops queued and delayed ones and joins every worker.

    Two queues: ``request(..., background=True)`` is start-up work (the full read after a
    connection opens, a retried write), served after every event-driven request and never on
    more than ``workers - reserved`` workers at once; a thousand VMs connecting together must not
    delay the refresh of a container that just paused. A background key that gets an
    event-driven request meanwhile is served as event-driven (with both requests' kinds).
    ``deferred=True`` start-up work waits until no other start-up work does and no key is
    ``starting`` (a VM's docker_info and docker_version after every VM's connection and
    docker_ps); other start-up work for the key takes it out of that lane.

    A key rests after each refresh for ``(1 / duty - 1)`` times the CPU time the refresh took on
    its worker (7 times with the default eighth): a request meanwhile waits until then, so a
    guest whose engine changes as fast as it is read holds at most ``duty`` of a core's time
    for its refreshes (they took 43 % of a core before). An ordinary refresh takes a few
    milliseconds of CPU, so its VM's next change waits a few more at most.
    """

    def __init__(self, refresh: Callable[[Hashable, FrozenSet[str]], None], workers: int = 4,
                 on_error: Optional[Callable[[Hashable, FrozenSet[str], BaseException], None]] = None,
                 name: str = "xscontainer-refresh", clock: Callable[[], float] = time.monotonic,
                 reserved: Optional[int] = None, cpu_clock: Callable[[], float] = thread_cpu_time,
                 duty: float = 1.0 / 8) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        # Workers background work may not take (event-driven work may use all of them).
        self._reserved = min(workers - 1, max(1, workers // 4) if reserved is None else reserved)
        self._refresh = refresh
        self._on_error = on_error
        self._workers = workers
        self._name = name
        self._cond = threading.Condition()
        self._state = CoalesceState()
        self._ready = collections.deque()  # type: collections.deque  # event-driven keys
        self._background = collections.deque()  # type: collections.deque  # start-up keys
        self._deferred = collections.deque()  # type: collections.deque  # start-up keys, last
        self._in_deferred = set()  # type: Set[Hashable]  # keys with an entry in the deferred lane
        self._defer = set()  # type: Set[Hashable]  # keys whose pending work is all deferred
        self._urgent = set()  # type: Set[Hashable]  # keys with an event-driven request pending
        self._background_running = 0
        self._starting = set()  # type: Set[Hashable]  # keys whose start-up is under way
        self._threads = []  # type: List[threading.Thread]
        self._stopping = False
        self._clock = clock
        self._delayed = []  # type: List[Tuple[float, int, Hashable, FrozenSet[str]]]  # a heap
        self._sequence = itertools.count()
        if not 0 < duty <= 1:
            raise ValueError("duty must be within (0, 1]")
        self._cpu_clock = cpu_clock
        self._rest_factor = 1.0 / duty - 1.0
        self._rest_until = {}  # type: Dict[Hashable, float]  # keys that rest, until when
        self._resting = []  # type: List[Tuple[float, int, Hashable]]  # a heap of queued keys resting
        self._resting_keys = set()  # type: Set[Hashable]

    def start(self) -> "RefreshScheduler":
        with self._cond:
            if self._threads:
                raise RuntimeError("already started")
            for index in range(self._workers):
                thread = threading.Thread(target=self._work, name="%s-%d" % (self._name, index),
                                          daemon=True)
                self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def request(self, key: Hashable, kinds: Iterable[str], background: bool = False,
                deferred: bool = False) -> None:
        """Ask for a refresh of ``kinds`` of ``key``; never blocks on a refresh. ``background``:
        start-up work, served after event-driven requests; ``deferred``: start-up work served
        after all other start-up work (see the class)."""
        kinds = frozenset(kinds)
        with self._cond:
            if self._stopping or not kinds:
                return
            if self._enqueue(key, kinds, background or deferred, deferred):
                self._cond.notify_all()

    def _enqueue(self, key: Hashable, kinds: FrozenSet[str], background: bool, deferred: bool = False) -> bool:
        """Mark and queue (the condition held); True when a worker may have something new to do
        (most requests of a busy VM only join its pending refresh: waking every worker for each
        of them cost more than the refreshes)."""
        if not deferred:
            self._defer.discard(key)
        elif not self._state.pending(key):
            self._defer.add(key)
        queued = self._state.mark(key, kinds)
        if not background:
            if key in self._urgent:
                return False
            self._urgent.add(key)
        if queued and self._rests(key):
            self._put_to_rest(key)  # the rest's end queues it in its lane
            return True
        if key in self._resting_keys:
            return False
        if not background:
            # Queued already as start-up work (or not at all): now it is event-driven. A stale
            # entry left in another lane finds nothing to do (``begin`` is empty).
            self._in_deferred.discard(key)  # its deferred entry, if any, is stale now
            if queued or not self._state.is_running(key):
                self._ready.append(key)
                return True
            return False
        if queued:
            self._queue_background(key)
            return True
        if key in self._in_deferred and key not in self._defer:
            self._background.append(key)  # start-up work of its own: out of the deferred lane
            self._in_deferred.discard(key)
            return True
        return False

    def _queue_background(self, key: Hashable) -> None:
        """Queue start-up work in its lane (the condition held)."""
        if key in self._defer:
            self._deferred.append(key)
            self._in_deferred.add(key)
        else:
            self._background.append(key)

    def _rests(self, key: Hashable) -> bool:
        until = self._rest_until.get(key)
        if until is not None and until <= self._clock():
            del self._rest_until[key]
            return False
        return until is not None

    def _put_to_rest(self, key: Hashable) -> None:
        heapq.heappush(self._resting, (self._rest_until[key], next(self._sequence), key))
        self._resting_keys.add(key)

    def _wake_rested(self, now: float) -> None:
        """Queue the resting keys whose rest is over (the condition held)."""
        while self._resting and self._resting[0][0] <= now:
            _, _, key = heapq.heappop(self._resting)
            if key in self._resting_keys:
                self._resting_keys.discard(key)
                if key in self._urgent:
                    self._ready.append(key)
                else:
                    self._queue_background(key)

    def starting(self, key: Hashable) -> None:
        """``key``'s start-up (its first connection and read) is under way: deferred work waits
        until ``started(key)`` or ``forget(key)``."""
        with self._cond:
            self._starting.add(key)

    def started(self, key: Hashable) -> None:
        with self._cond:
            self._end_start_up(key)

    def _end_start_up(self, key: Hashable) -> None:
        if key in self._starting:
            self._starting.discard(key)
            if not self._starting:
                self._cond.notify_all()

    def request_later(self, key: Hashable, kinds: Iterable[str], delay: float) -> None:
        """``request(key, kinds, background=True)`` in ``delay`` seconds (unless ``forget(key)``
        comes first)."""
        kinds = frozenset(kinds)
        if delay <= 0:
            self.request(key, kinds, background=True)
            return
        with self._cond:
            if self._stopping or not kinds:
                return
            heapq.heappush(self._delayed, (self._clock() + delay, next(self._sequence), key, kinds))
            self._cond.notify_all()

    def forget(self, key: Hashable) -> None:
        with self._cond:
            self._state.forget(key)
            self._end_start_up(key)
            self._urgent.discard(key)
            self._defer.discard(key)
            self._rest_until.pop(key, None)
            self._resting_keys.discard(key)
            if any(entry[2] == key for entry in self._delayed):
                self._delayed = [entry for entry in self._delayed if entry[2] != key]
                heapq.heapify(self._delayed)
            self._cond.notify_all()

    def busy(self) -> bool:
        """Whether refreshes are pending, queued or running (delayed ones do not count)."""
        with self._cond:
            return not self._state.idle()

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block until nothing is pending, queued, delayed or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: (self._state.idle() and not self._delayed) or self._stopping,
                                       timeout)

    def stop(self, timeout: Optional[float] = None) -> None:
        with self._cond:
            self._stopping = True
            self._ready.clear()
            self._background.clear()
            self._deferred.clear()
            self._in_deferred.clear()
            self._defer.clear()
            self._urgent.clear()
            self._starting.clear()
            self._delayed = []
            self._resting, self._resting_keys = [], set()
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def alive_threads(self) -> int:
        return sum(1 for thread in self._threads if thread.is_alive())

    def _next_ready(self) -> Optional[Tuple[Hashable, bool]]:
        """Wait (the condition held) until a key may run or the scheduler stops; the key and
        whether it is background work, None when stopping."""
        while not self._stopping:
            now = self._clock()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, key, kinds = heapq.heappop(self._delayed)
                self._enqueue(key, kinds, True)
            self._wake_rested(now)
            if self._ready:
                return self._ready.popleft(), False
            if self._background_running < self._workers - self._reserved:
                if self._background:
                    return self._background.popleft(), True
                if self._deferred and not self._starting:
                    key = self._deferred.popleft()
                    self._in_deferred.discard(key)
                    return key, True
            due = [heap[0][0] for heap in (self._delayed, self._resting) if heap]
            self._cond.wait(min(due) - now if due else None)
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                chosen = self._next_ready()
                if chosen is None:
                    return
                key, background = chosen
                if not background:
                    self._urgent.discard(key)
                elif key in self._urgent or self._state.is_running(key):
                    continue  # promoted meanwhile: the entry that did serves it
                kinds = self._state.begin(key)
                self._defer.discard(key)
                if not kinds:
                    self._cond.notify_all()
                    continue
                self._background_running += background
            began = self._cpu_clock()
            try:
                self._refresh(key, kinds)
            except Exception as exc:  # the worker must survive any refresh failure
                if self._on_error is not None:
                    try:
                        self._on_error(key, kinds, exc)
                    except Exception:
                        LOG.exception("refresh error handler failed for %s", key)
                else:
                    LOG.warning("refresh of %s for %s failed: %s", ", ".join(sorted(kinds)), key, exc)
            finally:
                spent = self._cpu_clock() - began
                with self._cond:
                    self._background_running -= background
                    if spent > 0 and self._rest_factor:
                        self._rest_until[key] = self._clock() + spent * self._rest_factor
                    if self._state.finish(key) and not self._stopping:
                        # Requests came during the refresh: event-driven ones go first.
                        if self._rests(key):
                            self._put_to_rest(key)
                        elif key in self._urgent:
                            self._ready.append(key)
                        else:
                            self._queue_background(key)
                    self._cond.notify_all()
