"""HTTP over a Unix socket whose listener is busy (xcp-rrdd's backlog is 5, xapi's is finite too)."""

import errno
import socket
import threading

import pytest

from xscontainer.transport.unixhttp import UnixHTTPConnection


@pytest.fixture
def full_listener(tmp_path):
    """A listening socket whose backlog is full: the next connect() finds no room until an accept."""
    path = str(tmp_path / "busy.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    queued = []
    while True:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            probe.connect(path)
        except OSError as exc:
            probe.close()
            assert exc.errno == errno.EAGAIN, exc
            break
        queued.append(probe)
    try:
        yield path, listener
    finally:
        for sock in queued:
            sock.close()
        listener.close()


def _accept_all_after(listener, delay, stop):
    if stop.wait(delay):
        return
    listener.settimeout(0.1)
    accepted = []
    while not stop.is_set():
        try:
            accepted.append(listener.accept()[0])
        except socket.timeout:
            continue
    for sock in accepted:
        sock.close()


def test_connect_waits_for_room_in_a_full_backlog_within_its_timeout(full_listener):
    path, listener = full_listener
    stop = threading.Event()
    acceptor = threading.Thread(target=_accept_all_after, args=(listener, 0.3, stop))
    acceptor.start()
    connection = UnixHTTPConnection(path, timeout=10.0)
    try:
        connection.connect()  # a full backlog is a busy server, not a refused call
        assert connection.sock is not None
        assert connection.sock.gettimeout() == 10.0
    finally:
        connection.close()
        stop.set()
        acceptor.join()


def test_connect_to_a_backlog_that_stays_full_fails_at_its_timeout(full_listener):
    path, _ = full_listener
    connection = UnixHTTPConnection(path, timeout=0.3)
    with pytest.raises(socket.timeout):
        connection.connect()
    assert connection.sock is None


def test_connect_to_no_listener_fails_at_once(tmp_path):
    connection = UnixHTTPConnection(str(tmp_path / "absent.sock"), timeout=30.0)
    with pytest.raises(FileNotFoundError):
        connection.connect()
