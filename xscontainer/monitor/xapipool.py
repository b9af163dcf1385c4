"""A small pool of logged-in xapi sessions shared by the monitor's threads.

A ``XenAPI.Session`` is an ``xmlrpc.client.ServerProxy`` and must not be used by two threads at
once; one session per watcher would mean a thousand logins on a large host. Threads borrow one.
"""

import contextlib
import queue
import threading
from typing import Callable, Iterator, List

from xscontainer.xapi import Failure, Session
from xscontainer.xapi.session import close_session


class SessionPool:
    def __init__(self, factory: Callable[[], Session], size: int = 4) -> None:
        self._factory = factory
        self._idle = queue.LifoQueue()  # type: queue.LifoQueue
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._all = []  # type: List[Session]

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """Borrow a session; one that raised a connection error is dropped, not returned."""
        with self._slots:
            try:
                session = self._idle.get_nowait()
            except queue.Empty:
                session = self._factory()
                with self._lock:
                    self._all.append(session)
            try:
                yield session
            except (OSError, Failure) as exc:
                if isinstance(exc, OSError) or exc.details[:1] == ["SESSION_INVALID"]:
                    self._discard(session)
                    raise
                self._idle.put(session)
                raise
            except BaseException:
                self._idle.put(session)
                raise
            else:
                self._idle.put(session)

    def _discard(self, session: Session) -> None:
        with self._lock:
            if session in self._all:
                self._all.remove(session)
        close_session(session)

    def close(self) -> None:
        """Log out every idle session."""
        while True:
            try:
                self._discard(self._idle.get_nowait())
            except queue.Empty:
                return
