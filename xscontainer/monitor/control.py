"""The monitor's local control socket, server side: the plugin and the CLI reuse its warm engine
connections (their client is ``xscontainer.transport.control``).

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

from xscontainer.errors import InvalidArgument, XSContainerError
from xscontainer.transport.control import read_line

LOG = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 1024 * 1024


class Splice(object):
    """A handler's answer that turns the control connection into a raw byte stream to the VM's
    engine (a new channel on the monitor's warm connection), for ``xscontainer exec``."""

    def __init__(self, stream) -> None:
        self.stream = stream


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


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
                answer = self._answer(read_line(conn, MAX_REQUEST_BYTES))
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
