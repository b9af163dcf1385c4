"""The monitor's local control socket: the plugin and the CLI reuse its warm engine connections.

One JSON request line in, one JSON response line out, on a root-only Unix socket (directory mode
0700, and the peer's uid checked with SO_PEERCRED). Requests name an operation from a fixed table;
nothing a caller sends is ever evaluated or passed to a shell.
"""

import json
import logging
import os
import socket
import struct
import threading
from typing import Any, Callable, Dict

from xscontainer.errors import ConnectionFailure, InvalidArgument, XSContainerError

LOG = logging.getLogger(__name__)
CONTROL_DIR = "/run/xscontainer"
MAX_REQUEST_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class Splice(object):
    """A handler's answer that turns the control connection into a raw byte stream to the VM's
    engine (a new channel on the monitor's warm connection), for ``xscontainer exec``."""

    def __init__(self, stream) -> None:
        self.stream = stream


def control_socket_path(host_uuid: str, directory: str = CONTROL_DIR) -> str:
    # One per host uuid: the simulated pools of the test suite run several monitors on one machine.
    return os.path.join(directory, "monitor-%s.sock" % host_uuid)


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _read_line(conn: socket.socket, limit: int) -> bytes:
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


class ControlServer:
    """Serves ``handler(op, params) -> JSON-able`` on a Unix socket, one thread per connection."""

    def __init__(self, path: str, handler: Callable[[str, Dict[str, Any]], Any],
                 allowed_uid: int = 0) -> None:
        self.path = path
        self._handler = handler
        self._allowed_uid = allowed_uid
        self._sock = None  # type: Optional[socket.socket]
        self._thread = None  # type: Optional[threading.Thread]
        self._stop = threading.Event()
        self._clients = set()  # type: set
        self._splices = set()  # type: set
        self._lock = threading.Lock()

    def start(self) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        if os.path.exists(self.path):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            os.chmod(self.path, 0o600)
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise XSContainerError("Cannot listen on the control socket %s: %s" % (self.path, exc),
                                   code="CONTROL_SOCKET_FAILED") from exc
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="control-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            clients = list(self._clients)
            splices = list(self._splices)
        for stream in splices:  # unblocks the threads copying bytes
            stream.close()
        for thread in clients:
            thread.join(5)
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), name="control-client", daemon=True)
            with self._lock:
                self._clients.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(300)
                if _peer_uid(conn) != self._allowed_uid:
                    self._reply(conn, {"ok": False, "code": "PERMISSION_DENIED",
                                       "message": "Only root may use the xscontainer control socket."})
                    return
                answer = self._answer(_read_line(conn, MAX_REQUEST_BYTES))
                splice = answer.pop("splice", None)
                self._reply(conn, answer)
                if splice is not None:
                    self._splice(conn, splice.stream)
        except OSError as exc:
            LOG.debug("control client went away: %s", exc)
        finally:
            with self._lock:
                self._clients.discard(threading.current_thread())

    def _answer(self, line: bytes) -> Dict[str, Any]:
        try:
            request = json.loads(line.decode("utf-8"))
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise InvalidArgument("A control request is a JSON object with an 'op'.")
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise InvalidArgument("'params' must be a JSON object.")
            result = self._handler(request["op"], params)
            if isinstance(result, Splice):
                return {"ok": True, "result": None, "splice": result}
            return {"ok": True, "result": result}
        except XSContainerError as exc:
            return {"ok": False, "code": exc.code, "message": exc.message}
        except (ValueError, UnicodeDecodeError) as exc:
            return {"ok": False, "code": "INVALID_ARGUMENT", "message": "Bad control request: %s" % exc}
        except Exception as exc:  # a bug must not kill the monitor
            LOG.exception("control request failed")
            return {"ok": False, "code": "INTERNAL_ERROR", "message": "%s: %s" % (type(exc).__name__, exc)}

    def _splice(self, conn: socket.socket, stream) -> None:
        """Copy bytes both ways until the engine ends its side; our caller's end of input
        becomes the engine stream's end of input."""
        with self._lock:
            self._splices.add(stream)
        conn.settimeout(None)
        stream.settimeout(None)
        upstream = threading.Thread(target=_copy_up, args=(conn, stream), name="control-splice", daemon=True)
        upstream.start()
        try:
            while True:
                data = stream.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except (OSError, EOFError) as exc:
            LOG.debug("engine stream spliced to a control client ended: %s", exc)
        finally:
            stream.close()
            try:
                conn.shutdown(socket.SHUT_RDWR)  # ends the upstream copy
            except OSError:
                pass
            upstream.join(5)
            with self._lock:
                self._splices.discard(stream)

    @staticmethod
    def _reply(conn: socket.socket, payload: Dict[str, Any]) -> None:
        conn.sendall(json.dumps(payload).encode("utf-8") + b"\n")


def _copy_up(conn: socket.socket, stream) -> None:
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                stream.close_write()
                return
            stream.sendall(data)
    except (OSError, EOFError):
        return


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
        line = _read_line(sock, MAX_RESPONSE_BYTES)
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
