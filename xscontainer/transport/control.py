"""The client side of the monitor's control socket (the server is ``xscontainer.monitor.control``),
shared by the plugin and the CLI: ask the monitor an operation, or open a byte stream to a VM's
engine through the monitor's warm connection.

One JSON request line in, one JSON response line out, on a root-only Unix socket.
"""

import json
import os
import socket
from typing import Any, Dict

from xscontainer.errors import ConnectionFailure, InvalidArgument, XSContainerError

CONTROL_DIR = "/run/xscontainer"
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


def control_socket_path(host_uuid: str, directory: str = CONTROL_DIR) -> str:
    # One per host uuid: the simulated pools of the test suite run several monitors on one machine.
    return os.path.join(directory, "monitor-%s.sock" % host_uuid)


def read_line(conn: socket.socket, limit: int) -> bytes:
    """One line, without its newline (what follows it is dropped); InvalidArgument when none ends
    within about ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if b"\n" in data:
            break
        if size > limit:
            raise InvalidArgument("control message larger than %d bytes" % limit)
    return b"".join(chunks).split(b"\n", 1)[0]


class MonitorNotRunning(ConnectionFailure):
    code = "MONITOR_NOT_RUNNING"


def _send_request(path: str, op: str, params: Dict[str, Any], timeout: float) -> socket.socket:
    """A connection to the monitor with the request sent; MonitorNotRunning when nobody listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(json.dumps({"op": op, "params": params}).encode("utf-8") + b"\n")
    except OSError as exc:
        sock.close()
        raise MonitorNotRunning("The xscontainer monitor is not running (%s)." % exc) from exc
    return sock


def _reply_value(line: bytes) -> Any:
    if not line:
        raise ConnectionFailure("The xscontainer monitor closed the control connection.",
                                code="MONITOR_ERROR")
    reply = json.loads(line.decode("utf-8"))
    if reply.get("ok"):
        return reply.get("result")
    raise XSContainerError(reply.get("message", "monitor error"), code=reply.get("code", "MONITOR_ERROR"))


def control_call(path: str, op: str, params: Dict[str, Any], timeout: float = 300.0) -> Any:
    """Ask the monitor; raises MonitorNotRunning when nobody listens, or the monitor's error."""
    sock = _send_request(path, op, params, timeout)
    try:
        line = read_line(sock, MAX_RESPONSE_BYTES)
    finally:
        sock.close()
    return _reply_value(line)


def open_engine_stream(path: str, vm_uuid: str, timeout: float = 30.0) -> socket.socket:
    """A socket whose bytes go to and come from the VM's engine through the monitor's warm
    connection. Raises MonitorNotRunning when nobody listens, or the monitor's error (e.g.
    NOT_WATCHED when this monitor does not watch the VM)."""
    sock = _send_request(path, "engine_stream", {"vm": vm_uuid}, timeout)
    try:
        line = b""
        while not line.endswith(b"\n"):  # byte by byte: what follows the line is the engine's
            byte = sock.recv(1)
            if not byte:
                break
            line += byte
            if len(line) > 64 * 1024:
                raise ConnectionFailure("The xscontainer monitor sent an overlong answer.", code="MONITOR_ERROR")
        _reply_value(line if line.endswith(b"\n") else b"")
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise
