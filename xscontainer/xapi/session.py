"""Opening XenAPI sessions: the local Unix socket (as in dom0) or a URL with credentials."""

import contextlib
import http.client
import os
import ssl
import xml.parsers.expat
import xmlrpc.client
from typing import Callable, ContextManager, Iterator, Optional, Tuple

import XenAPI

from xscontainer.errors import InvalidArgument, XapiError
from xscontainer.xapi.localhttp import LocalSocketTransport

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
# Points the monitor, the CLI or the demo at a simulator; a real dom0 never sets it, and plugins
# never read it (xapi gives them no environment: see xscontainer.xapi.dom0).
SOCKET_ENV = "XSCONTAINER_XAPI_SOCKET"
ORIGINATOR = "xscontainer"

# Where code that makes xapi calls gets its session: ``with sessions() as session:`` borrows one
# for the calls that follow. The monitor's is ``SessionPool.session`` (a few sessions shared by
# all its threads); a command with one session of its own passes ``lend(session)``.
SessionSource = Callable[[], ContextManager["XenAPI.Session"]]


def lend(session: "XenAPI.Session") -> SessionSource:
    """The source that lends ``session`` itself, every time."""
    @contextlib.contextmanager
    def borrow() -> Iterator["XenAPI.Session"]:
        yield session
    return borrow


def local_socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def local_session_object(socket_path: Optional[str] = None, timeout: float = LOCAL_TIMEOUT) -> "XenAPI.Session":
    """A Session bound to the local Unix socket, not logged in (XenAPI.xapi_local(), any path),
    whose calls each wait at most ``timeout`` seconds (socket.timeout, an OSError, after that)."""
    path = socket_path or local_socket_path()
    if "_" in path:
        # UDSTransport turns every '_' of the URL host back into '/'.
        raise XapiError("The xapi socket path %s contains '_', which XenAPI cannot address." % path)
    return XenAPI.Session("http://" + path.replace("/", "_") + "/", transport=LocalSocketTransport(timeout))


def open_local_session(socket_path: Optional[str] = None, timeout: float = LOCAL_TIMEOUT) -> "XenAPI.Session":
    """Log in over the local socket; xapi pre-authenticates it, so the password is ignored."""
    session = local_session_object(socket_path, timeout)
    try:
        session.xenapi.login_with_password("root", "", "1.0", ORIGINATOR)
    except TRANSPORT_ERRORS + (XenAPI.Failure,) as exc:
        raise XapiError("Cannot log in to xapi on %s: %s" % (socket_path or local_socket_path(), exc),
                        code="XAPI_UNREACHABLE") from exc
    return session


CERT_UNVERIFIED = "XAPI_CERTIFICATE_UNVERIFIED"


def tls_context(ca_file: Optional[str] = None, insecure: bool = False) -> ssl.SSLContext:
    """Verify xapi's certificate and name against ``ca_file`` (the pool's certificate or its CA)
    or else the system's CA store; ``insecure`` (asked for explicitly) verifies nothing."""
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise InvalidArgument("Cannot use %s as xapi's CA certificate: %s." % (ca_file, getattr(exc, "strerror", None)
                                                                               or exc)) from exc


def url_session_object(url: str, ca_file: Optional[str] = None, insecure: bool = False) -> "XenAPI.Session":
    """A Session for ``url``, not logged in; https is verified (XenAPI.Session takes no SSL
    context, but its ServerProxy takes a transport that carries one)."""
    if url.lower().startswith("https:"):
        transport = xmlrpc.client.SafeTransport(context=tls_context(ca_file, insecure))
        return XenAPI.Session(url, transport=transport)
    return XenAPI.Session(url)


def _unverified(url: str, exc: BaseException, options: Tuple[str, str]) -> XapiError:
    return XapiError(
        "The TLS certificate of xapi at %s does not verify (%s), so nothing was sent to it. Give the "
        "pool's certificate with %s FILE (on a pool host, `xe host-get-server-certificate` prints it; "
        "or its CA's certificate), or, knowing that anyone between here and the pool could then read "
        "the password, %s." % (url, getattr(exc, "verify_message", None) or exc, options[0], options[1]),
        code=CERT_UNVERIFIED)


def open_url_session(url: str, username: str, password: str, ca_file: Optional[str] = None,
                     insecure: bool = False,
                     options: Tuple[str, str] = ("--ca-file", "--insecure")) -> "XenAPI.Session":
    """Log in over ``url``; an https certificate that does not verify is refused before the
    password is sent (``options`` name the caller's CA and insecure options, for the message)."""
    session = url_session_object(url, ca_file, insecure)
    try:
        session.xenapi.login_with_password(username, password, "1.0", ORIGINATOR)
    except ssl.CertificateError as exc:  # a name mismatch (3.6: a ValueError, not an SSLError)
        raise _unverified(url, exc, options) from exc
    except ssl.SSLError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or getattr(exc, "reason", "") == "CERTIFICATE_VERIFY_FAILED":
            raise _unverified(url, exc, options) from exc
        raise XapiError("Cannot reach xapi at %s: %s" % (url, exc), code="XAPI_UNREACHABLE") from exc
    except XenAPI.Failure as exc:
        raise XapiError("xapi at %s refused the login: %s" % (url, exc.details),
                        code="XAPI_AUTH_FAILED") from exc
    except OSError as exc:
        raise XapiError("Cannot reach xapi at %s: %s" % (url, exc), code="XAPI_UNREACHABLE") from exc
    return session


def close_session(session: "XenAPI.Session") -> None:
    """Log out, ignoring a session that is already gone."""
    try:
        session.xenapi.session.logout()
    except TRANSPORT_ERRORS + (XenAPI.Failure,):
        pass
