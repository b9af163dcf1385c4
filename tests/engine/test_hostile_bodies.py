"""What a hostile engine can put in a JSON body ends in a protocol error with a code, never in an
internal error: the Docker client against a scripted peer on a real Unix socket, and the event
stream splitter with literal inputs."""

import os
import socket
import sys
import tempfile
import threading
import time

import pytest

from xscontainer.engine.client import DockerClient
from xscontainer.engine.http import HttpPool
from xscontainer.engine.streams import JsonStreamSplitter, decode_json_body
from xscontainer.errors import EngineError
from xscontainer.transport.stream import SocketStream

from .unixserver import UnixServer, json_response, read_request

DEEP = 100000  # far beyond Python's recursion limit: json.loads alone raises RecursionError


def nested(depth, inner=b"1"):
    return b"[" * depth + inner + b"]" * depth


@pytest.fixture
def engine_answering():
    """A DockerClient whose engine answers every request with the given status and body."""
    servers = []
    directory = tempfile.mkdtemp(prefix="xsc-hostile-")

    def start(body, status="200 OK", raw=None):
        """Answer with ``body`` as JSON, or with the ``raw`` response when given."""
        def handler(conn):
            while read_request(conn) is not None:
                conn.sendall(raw if raw is not None else json_response(body, status))
        server = UnixServer(os.path.join(directory, "s%d.sock" % len(servers)), handler)
        servers.append(server)

        def open_stream():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(server.path)
            return SocketStream(sock, server.path)

        class Api(DockerClient):
            def _negotiate(self, ping=None):
                return (1, 41)
        client = Api(HttpPool(open_stream), "vm-uuid")
        client.server = server
        return client
    yield start
    for server in servers:
        server.close()
    os.rmdir(directory)


@pytest.mark.parametrize("body", [nested(DEEP), b'{"a":' * DEEP + b"1" + b"}" * DEEP,
                                  b'[{"a":' * (DEEP // 2) + b"{}" + b"}]" * (DEEP // 2)],
                         ids=["arrays", "objects", "both"])
def test_deeply_nested_json_is_a_protocol_error(engine_answering, body):
    client = engine_answering(body)
    with pytest.raises(EngineError) as info:
        client.containers()
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"
    assert "nest" in info.value.message
    client.close()


def test_nesting_inside_strings_does_not_count(engine_answering):
    client = engine_answering(b'[{"Names": ["' + b"[{" * 5000 + b'\\"]"]}]')
    assert client.containers() == [{"Names": ["[{" * 5000 + '"]']}]
    client.close()


def test_ordinary_docker_nesting_is_accepted(engine_answering):
    client = engine_answering(b'{"Id": "x", "Config": ' + nested(40, b'{"a": {"b": 1}}') + b"}")
    record = client.inspect("a" * 64)
    assert record["Id"] == "x"
    client.close()


def test_a_deeply_nested_error_body_still_gives_the_engine_error(engine_answering):
    client = engine_answering(b'{"message": ' + nested(DEEP) + b"}", "500 Internal Server Error")
    with pytest.raises(EngineError) as info:
        client.containers()
    assert info.value.code == "ENGINE_ERROR" and info.value.details["status"] == 500


def test_deeply_nested_event_is_a_protocol_error():
    splitter = JsonStreamSplitter()
    with pytest.raises(EngineError) as info:
        splitter.feed(b'{"Type": "container", "Actor": ' + nested(DEEP) + b"}\n")
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"
    # Refused while it arrives: no need to wait for (or keep) the rest of the value.
    splitter = JsonStreamSplitter()
    with pytest.raises(EngineError) as info:
        for start in range(0, DEEP, 4096):
            splitter.feed(b"[" * 4096)
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"


def test_a_body_that_would_inflate_into_millions_of_objects_is_too_large(engine_answering):
    # 7 MB, far below the 64 MiB body bound, but 2.5 million dicts (about 160 MB of Python
    # objects) once decoded: refused before decoding.
    client = engine_answering(b"[" + b",".join([b"{}"] * 2500000) + b"]")
    with pytest.raises(EngineError) as info:
        client.containers()
    assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"
    assert "values" in info.value.message
    client.close()


def test_a_large_ordinary_container_list_is_accepted(engine_answering):
    entry = (b'{"Id": "%064d", "Names": ["/web"], "Image": "nginx", "State": "running", "Status": "Up",'
             b' "Labels": {"a": "1", "b": "2"}, "Ports": [{"PrivatePort": 80, "Type": "tcp"}]}')
    client = engine_answering(b"[" + b",".join(entry % i for i in range(5000)) + b"]")
    assert len(client.containers()) == 5000
    client.close()


@pytest.mark.parametrize("depth,refused", [(100, False), (101, True), (500, True)])
def test_the_nesting_bound_is_100_levels(engine_answering, depth, refused):
    # 500 levels decode within Python's recursion limit: the bound is ours, not the interpreter's.
    client = engine_answering(nested(depth))
    if refused:
        with pytest.raises(EngineError) as info:
            client.containers()
        assert info.value.code == "ENGINE_PROTOCOL_ERROR"
    else:
        value = client.containers()
        for _ in range(depth - 1):
            value = value[0]
        assert value == [1]
    client.close()


def test_one_byte_chunks_through_the_client_give_the_same_answer(engine_answering):
    # The whole path (socket reads, parser, HTTP client, JSON) on a body sent as 1-byte chunks;
    # that it costs time linear in the body is tests/engine/test_linear.py's business.
    entry = b'{"Id": "%064d", "Names": ["/web"], "State": "running"}'
    body = b"[" + b",".join(entry % i for i in range(200)) + b"]"
    client = engine_answering(None, raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              + b"".join(b"1\r\n%s\r\n" % body[i:i + 1] for i in range(len(body))) + b"0\r\n\r\n")
    containers = client.containers()
    assert len(containers) == 200 and containers[7]["Id"] == "%064d" % 7
    assert len(client.containers()) == 200  # and the connection is reusable afterwards
    assert client.server.connections == 1
    client.close()


class Ticker:
    """A thread that wakes every millisecond (as a watcher waiting on its socket does) and, each
    time it gets the GIL, counts whether the main thread was in the middle of decoding JSON."""

    def __init__(self):
        self.mid_decode = 0
        self.count = 0
        self._main = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.count += 1
            self.mid_decode += self._main_is_decoding()
            time.sleep(0.001)

    def _main_is_decoding(self):
        frame = sys._current_frames().get(self._main)
        while frame is not None:
            if frame.f_code.co_filename.endswith(os.path.join("json", "decoder.py")):
                return True
            frame = frame.f_back
        return False

    def stop(self):
        self._stop.set()
        self._thread.join()


LARGE_LIST = (b"[" + b",".join(
    b'{"Id": "%064d", "Names": ["/web%d"], "Image": "nginx", "State": "running", "Status": "Up 2 hours",'
    b' "Labels": {"com.example.a": "1", "com.example.b": "%d"}, "Ports": [{"PrivatePort": 80, "Type": "tcp"}],'
    b' "Mounts": [], "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}}}' % (i, i, i)
    for i in range(30000)) + b"]")


@pytest.mark.parametrize("text", [LARGE_LIST, b"\n " + LARGE_LIST + b" \r\n"], ids=["bare", "spaced"])
def test_decoding_a_large_list_lets_the_other_threads_run(text):
    # json.loads holds the GIL for the whole of a large list (0.2-0.5 s for a guest's 12 MB
    # container list), and every other VM's watcher waits meanwhile (issue 13).
    ticker = Ticker()
    try:
        while ticker.count < 3:  # it runs
            time.sleep(0.001)
        value = decode_json_body(text)
    finally:
        ticker.stop()
    assert len(value) == 30000 and value[29999]["Labels"]["com.example.b"] == "29999"
    # Holding the GIL throughout, the decoder is never seen at work by another thread.
    assert ticker.mid_decode >= 10, "another thread ran %d times in the middle of the decoding" % ticker.mid_decode


@pytest.mark.parametrize("tail", [b",]", b"] x", b"]]", b"}", b" 1]", b""])
def test_a_large_list_is_refused_as_json_refuses_it(tail):
    body = LARGE_LIST[:-1] + tail
    with pytest.raises(EngineError) as info:
        decode_json_body(body)
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"
