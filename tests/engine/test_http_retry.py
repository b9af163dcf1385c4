"""When the HTTP pool may send a request again: only when the engine provably did not act on it.

A reused keep-alive connection can turn out to be dead; a request that died on it is retried
on a new connection only if no byte of an answer came back and either the request never left
(the send failed) or the method is idempotent. ``POST .../restart`` is never delivered twice.
"""

import os
import socket
import tempfile
import threading

import pytest

from xscontainer.engine.http import HttpPool
from xscontainer.errors import ConnectionFailure
from xscontainer.transport.stream import SocketStream

from .unixserver import UnixServer, json_response, read_request

RESTART = "/v1.43/containers/web/restart"


class Engine(object):
    """A fake engine on a Unix socket: answers the first request of every connection in full;
    the second request of the first connection gets ``spoil`` (bytes, then EOF). Records every
    request line it read, across connections."""

    def __init__(self, spoil):
        self.spoil = spoil
        self.requests = []
        self._lock = threading.Lock()
        self._first = True
        self.dir = tempfile.mkdtemp(prefix="xsc-retry-")
        self.server = UnixServer(os.path.join(self.dir, "engine.sock"), self._handle)

    def _handle(self, conn):
        with self._lock:
            first, self._first = self._first, False
        served = 0
        while True:
            line = read_request(conn)
            if line is None:
                return
            with self._lock:
                self.requests.append(line)
            served += 1
            if first and served == 2:
                conn.sendall(self.spoil)
                return  # UnixServer closes the connection
            conn.sendall(json_response(b"{}"))

    def open_stream(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.server.path)
        return SocketStream(sock, self.server.path)

    def count(self, method, path):
        return len([r for r in self.requests if r.startswith("%s %s " % (method, path))])

    def close(self):
        self.server.close()
        os.rmdir(self.dir)


@pytest.fixture
def engine():
    made = []

    def make(spoil):
        made.append(Engine(spoil))
        return made[-1]
    yield make
    for each in made:
        each.close()


def _warm_pool(engine):
    pool = HttpPool(engine.open_stream)
    assert pool.request("GET", "/_ping").status == 200
    assert pool.idle_count() == 1  # the next request reuses this connection
    return pool


@pytest.mark.parametrize("spoil", [b"HTTP/1.1 204 No Cont", b"HTTP/1.1 204 No Content\r\n", b""],
                         ids=["part-of-the-status-line", "part-of-the-head", "nothing"])
def test_a_restart_is_never_delivered_twice(engine, spoil):
    fake = engine(spoil)
    pool = _warm_pool(fake)
    with pytest.raises(ConnectionFailure) as info:
        pool.request("POST", RESTART)
    assert info.value.code == "CONNECTION_LOST"
    assert fake.count("POST", RESTART) == 1
    pool.close()


def test_a_get_without_any_answer_on_a_reused_connection_is_sent_again(engine):
    fake = engine(b"")
    pool = _warm_pool(fake)
    assert pool.request("GET", "/v1.43/containers/json").status == 200
    assert fake.count("GET", "/v1.43/containers/json") == 2
    pool.close()


def test_a_get_answered_in_part_is_not_sent_again(engine):
    fake = engine(b"HTTP/1.1 200 OK\r\nContent-Le")
    pool = _warm_pool(fake)
    with pytest.raises(ConnectionFailure):
        pool.request("GET", "/v1.43/containers/json")
    assert fake.count("GET", "/v1.43/containers/json") == 1
    pool.close()
