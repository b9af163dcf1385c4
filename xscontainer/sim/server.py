"""HTTP on a loopback TCP port and on a Unix socket: XML-RPC on ``/`` and ``/RPC2``, the VDI
handlers, and xapi's rule that Unix-socket callers are pre-authenticated."""

import html
import logging
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any, List, Optional

from xscontainer.sim import rpc, rrdxapi, vdi_http

log = logging.getLogger(__name__)

# xapi's Constants.http_limit_max_rpc_size, enforced by api_server.ml via Http_svr.read_body.
MAX_RPC_BODY = 300 * 1024
IDLE_TIMEOUT = 600.0
# Http_svr.response_internal_error's page; the extra text names the OCaml exception.
INTERNAL_ERROR_PAGE = (
    "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please "
    "wait a while and try again. If the problem persists, please contact your support "
    "representative.<h1> Additional information </h1>%s</body></html>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "xapi"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    def setup(self) -> None:
        # Headers and body are separate writes: without TCP_NODELAY, Nagle plus the client's
        # delayed ACK costs 40 ms per call. (Setting it on a Unix socket fails, §1.5.)
        self.disable_nagle_algorithm = not self.server.preauth
        super().setup()

    def address_string(self) -> str:
        return "unix" if self.server.preauth else str(self.client_address[0])

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path not in ("/", "/RPC2"):
            self.send_error(404, "Not found")
            return
        length = self._rpc_body_length()
        if length is None:
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return
        api = self.server.api
        try:
            answer = rpc.handle_body(body, lambda m, p: api.call(m, p, self.server.preauth))
        except rpc.BadRequest as exc:
            # xapi's Xmlrpc.call_of_string raises outside its Server_error handler.
            log.info("bad XML-RPC request from %s: %s", self.address_string(), exc)
            self.internal_error("Xmlrpc.Parse_error")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _rpc_body_length(self) -> "Optional[int]":
        """The body length xapi would read, or None after refusing the request as it does."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if length < 0 or self.headers.get("Transfer-Encoding"):
            self.internal_error("Failure(\"We require a content-length: HTTP header\")")
            return None
        if length > MAX_RPC_BODY:
            # Refused before reading: the unread body makes the close a reset for the client.
            self.internal_error("Http_svr.Client_requested_size_over_limit")
            return None
        return length

    def internal_error(self, extra: str) -> None:
        """xapi's answer to a handler exception: 500, ``Connection: close``, then close."""
        body = (INTERNAL_ERROR_PAGE % html.escape(extra)).encode("utf-8")
        self.send_response_only(500, "Internal Error")
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-cache, no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_PUT(self) -> None:
        if urllib.parse.urlsplit(self.path).path == "/import_raw_vdi":
            vdi_http.handle_import(self.server.api, self)
        else:
            self.send_error(404, "Not found")

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/export_raw_vdi":
            vdi_http.handle_export(self.server.api, self)
        elif path == "/rrd_updates":
            rrdxapi.handle_rrd_updates(self.server.api, self)
        else:
            self.send_error(404, "Not found")


class _Common:
    daemon_threads = True
    preauth = False
    api = None  # type: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error while serving a request")


class TCPServer(_Common, socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True


class UnixServer(_Common, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    preauth = True


class Servers:
    """Owns both listeners and the threads that run them."""

    def __init__(self, api: Any, port: int, unix_path: str) -> None:
        self.tcp = TCPServer(("127.0.0.1", port), Handler)
        self.tcp.api = api
        self.unix = UnixServer(unix_path, Handler)
        self.unix.api = api
        self._threads = []  # type: List[threading.Thread]

    @property
    def port(self) -> int:
        return self.tcp.server_address[1]

    def start(self) -> None:
        for server, name in ((self.tcp, "sim-tcp"), (self.unix, "sim-unix")):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in (self.tcp, self.unix):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()
