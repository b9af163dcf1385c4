"""A socket stream closed while another thread reads it (the watcher's event stream, closed by a
failed refresh or a stop): the reader wakes at once, and the descriptor is not closed under it.
Closed under a thread about to wait on it, its number went to the next connection, whose socket
the old reader then read (the defect paramiko's reader had too, see test_ssh_tunnel)."""

import socket
import threading

from waiting import wait_for
from xscontainer.transport.stream import SocketStream


class WatchedSocket:
    """A socket that records a close while a recv is under way; a recv that returned stays
    "under way" until ``leave`` is set (a reader the interpreter has not scheduled yet)."""

    def __init__(self, sock):
        self._sock = sock
        self.inside = 0
        self.closed_while_inside = None
        self.leave = threading.Event()

    def recv(self, size):
        self.inside += 1
        try:
            return self._sock.recv(size)
        finally:
            self.leave.wait(10)
            self.inside -= 1

    def shutdown(self, how):
        self._sock.shutdown(how)

    def close(self):
        if self.closed_while_inside is None:
            self.closed_while_inside = self.inside
        self._sock.close()

    def fileno(self):
        return self._sock.fileno()


def test_the_descriptor_is_closed_once_the_reader_has_left_recv():
    ours, peer = socket.socketpair()
    watched = WatchedSocket(ours)
    stream = SocketStream(watched, "test")
    got = []
    reader = threading.Thread(target=lambda: got.append(stream.recv(10)))
    reader.start()
    try:
        wait_for(lambda: watched.inside, timeout=10, what="the reader inside recv")
        stream.close()  # the shut-down wakes the reader; it has yet to leave
        assert watched.closed_while_inside is None
    finally:
        watched.leave.set()
        reader.join(10)
        peer.close()
    assert got == [b""] and watched.closed_while_inside == 0 and ours.fileno() == -1


def test_a_stream_nobody_reads_is_closed_at_once():
    ours, peer = socket.socketpair()
    stream = SocketStream(ours, "test")
    stream.close()
    assert ours.fileno() == -1
    peer.close()
