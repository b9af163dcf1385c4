"""The local-socket XML-RPC transport against a server whose every byte the test chooses: keep-alive,
the ways xapi may frame or end a reply, and what a broken connection leaves behind."""

import gzip
import os
import socket
import tempfile
import threading
import xmlrpc.client

import pytest
import XenAPI

from xscontainer.xapi.localhttp import LocalSocketTransport, parse_head
from xscontainer.xapi.session import TRANSPORT_ERRORS, local_session_object


def success(value):
    return xmlrpc.client.dumps(({"Status": "Success", "Value": value},), methodresponse=True).encode()


def framed(body, headers=()):
    head = ["HTTP/1.1 200 OK", "Content-Length: %d" % len(body)] + list(headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(body, size=7):
    pieces = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(pieces) + b"0\r\n\r\n"


class Cut(bytes):
    """Sent, then the connection is closed."""


class CannedServer(object):
    """A Unix-socket server that answers the n-th request of the n-th connection with
    ``script[connection][request]``: bytes to send, ``Cut`` bytes to send before closing, or None
    to close without answering."""

    def __init__(self, script):
        self.dir = tempfile.mkdtemp(prefix="xsl")
        while "_" in self.dir:  # XenAPI spells the path in a URL host, with '_' for '/'
            os.rmdir(self.dir)
            self.dir = tempfile.mkdtemp(prefix="xsl")
        self.path = os.path.join(self.dir, "xapi")
        self.script = script
        self.requests = []  # (connection index, request bytes)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(5)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        for index, answers in enumerate(self.script):
            conn, _ = self._listener.accept()
            with conn:
                for answer in answers:
                    request = self._read_request(conn)
                    if request is None:
                        break
                    self.requests.append((index, request))
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if isinstance(answer, Cut):
                        break
                else:
                    self._read_request(conn)  # until the client closes

    @staticmethod
    def _read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return None
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][0])
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def session(self, timeout=5.0):
        return local_session_object(self.path, timeout)

    def close(self):
        self._listener.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


@pytest.fixture
def serve():
    servers = []

    def start(script):
        servers.append(CannedServer(script))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def test_calls_share_one_connection_and_each_request_is_whole_http(serve):
    server = serve([[framed(success("OpaqueRef:%d" % n)) for n in range(5)]])
    session = server.session()
    assert [session.xenapi.VM.get_by_uuid("u%d" % n) for n in range(5)] == ["OpaqueRef:%d" % n for n in range(5)]
    assert [index for index, _ in server.requests] == [0] * 5
    head, _, body = server.requests[0][1].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST / HTTP/1.1"
    assert "Content-Length: %d" % len(body) in lines and "Content-Type: text/xml" in lines
    assert xmlrpc.client.loads(body)[1] == "VM.get_by_uuid"


def test_chunked_and_gzipped_replies_are_read(serve):
    body = success(["x" * 300] * 50)
    zipped = gzip.compress(body)
    server = serve([[chunked(body), framed(zipped, ["Content-Encoding: gzip"])]])
    session = server.session()
    assert session.xenapi.VM.get_all() == ["x" * 300] * 50
    assert session.xenapi.VM.get_all() == ["x" * 300] * 50


def test_a_large_reply_arrives_whole(serve):
    value = ["r%06d" % n for n in range(200000)]
    server = serve([[framed(success(value))]])
    assert server.session().xenapi.VM.get_all() == value


def test_connection_close_is_honoured(serve):
    server = serve([[framed(success("a"), ["Connection: close"])], [framed(success("b"))]])
    session = server.session()
    assert session.xenapi.VM.get_all() == "a"
    assert session.xenapi.VM.get_all() == "b"
    assert [index for index, _ in server.requests] == [0, 1]


def test_an_idle_connection_xapi_closed_is_replaced_without_an_error(serve):
    server = serve([[framed(success("a")), None], [framed(success("b"))]])
    session = server.session()
    assert session.xenapi.VM.get_all() == "a"
    assert session.xenapi.VM.get_all() == "b"  # sent again on a new connection, as xmlrpc.client does
    assert [index for index, _ in server.requests] == [0, 0, 1]


def test_an_http_error_raises_protocol_error_and_the_next_call_starts_afresh(serve):
    page = b"HTTP/1.1 500 Internal Error\r\nConnection: close\r\nContent-Length: 5\r\n\r\noops!"
    server = serve([[page], [framed(success("b"))]])
    session = server.session()
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        session.xenapi.VM.get_all()
    assert caught.value.errcode == 500
    assert session.xenapi.VM.get_all() == "b"


def test_a_reply_cut_short_is_a_transport_error_and_the_next_call_starts_afresh(serve):
    whole = framed(success("long value" * 100))
    server = serve([[Cut(whole[:len(whole) // 2])], [framed(success("b"))]])
    session = server.session()
    with pytest.raises(TRANSPORT_ERRORS):
        session.xenapi.VM.get_all()
    assert session.xenapi.VM.get_all() == "b"


def test_a_silent_xapi_times_out(serve):
    server = serve([[b""]])  # reads the request, answers nothing, keeps the connection
    session = server.session(timeout=0.3)
    with pytest.raises(socket.timeout):
        session.xenapi.VM.get_all()


def test_xapi_failures_come_back_as_xenapi_failures(serve):
    failure = xmlrpc.client.dumps(({"Status": "Failure", "ErrorDescription": ["HANDLE_INVALID", "VM", "x"]},),
                                  methodresponse=True).encode()
    server = serve([[framed(failure)]])
    with pytest.raises(XenAPI.Failure) as caught:
        server.session().xenapi.VM.get_record("x")
    assert caught.value.details == ["HANDLE_INVALID", "VM", "x"]


@pytest.mark.parametrize("raw", [b"SSH-2.0-OpenSSH", b"HTTP/1.1 OK", b"HTTP/1.1 200 OK\r\nno colon here"])
def test_a_head_that_is_not_http_is_refused(raw):
    with pytest.raises(TRANSPORT_ERRORS):
        parse_head(raw)


def test_the_transport_is_the_local_sessions():
    assert isinstance(local_session_object("/nonexistent/xapi")._ServerProxy__transport, LocalSocketTransport)
