"""The byte-stream seam: what every transport hands to the HTTP client above (an SSH channel, a
TLS socket, a Unix socket, a stream spliced through the monitor)."""

import contextlib
import select
import socket
import threading
from typing import Iterator, Optional


class Stream(object):
    """What a transport hands the HTTP client (``engine.http``): a connected, socket-like byte stream.

    Subclasses (or wrapped objects) need ``sendall``, ``recv``, ``settimeout``, ``close``;
    ``alive()`` lets the pool drop an idle stream whose transport died before reusing it.
    """

    def __init__(self, sock, description: str = "stream") -> None:
        self._sock = sock
        self.description = description

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def recv(self, size: int) -> bytes:
        return self._sock.recv(size)

    def settimeout(self, timeout: Optional[float]) -> None:
        self._sock.settimeout(timeout)

    def close(self) -> None:
        try:
            self._sock.close()
        except (OSError, EOFError):
            pass

    def close_write(self) -> None:
        """Tell the peer we send no more (a hijacked exec's stdin ends); reading goes on."""
        self._sock.shutdown(socket.SHUT_WR)

    def alive(self) -> bool:
        """False when an idle stream can no longer carry a request (peer closed, transport died)."""
        return True

    def broken(self) -> Optional[str]:
        """Why the underlying transport is dead, or None (used to explain an EOF)."""
        return None


class SocketStream(Stream):
    """A plain or TLS socket: idle liveness is "nothing readable" (an idle HTTP peer sends
    nothing; readable means EOF or stray bytes, either way unusable).

    ``close()`` from another thread shuts the socket down at once, which wakes a thread in
    ``recv`` or ``sendall``, and leaves closing the descriptor to the last of them: closed under
    a thread about to wait on it, its number went to the next connection, whose socket the old
    reader then read."""

    def __init__(self, sock, description: str = "stream") -> None:
        super().__init__(sock, description)
        self._lock = threading.Lock()
        self._users = 0  # threads inside recv or sendall
        self._closing = False

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[None]:
        with self._lock:
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                last = self._closing and not self._users
            if last:
                super().close()

    def sendall(self, data: bytes) -> None:
        with self._in_use():
            self._sock.sendall(data)

    def recv(self, size: int) -> bytes:
        with self._in_use():
            return self._sock.recv(size)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in another thread
        except OSError:
            pass
        with self._lock:
            self._closing = True
            unused = not self._users
        if unused:
            super().close()

    def alive(self) -> bool:
        try:
            if getattr(self._sock, "pending", None) and self._sock.pending():
                return False
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable
