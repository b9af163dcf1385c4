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
    """

    def __init__(self, refresh: Callable[[Hashable, FrozenSet[str]], None], workers: int = 4,
                 on_error: Optional[Callable[[Hashable, FrozenSet[str], BaseException], None]] = None,
                 name: str = "xscontainer-refresh", clock: Callable[[], float] = time.monotonic,
                 reserved: Optional[int] = None) -> None:
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
        self._urgent = set()  # type: Set[Hashable]  # keys with an event-driven request pending
        self._background_running = 0
        self._threads = []  # type: List[threading.Thread]
        self._stopping = False
        self._clock = clock
        self._delayed = []  # type: List[Tuple[float, int, Hashable, FrozenSet[str]]]  # a heap
        self._sequence = itertools.count()

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

    def request(self, key: Hashable, kinds: Iterable[str], background: bool = False) -> None:
        """Ask for a refresh of ``kinds`` of ``key``; never blocks on a refresh. ``background``:
        start-up work, served after event-driven requests (see the class)."""
        kinds = frozenset(kinds)
        with self._cond:
            if self._stopping or not kinds:
                return
            self._enqueue(key, kinds, background)
            self._cond.notify_all()

    def _enqueue(self, key: Hashable, kinds: FrozenSet[str], background: bool) -> None:
        """Mark and queue (the condition held)."""
        queued = self._state.mark(key, kinds)
        if background:
            if queued:
                self._background.append(key)
            return
        if key not in self._urgent:
            self._urgent.add(key)
            # Queued already as background (or not at all): now it is event-driven. A stale
            # entry left in the background queue finds nothing to do (``begin`` is empty).
            if queued or not self._state.is_running(key):
                self._ready.append(key)

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
            self._urgent.discard(key)
            if any(entry[2] == key for entry in self._delayed):
                self._delayed = [entry for entry in self._delayed if entry[2] != key]
                heapq.heapify(self._delayed)
            self._cond.notify_all()

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
            self._urgent.clear()
            self._delayed = []
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
            if self._ready:
                return self._ready.popleft(), False
            if self._background and self._background_running < self._workers - self._reserved:
                return self._background.popleft(), True
            self._cond.wait(self._delayed[0][0] - now if self._delayed else None)
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
                elif key in self._urgent:  # promoted meanwhile: its event-driven entry serves it
                    continue
                kinds = self._state.begin(key)
                if not kinds:
                    self._cond.notify_all()
                    continue
                self._background_running += background
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
                with self._cond:
                    self._background_running -= background
                    if self._state.finish(key) and not self._stopping:
                        # Requests came during the refresh: event-driven ones go first.
                        if key in self._urgent:
                            self._ready.append(key)
                        else:
                            self._background.append(key)
                    self._cond.notify_all()
