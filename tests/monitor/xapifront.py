"""A proxy in front of the simulator's Unix socket that can spoil the answers to ``event.from``:
how xapi looks to a client while it goes down (a response cut short, a connection closed
before the answer) or when something between is broken (garbage, a malformed value).

Everything else is relayed unchanged, one upstream connection per client connection.
"""

import os
import re
import socket
import threading

# What a spoiled event.from answer looks like; each is one way a real client sees it.
CUT_BODY = "cut-body"          # head and half the body, then EOF (the original ExpatError)
CUT_HEAD = "cut-head"          # part of the status line, then EOF (http.client.HTTPException)
NO_ANSWER = "no-answer"        # EOF before any byte (RemoteDisconnected)
GARBAGE_HEAD = "garbage-head"  # not HTTP at all (BadStatusLine)
BAD_XML = "bad-xml"            # HTTP 200 with broken XML (ExpatError)
NOT_XMLRPC = "not-xmlrpc"      # well-formed XML that is not a methodResponse (ResponseError)
HTTP_ERROR = "http-error"      # HTTP 500 (xmlrpc.client.ProtocolError)
WRONG_SHAPE = "wrong-shape"    # a successful call whose value is not an event batch
MODES = (CUT_BODY, CUT_HEAD, NO_ANSWER, GARBAGE_HEAD, BAD_XML, NOT_XMLRPC, HTTP_ERROR, WRONG_SHAPE)


def _read_message(sock, buffered=b""):
    """One HTTP message (head + Content-Length body) from ``sock``; (message, rest) or None at EOF."""
    data = buffered
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return None
        data += piece
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        piece = sock.recv(65536)
        if not piece:
            return None
        rest += piece
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def _xml_answer(value_xml, status=b"200 OK"):
    body = (b"<?xml version='1.0'?>\n<methodResponse><params><param><value>" + value_xml
            + b"</value></param></params></methodResponse>\n")
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body)


class XapiFront(object):
    """Listens on ``path``, relays to ``upstream``; ``spoil(mode)`` spoils the next event.from."""

    def __init__(self, path, upstream):
        self.path = path
        self.upstream = upstream
        self._lock = threading.Lock()
        self._pending = []
        self.spoiled = []  # modes applied so far
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(16)
        self._conns = []
        self._threads = []
        self._acceptor = threading.Thread(target=self._accept, name="xapifront")
        self._acceptor.start()

    def spoil(self, mode):
        assert mode in MODES
        with self._lock:
            self._pending.append(mode)

    def _take(self):
        with self._lock:
            return self._pending.pop(0) if self._pending else None

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), name="xapifront-conn")
            with self._lock:
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(self.upstream)
            with self._lock:
                self._conns.append(up)
            rest, up_rest = b"", b""
            while True:
                got = _read_message(conn, rest)
                if got is None:
                    return
                request, rest = got
                mode = self._take() if re.search(rb"<methodName>event[._]from</methodName>", request) else None
                if mode is not None:
                    self._spoiled(conn, up, request, up_rest, mode)
                    return
                up.sendall(request)
                answer = _read_message(up, up_rest)
                if answer is None:
                    return
                response, up_rest = answer
                conn.sendall(response)
        except OSError:
            pass
        finally:
            up.close()
            conn.close()

    def _spoiled(self, conn, up, request, up_rest, mode):
        if mode == CUT_BODY:
            up.sendall(request)
            response, _ = _read_message(up, up_rest)
            head, body = response.split(b"\r\n\r\n", 1)
            conn.sendall(head + b"\r\n\r\n" + body[:len(body) // 2])
        elif mode == CUT_HEAD:
            conn.sendall(b"HTTP/1.1 20")
        elif mode == GARBAGE_HEAD:
            conn.sendall(b"\x00\xffxapi is restarting\r\n\r\n")
        elif mode == BAD_XML:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n<methodResponse><par")
        elif mode == NOT_XMLRPC:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n<?xml version='1.0'?>")
        elif mode == HTTP_ERROR:
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        elif mode == WRONG_SHAPE:
            conn.sendall(_xml_answer(b"<struct><member><name>Status</name><value>Success</value></member>"
                                     b"<member><name>Value</name><value>not a batch</value></member>"
                                     b"</struct>"))
        with self._lock:
            self.spoiled.append(mode)

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join()
        for thread in list(self._threads):
            thread.join()
        if os.path.exists(self.path):
            os.unlink(self.path)
