"""The simulated xcp-rrdd's XML-RPC on a Unix socket per host, and the hub that reads every host's
plugins every 5 seconds (what each host serves is its ``HostRrdd``, sim/rrdd.py)."""

import hashlib
import logging
import os
import socketserver
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Tuple

from xscontainer.sim.dom0 import MAX_SOCKET_PATH
from xscontainer.sim.rrdd import INTERVAL, HostRrdd, RrddError

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20


# -- rrdd's XML-RPC on a Unix socket ---------------------------------------------------------------

def _arg(args: Dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise RrddError("Rrdd_internal_error", "missing or bad argument %r" % name)
    return value


def dispatch(rrdd: HostRrdd, method: str, params: Tuple[Any, ...]) -> Any:
    args = params[0] if len(params) == 1 and isinstance(params[0], dict) else {}
    if method == "Plugin.get_header":
        return "DATASOURCES\n"
    if method == "Plugin.get_path":
        return rrdd.get_path(_arg(args, "uid"))
    if method == "Plugin.Local.register":
        return rrdd.register(_arg(args, "uid"), _arg(args, "info"), _arg(args, "protocol"))
    if method in ("Plugin.Local.deregister", "Plugin.deregister"):
        rrdd.deregister(_arg(args, "uid"))
        return None
    if method in ("Plugin.Local.next_reading", "Plugin.next_reading"):
        return rrdd.next_reading(_arg(args, "uid"))
    if method == "Plugin.register":  # kept by rrdd for old plugins: V1
        return rrdd.register(_arg(args, "uid"), _arg(args, "frequency"), "V1")
    raise RrddError("Rrdd_internal_error", "Unknown RPC: %s" % method)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.disable_nagle_algorithm = False  # a Unix socket has no TCP_NODELAY
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("rrdd %s", fmt % args)

    def address_string(self) -> str:
        return "unix"

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_error(411, "Length Required")
            return
        if self.path.split("?")[0] != "/" or not 0 <= length <= MAX_BODY:
            self.send_error(404 if self.path.split("?")[0] != "/" else 413)
            return
        try:
            params, method = xmlrpc.client.loads(self.rfile.read(length))
        except Exception:  # any malformed body: rrdd answers an HTTP error, never a traceback
            self.send_error(400, "Bad Request")
            return
        try:
            envelope = {"Status": "Success", "Value": dispatch(self.server.rrdd, method or "", params)}
        except RrddError as exc:
            envelope = {"Status": "Failure", "ErrorDescription": exc.details}
        body = xmlrpc.client.dumps((envelope,), methodresponse=True, allow_none=True).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    rrdd = None  # type: Any


def rrdd_socket_path(xapi_socket: str, host_uuid: str) -> str:
    """Beside the simulator's xapi socket, or a short /tmp path when that would be too long."""
    name = "xcp-rrdd-" + host_uuid[:8]
    path = os.path.join(os.path.dirname(xapi_socket), name)
    if len(path.encode()) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.path.realpath(xapi_socket).encode("utf-8")).hexdigest()[:12]
    return os.path.join("/tmp", "xsc-rrdd-%s-%s" % (digest, host_uuid[:8]))


class RrddHub:
    """Every host's rrdd: sockets, metrics directories and the reading thread. Owned by main()."""

    def __init__(self, api: Any, clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL) -> None:
        self._api = api
        self._clock = clock
        self.interval = interval
        self.hosts = {}  # type: Dict[str, HostRrdd]
        self.sockets = {}  # type: Dict[str, str]
        self._servers = []  # type: List[_UnixServer]
        self._threads = []  # type: List[threading.Thread]
        self._stop = threading.Event()

    def add_host(self, host_uuid: str, metrics_dir: str) -> HostRrdd:
        os.makedirs(metrics_dir, mode=0o700, exist_ok=True)
        rrdd = HostRrdd(host_uuid, metrics_dir, lambda: resident_running_vms(self._api, host_uuid),
                        self._clock, self.interval)
        self.hosts[host_uuid] = rrdd
        return rrdd

    def listen(self, host_uuid: str, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        server = _UnixServer(path, _Handler)
        server.rrdd = self.hosts[host_uuid]
        self._servers.append(server)
        self.sockets[host_uuid] = path

    def start(self) -> None:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name="sim-rrdd", daemon=True)
            thread.start()
            self._threads.append(thread)
        reader = threading.Thread(target=self._loop, name="sim-rrdd-read", daemon=True)
        reader.start()
        self._threads.append(reader)

    def _loop(self) -> None:
        while True:
            wait = min(r.next_reading() for r in self.hosts.values()) if self.hosts else self.interval
            if self._stop.wait(wait):
                return
            for rrdd in self.hosts.values():
                try:
                    rrdd.read_all()
                except Exception:  # one host's bug must not stop the others' readings
                    log.exception("rrdd %s: reading failed", rrdd.host_uuid)

    def stop(self) -> None:
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)
        for path in self.sockets.values():
            try:
                os.unlink(path)
            except OSError:
                pass
        for rrdd in self.hosts.values():
            rrdd.close()


def resident_running_vms(api: Any, host_uuid: str) -> Dict[str, int]:
    """uuid -> memory (bytes) of the VMs running on the host."""
    with api.db.lock:
        hosts = api.db.tables["host"]
        host_ref = next((r for r, row in hosts.items() if row["uuid"] == host_uuid), None)
        return {row["uuid"]: _int(row.get("memory_dynamic_max")) for row in api.db.tables["VM"].values()
                if row.get("resident_on") == host_ref and row.get("power_state") in ("Running", "Paused")}


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def start_hub(api: Any, xapi_socket: str, directory: str) -> RrddHub:
    """One rrdd per simulated host: socket beside xapi's, files in DIR/hosts/<uuid>/metrics."""
    hub = RrddHub(api)
    with api.db.lock:
        uuids = [row["uuid"] for row in api.db.tables["host"].values()]
    for uuid in uuids:
        hub.add_host(uuid, os.path.join(directory, "hosts", uuid, "metrics"))
        hub.listen(uuid, rrdd_socket_path(xapi_socket, uuid))
    hub.start()
    api.rrdd_hub = hub
    return hub
