"""A drop-in for dom0's ``XenAPIPlugin`` module (PyPI's XenAPI has none): run a host plugin.

Behaviour of XA ``python3/examples/XenAPIPlugin.py`` (contract §6.2): argv[1] is the
methodCall xapi built; the function gets a session that reuses the caller's session over the
local Unix socket; the result or failure is printed as an XML-RPC methodResponse and the
process exits 0.

Unlike dom0's module, it is correct whatever the locale. xapi gives a plugin no locale (only
``PATH``), so dom0's Python 3.6 decodes argv and encodes stdout as ASCII: the call is decoded as
UTF-8 from argv's raw bytes and the response written as UTF-8 bytes. Every string of the
response is made XML-1.0-clean (``xscontainer.xmltext``), since xapi's parser refuses anything
else. The socket is ``<root>/var/lib/xcp/xapi`` of the dom0 tree the plugin runs from
(``xscontainer.xapi.dom0``): ``/var/lib/xcp/xapi`` on a real host.
"""

import os
import sys
import xmlrpc.client
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import XenAPI

from xscontainer.xapi import dom0
from xscontainer.xmltext import xml_clean

DEFAULT_SOCKET = dom0.Dom0(os.sep).xapi_socket  # /var/lib/xcp/xapi


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


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return xml_clean(value)
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def success_message(result: Any) -> str:
    return xmlrpc.client.dumps(({"Status": "Success", "Value": _clean(result)},), "", True)


def failure_message(description: List[Any]) -> str:
    return xmlrpc.client.dumps(({"Status": "Failure", "ErrorDescription": _clean(description)},),
                               "", True)


def local_session(session_ref: str, socket_path: str = DEFAULT_SOCKET) -> "XenAPI.Session":
    """A Session on the local socket that carries the caller's session ref (no login)."""
    session = XenAPI.Session("http://" + socket_path.replace("/", "_"),
                             transport=XenAPI.UDSTransport())
    session._session = session_ref
    return session


def parse_call(argv: Sequence[str]) -> Tuple[Any, str]:
    """(params, method) from argv[1], decoded as UTF-8 from its raw bytes whatever the locale
    (``os.fsencode`` gives back exactly the bytes xapi passed)."""
    if len(argv) != 2:
        raise Exception("Incorrect number of commandline arguments")
    return xmlrpc.client.loads(os.fsencode(argv[1]).decode("utf-8"))


def write_response(text: str, stream: Optional[Any] = None) -> None:
    """UTF-8 bytes on stdout, whatever ``sys.stdout``'s encoding."""
    out = stream if stream is not None else sys.stdout.buffer
    out.write(text.encode("utf-8") + b"\n")
    out.flush()


def respond(fn_table: Dict[str, Callable[[Any, Dict[str, str]], Any]], session: Any,
            methodname: str, args: Dict[str, str]) -> str:
    """The methodResponse text for one call, as XenAPIPlugin builds it."""
    try:
        if methodname in fn_table:
            return success_message(fn_table[methodname](session, args))
        return failure_message(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", methodname])
    except Failure as exc:
        return failure_message([exc.code] + list(exc.params))
    except Exception as exc:  # what XenAPIPlugin does: report, exit 0
        return failure_message(["XENAPI_PLUGIN_FAILURE", methodname, exc.__class__.__name__,
                                str(exc)])


def dispatch(fn_table: Dict[str, Callable[[Any, Dict[str, str]], Any]]) -> None:
    params, methodname = parse_call(sys.argv)
    session = local_session(params[0], dom0.of_plugin(sys.argv[0]).xapi_socket)
    write_response(respond(fn_table, session, methodname, params[1]))
