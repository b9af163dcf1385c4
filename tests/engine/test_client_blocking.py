"""No call of the Docker client waits behind another one's network I/O: an engine connection
that never answers holds up only the call that uses it."""

import os
import socket
import tempfile
import threading

from xscontainer.engine.client import DockerClient
from xscontainer.engine.http import HttpPool
from xscontainer.errors import ConnectionFailure
from xscontainer.transport.stream import SocketStream

from .unixserver import UnixServer, json_response, read_request


def test_a_hung_version_negotiation_does_not_block_other_calls():
    release = threading.Event()
    pings = []

    def engine(conn):  # the first /_ping is never answered (until the end of the test)
        while True:
            line = read_request(conn)
            if line is None:
                return
            if " /_ping " in line:
                pings.append(line)
                if len(pings) == 1:
                    release.wait(30)
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\nOK")
            else:
                conn.sendall(json_response(b"[]"))
    directory = tempfile.mkdtemp(prefix="xsc-neg-")
    server = UnixServer(os.path.join(directory, "engine.sock"), engine)

    def open_stream():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(server.path)
        return SocketStream(sock, server.path)
    client = DockerClient(HttpPool(open_stream))

    def hung_call():
        try:
            client.containers()
        except ConnectionFailure:  # the engine closes the hung connection at the end
            pass
    first = threading.Thread(target=hung_call, daemon=True)
    try:
        first.start()
        while not pings:  # the first call is now waiting for its /_ping answer
            release.wait(0.01)
        result = []
        second = threading.Thread(target=lambda: result.append(client.containers()), daemon=True)
        second.start()
        second.join(20)  # bounds a failing test only
        assert result == [[]], "a call waits behind another call's unanswered version negotiation"
        assert client.api_version == "1.43"
    finally:
        release.set()
        first.join(30)
        client.close()
        server.close()
        os.rmdir(directory)
