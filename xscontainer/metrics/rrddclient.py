"""xcp-rrdd's plugin interface: XML-RPC over HTTP on its Unix socket (the only I/O here).

xen-api ocaml/xapi-idl/rrd/rrd_interface.ml: socket /var/lib/xcp/xcp-rrdd, ``POST /``, one
struct of named arguments, answers ``{Status, Value}`` or ``{Status, ErrorDescription}``.
"""

import http.client
import xmlrpc.client
from typing import Any, Dict

from xscontainer.errors import XSContainerError
from xscontainer.transport.unixhttp import UnixHTTPConnection

DEFAULT_SOCKET = "/var/lib/xcp/xcp-rrdd"
FREQUENCY = "Five_Seconds"  # the only one rrdd knows (Rrd.sampling_frequency)
MAX_REPLY = 1 << 20


class RrddError(XSContainerError):
    code = "RRDD_ERROR"
    description = []  # type: list  # rrdd's ErrorDescription, when it refused a call


class RrddUnreachable(RrddError):
    code = "RRDD_UNREACHABLE"


class RrddClient:
    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self._timeout = timeout

    def call(self, method: str, args: Dict[str, Any]) -> Any:
        body = xmlrpc.client.dumps((args,), method, allow_none=True).encode("utf-8")
        conn = UnixHTTPConnection(self.socket_path, self._timeout)
        try:
            conn.request("POST", "/", body, {"Content-Type": "text/xml"})
            response = conn.getresponse()
            data = response.read(MAX_REPLY + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise RrddUnreachable("xcp-rrdd cannot be reached on %s (%s)." % (self.socket_path, exc)) from exc
        finally:
            conn.close()
        if response.status != 200 or len(data) > MAX_REPLY:
            raise RrddError("xcp-rrdd answered %s to %s with HTTP %d." % (self.socket_path, method, response.status))
        try:
            (envelope,), _ = xmlrpc.client.loads(data)
        except Exception as exc:  # any malformed reply
            raise RrddError("xcp-rrdd sent an unreadable answer to %s (%s)." % (method, exc)) from exc
        if isinstance(envelope, dict) and envelope.get("Status") == "Success":
            return envelope.get("Value")
        details = envelope.get("ErrorDescription") if isinstance(envelope, dict) else envelope
        error = RrddError("xcp-rrdd refused %s: %s" % (method, details))
        error.description = details if isinstance(details, list) else [str(details)]
        raise error

    def register(self, uid: str, protocol: str = "V2") -> float:
        """Seconds until rrdd's next reading (negative when it is late)."""
        return float(self.call("Plugin.Local.register", {"uid": uid, "info": FREQUENCY, "protocol": protocol}))

    def deregister(self, uid: str) -> None:
        self.call("Plugin.Local.deregister", {"uid": uid})

    def next_reading(self, uid: str) -> float:
        return float(self.call("Plugin.Local.next_reading", {"uid": uid}))

    def get_path(self, uid: str) -> str:
        path = self.call("Plugin.get_path", {"uid": uid})
        if not isinstance(path, str) or not path.startswith("/"):
            raise RrddError("xcp-rrdd gave no usable path for %s: %r" % (uid, path))
        return path
