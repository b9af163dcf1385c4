"""XML-RPC over xapi's local Unix socket: one keep-alive connection per session, each request
written at once, each reply read whole and parsed in C.

``xmlrpc.client`` over ``http.client`` costs twice the CPU of the call itself (headers put one by
one, the request written in two sends, the reply's headers parsed by the email package): with a
thousand VMs the monitor's writes were a third of its CPU (bench/xapi_call.py).
"""

import gzip
import http.client
import socket
import xmlrpc.client
from typing import Any, Dict, List, Optional, Tuple

import XenAPI

from xscontainer.xapi.xmlrpcparse import parse_reply, tree_parser

MAX_HEAD_BYTES = 64 * 1024
# Reads go into one buffer per connection: ``recv(n)`` allocates n bytes each time, and above
# malloc's mmap threshold (128 KiB) every read of a small reply cost page faults.
_READ_SIZE = 64 * 1024


class ReplyHead(object):
    """A reply's status line and headers (names lower-cased)."""

    def __init__(self, status: int, reason: str, headers: Dict[str, str]) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def length(self) -> Optional[int]:
        text = self.headers.get("content-length")
        if text is None or self.chunked:
            return None
        if not text.strip().isdigit():
            raise http.client.HTTPException("xapi sent a bad Content-Length: %r" % text)
        return int(text)

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def parse_head(raw: bytes) -> ReplyHead:
    """The status line and headers of a reply, without the blank line that ends them."""
    lines = raw.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise http.client.BadStatusLine(lines[0])
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise http.client.HTTPException("xapi sent a malformed header line: %r" % line[:80])
        headers[name.strip().lower()] = value.strip()
    return ReplyHead(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


def request_bytes(handler: str, body: bytes, headers: List[Tuple[str, str]]) -> bytes:
    lines = ["POST %s HTTP/1.1" % handler, "Host: localhost", "Content-Type: text/xml"]
    lines += ["%s: %s" % pair for pair in headers]
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1") + body


class _Reader(object):
    """Buffered reads of one connection; what a reply leaves unread stays for the next."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._space = bytearray(_READ_SIZE)

    def _recv(self) -> bytes:
        count = self._sock.recv_into(self._space)
        return bytes(self._space[:count])

    def _fill(self, received_nothing_yet: bool = False) -> None:
        data = self._recv()
        if not data:
            if received_nothing_yet:  # an idle keep-alive connection xapi had closed: resend
                raise http.client.RemoteDisconnected("xapi closed the connection without answering")
            raise http.client.IncompleteRead(self._buffer)
        self._buffer += data

    def head(self) -> ReplyHead:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                raw, self._buffer = self._buffer[:end], self._buffer[end + 4:]
                return parse_head(raw)
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise http.client.HTTPException("xapi's reply headers exceed %d bytes" % MAX_HEAD_BYTES)
            self._fill(received_nothing_yet=not self._buffer)

    def line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 2:]
                return line
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise http.client.HTTPException("xapi sent a chunk-size line of over %d bytes" % MAX_HEAD_BYTES)
            self._fill()

    def exactly(self, count: int) -> bytes:
        if len(self._buffer) >= count:
            data, self._buffer = self._buffer[:count], self._buffer[count:]
            return data
        whole = bytearray(count)
        view = memoryview(whole)
        have = len(self._buffer)
        view[:have] = self._buffer
        self._buffer = b""
        while have < count:
            got = self._sock.recv_into(view[have:])
            if not got:
                raise http.client.IncompleteRead(bytes(whole[:have]), count - have)
            have += got
        return bytes(whole)

    def until_close(self) -> bytes:
        parts = [self._buffer]
        self._buffer = b""
        while True:
            data = self._recv()
            if not data:
                return b"".join(parts)
            parts.append(data)

    def chunks(self) -> bytes:
        parts = []
        while True:
            size_text = self.line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise http.client.HTTPException("xapi sent a bad chunk size: %r" % size_text[:20])
            if size == 0:
                while self.line():  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(self.exactly(size))
            if self.exactly(2) != b"\r\n":
                raise http.client.HTTPException("a chunk of xapi's reply does not end with CRLF")

    def body(self, head: ReplyHead) -> bytes:
        if head.chunked:
            return self.chunks()
        if head.length is not None:
            return self.exactly(head.length)
        return self.until_close()


class LocalSocketTransport(XenAPI.UDSTransport):
    """The transport of a session over xapi's Unix socket (a ``XenAPI.Session`` uses it from one
    thread at a time). Every send and read waits at most ``timeout`` seconds (socket.timeout,
    an OSError). The headers XenAPI adds (trace context, originator) are sent with each call."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self._sock = None  # type: Optional[socket.socket]
        self._reader = None  # type: Optional[_Reader]

    def getparser(self):
        return tree_parser(self._use_datetime, self._use_builtin_types)

    def _connected(self, host: str) -> _Reader:
        if self._reader is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self._timeout)
                sock.connect(host.replace("_", "/"))  # XenAPI's spelling of the path in the URL
            except BaseException:
                sock.close()
                raise
            self._sock, self._reader = sock, _Reader(sock)
        return self._reader

    def _extra(self) -> List[Tuple[str, str]]:
        self._extra_headers = []
        self.with_tracecontext()
        self.with_originator()
        return [("User-Agent", self.user_agent)] + list(self._extra_headers)

    def single_request(self, host: str, handler: str, request_body: bytes, verbose: bool = False) -> Any:
        try:
            reader = self._connected(host)
            self._sock.sendall(request_bytes(handler, request_body, self._extra()))
            head = reader.head()
            body = reader.body(head)
        except BaseException:
            self.close()  # its state is unknown: the next call starts a new connection
            raise
        if head.closes or (head.length is None and not head.chunked):
            self.close()
        if head.status != 200:
            raise xmlrpc.client.ProtocolError(host + handler, head.status, head.reason, head.headers)
        if head.headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return parse_reply(body, self._use_datetime, self._use_builtin_types)

    def close(self) -> None:
        sock, self._sock, self._reader = self._sock, None, None
        if sock is not None:
            sock.close()
        super().close()
