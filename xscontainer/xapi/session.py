"""Opening XenAPI sessions: the local Unix socket (as in dom0) or a URL with credentials."""

import os
from typing import Optional

import XenAPI

from xscontainer.errors import XapiError

DEFAULT_SOCKET = "/var/lib/xcp/xapi"
# Points the monitor, the CLI or the demo at a simulator; a real dom0 never sets it, and plugins
# never read it (xapi gives them no environment: see xscontainer.xapi.dom0).
SOCKET_ENV = "XSCONTAINER_XAPI_SOCKET"
ORIGINATOR = "xscontainer"


def local_socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def local_session_object(socket_path: Optional[str] = None) -> "XenAPI.Session":
    """A Session bound to the local Unix socket, not logged in (XenAPI.xapi_local(), any path)."""
    path = socket_path or local_socket_path()
    if "_" in path:
        # UDSTransport turns every '_' of the URL host back into '/'.
        raise XapiError("The xapi socket path %s contains '_', which XenAPI cannot address." % path)
    return XenAPI.Session("http://" + path.replace("/", "_") + "/", transport=XenAPI.UDSTransport())


def open_local_session(socket_path: Optional[str] = None) -> "XenAPI.Session":
    """Log in over the local socket; xapi pre-authenticates it, so the password is ignored."""
    session = local_session_object(socket_path)
    try:
        session.xenapi.login_with_password("root", "", "1.0", ORIGINATOR)
    except (OSError, XenAPI.Failure) as exc:
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
    except (OSError, XenAPI.Failure):
        pass
