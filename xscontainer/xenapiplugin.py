"""A drop-in for dom0's ``XenAPIPlugin`` module (PyPI's XenAPI has none): run a host plugin.

Behaviour of XA ``python3/examples/XenAPIPlugin.py`` (contract §6.2): argv[1] is the
methodCall xapi built; the function gets a session that reuses the caller's session over the
local Unix socket; the result or failure is printed as an XML-RPC methodResponse and the
process exits 0. The socket path comes from ``XSCONTAINER_XAPI_SOCKET`` (set only by the
simulator), else dom0's ``/var/lib/xcp/xapi``.
"""

import os
import sys
import xmlrpc.client
from typing import Any, Callable, Dict, List

import XenAPI

DEFAULT_SOCKET = "/var/lib/xcp/xapi"
SOCKET_ENV = "XSCONTAINER_XAPI_SOCKET"


class Failure(Exception):
    """Raise from a plugin function to fail the call with exactly ``[code] + params``."""

    def __init__(self, code: str, params: List[str]) -> None:
        super().__init__(code, params)
        self.code = code
        self.params = params

    def __str__(self) -> str:
        return str(self.toXMLRPC())

    def toXMLRPC(self) -> Dict[str, Any]:  # noqa: N802 (XenAPIPlugin's name)
        return {"Status": "Failure", "ErrorDescription": [self.code] + list(self.params)}


def success_message(result: Any) -> str:
    return xmlrpc.client.dumps(({"Status": "Success", "Value": result},), "", True)


def failure_message(description: List[Any]) -> str:
    return xmlrpc.client.dumps(({"Status": "Failure", "ErrorDescription": description},),
                               "", True)


def local_session(session_ref: str) -> "XenAPI.Session":
    """A Session on the local socket that carries the caller's session ref (no login)."""
    path = os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    session = XenAPI.Session("http://" + path.replace("/", "_"),
                             transport=XenAPI.UDSTransport())
    session._session = session_ref
    return session


def dispatch(fn_table: Dict[str, Callable[[Any, Dict[str, str]], Any]]) -> None:
    if len(sys.argv) != 2:
        raise Exception("Incorrect number of commandline arguments")
    params, methodname = xmlrpc.client.loads(sys.argv[1])
    session = local_session(params[0])
    try:
        if methodname in fn_table:
            result = fn_table[methodname](session, params[1])
            print(success_message(result))
        else:
            print(failure_message(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", methodname]))
    except Failure as exc:
        print(failure_message([exc.code] + list(exc.params)))
    except Exception as exc:  # what XenAPIPlugin does: report, exit 0
        print(failure_message(["XENAPI_PLUGIN_FAILURE", methodname, exc.__class__.__name__,
                               str(exc)]))
