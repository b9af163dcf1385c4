"""A scripted HTTP peer on a Unix socket for the client tests (runs standalone too: ``python
unixserver.py PATH old-engine`` serves an engine that speaks API 1.23, for the testbed)."""

import os
import socket
import sys
import threading


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def request_targets(conn):
    """The target of each request on ``conn``, until the peer closes."""
    while True:
        line = read_request(conn)
        if line is None:
            return
        yield line.split()[1]


def json_response(body, status="200 OK", extra=""):
    return ("HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
            % (status, extra, len(body))).encode() + body


def old_engine(conn):
    """Answers like Docker 1.11 (API 1.23): no API-Version header on /_ping."""
    while True:
        line = read_request(conn)
        if line is None:
            return
        if " /_ping " in line:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
        elif "/version" in line:
            conn.sendall(json_response(b'{"Version":"1.11.2","ApiVersion":"1.23"}'))
        else:
            conn.sendall(json_response(b'{"message":"client is newer than server"}', "400 Bad Request"))


class UnixServer(object):
    """Accepts connections on ``path`` and runs ``handler(conn)`` for each in its own thread."""

    def __init__(self, path, handler):
        self.path = path
        self.handler = handler
        self.connections = 0
        self.requests = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(16)
        self._stop = threading.Event()
        self._threads = []
        self._conns = []
        self._acceptor = threading.Thread(target=self._accept, name="unixserver")
        self._acceptor.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,))
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn):
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join()
        for thread in self._threads:
            thread.join()
        if os.path.exists(self.path):
            os.unlink(self.path)


if __name__ == "__main__":
    if os.path.exists(sys.argv[1]):
        os.unlink(sys.argv[1])
    server = UnixServer(sys.argv[1], {"old-engine": old_engine}[sys.argv[2]])
    os.chmod(sys.argv[1], 0o666)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.close()
