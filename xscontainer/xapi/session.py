"""Opening XenAPI sessions: the local Unix socket (as in dom0) or a URL with credentials."""

import http.client
import os
import xml.parsers.expat
import xmlrpc.client
from typing import Optional

import XenAPI

from xscontainer.errors import XapiError

DEFAULT_SOCKET = "/var/lib/xcp/xapi"
# Every way a call can fail because xapi went away or answered something unreadable (a response
# cut short as xapi restarts surfaces as an ExpatError or an IncompleteRead, not as an OSError).
# OSError covers ConnectionError, socket.timeout and ssl.SSLError; xmlrpc.client.Error covers
# ProtocolError, ResponseError and Fault (XenAPI raises Fault for a reply without Status).
TRANSPORT_ERRORS = (OSError, EOFError, http.client.HTTPException, xml.parsers.expat.ExpatError,
                    xmlrpc.client.Error)
# A call over the local socket waits at most this long for xapi. Without a bound one stuck call
# blocks its thread forever; 300 s is far above any synchronous call we make (event.from waits
# seconds, VBD.plug of a config drive tens of seconds on a loaded host).
LOCAL_TIMEOUT = 300.0
# Deviation for the simulator and tests only: a real dom0 never sets it.
SOCKET_ENV = "XSCONTAINER_XAPI_SOCKET"
ORIGINATOR = "xscontainer"


def local_socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


class _TimedUDSConnection(XenAPI.UDSHTTPConnection):
    """XenAPI's Unix-socket connection ignores ``timeout``; this one applies it to the socket."""

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.timeout)


class TimedUDSTransport(XenAPI.UDSTransport):
    """``XenAPI.UDSTransport`` whose every send and read waits at most ``timeout`` seconds."""

    def __init__(self, timeout: float = LOCAL_TIMEOUT) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)  # also sets XenAPI's extra headers
        if not isinstance(conn, _TimedUDSConnection):
            conn = _TimedUDSConnection(host, timeout=self._timeout)
            self._connection = host, conn
        return conn


def local_session_object(socket_path: Optional[str] = None, timeout: float = LOCAL_TIMEOUT) -> "XenAPI.Session":
    """A Session bound to the local Unix socket, not logged in (XenAPI.xapi_local(), any path),
    whose calls each wait at most ``timeout`` seconds (socket.timeout, an OSError, after that)."""
    path = socket_path or local_socket_path()
    if "_" in path:
        # UDSTransport turns every '_' of the URL host back into '/'.
        raise XapiError("The xapi socket path %s contains '_', which XenAPI cannot address." % path)
    return XenAPI.Session("http://" + path.replace("/", "_") + "/", transport=TimedUDSTransport(timeout))


def open_local_session(socket_path: Optional[str] = None, timeout: float = LOCAL_TIMEOUT) -> "XenAPI.Session":
    """Log in over the local socket; xapi pre-authenticates it, so the password is ignored."""
    session = local_session_object(socket_path, timeout)
    try:
        session.xenapi.login_with_password("root", "", "1.0", ORIGINATOR)
    except TRANSPORT_ERRORS + (XenAPI.Failure,) as exc:
        raise XapiError("Cannot log in to xapi on %s: %s" % (socket_path or local_socket_path(), exc),
                        code="XAPI_UNREACHABLE") from exc
    return session


def open_url_session(url: str, username: str, password: str) -> "XenAPI.Session":
    session = XenAPI.Session(url, ignore_ssl=True)
    try:
        session.xenapi.login_with_password(username, password, "1.0", ORIGINATOR)
    except XenAPI.Failure as exc:
        raise XapiError("xapi at %s refused the login: %s" % (url, exc.details),
                        code="XAPI_AUTH_FAILED") from exc
    except OSError as exc:
        raise XapiError("Cannot reach xapi at %s: %s" % (url, exc), code="XAPI_UNREACHABLE") from exc
    return session


def plugin_session(session_ref: str, socket_path: Optional[str] = None) -> "XenAPI.Session":
    """Reuse the caller's session, as xapi's XenAPIPlugin does."""
    session = local_session_object(socket_path)
    session._session = session_ref
    return session


def close_session(session: "XenAPI.Session") -> None:
    """Log out, ignoring a session that is already gone."""
    try:
        session.xenapi.session.logout()
    except TRANSPORT_ERRORS + (XenAPI.Failure,):
        pass
