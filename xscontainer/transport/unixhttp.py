"""http.client over a Unix socket (xapi's, xcp-rrdd's): only ``connect`` differs."""

import errno
import http.client
import socket
import time
from typing import Optional

from xscontainer.backoff import Backoff

# A listener whose backlog is full makes a connect() with a time-out fail at once with EAGAIN
# (Linux, AF_UNIX): that is a busy server, so try again, sooner first, until the time-out.
FIRST_RETRY = 0.005
LONGEST_RETRY = 0.1


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: Optional[float] = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        retry = Backoff(FIRST_RETRY, LONGEST_RETRY)
        while True:
            try:
                self.sock = self._connect_once()
                return
            except OSError as exc:
                if exc.errno != errno.EAGAIN or deadline is None:
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout("%s did not accept a connection within %gs (its listen backlog "
                                         "stayed full)" % (self._socket_path, self.timeout)) from None
                time.sleep(min(retry.next_delay(), remaining))

    def _connect_once(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        return sock
