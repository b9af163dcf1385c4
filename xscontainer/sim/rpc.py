"""XML-RPC at the wire: parse a methodCall body, dispatch it, marshal the xapi envelope.

xapi writes strings as bare ``<value>text</value>`` and int64 as strings; ``I4`` marks the few
``<i4>`` values (``valid_ref_counts``). Every outcome is a ``{Status, Value|ErrorDescription}``
struct; a body that is not XML-RPC raises ``BadRequest`` for the HTTP layer to answer 400.
"""

import logging
import re
import xml.parsers.expat
import xmlrpc.client
from typing import Any, Callable, Dict, List, Tuple

from xscontainer.sim.failures import XapiFailure

log = logging.getLogger(__name__)


class BadRequest(Exception):
    """The request body is not an XML-RPC methodCall."""


class I4(int):
    """An int the marshaller writes as ``<i4>`` (xapi's Int32)."""


# xapi's XML-RPC writer (rpc-lib ``Xmlrpc.encode_buf``) drops control characters other than
# tab, LF and CR from every string, and copies every other byte as it is.
_DROPPED_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xapi_escape(text: str) -> str:
    return xmlrpc.client.escape(_DROPPED_RE.sub("", text))


class Marshalled(str):
    """A value marshalled already (``<value>...</value>``), written as it is (see ``marshalled``)."""


class _Marshaller(xmlrpc.client.Marshaller):
    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_marshalled(self, value: Marshalled, write: Callable[[str], None]) -> None:
        write(value)
    dispatch[Marshalled] = dump_marshalled

    def dump_bare_string(self, value: str, write: Callable[[str], None],
                         escape: Callable[[str], str] = _xapi_escape) -> None:
        write("<value>")
        write(escape(value))
        write("</value>\n")
    dispatch[str] = dump_bare_string

    def dump_xapi_struct(self, value: Dict[str, Any], write: Callable[[str], None]) -> None:
        xmlrpc.client.Marshaller.dump_struct(self, value, write, _xapi_escape)
    dispatch[dict] = dump_xapi_struct

    def dump_i4(self, value: int, write: Callable[[str], None]) -> None:
        write("<value><i4>%d</i4></value>\n" % int(value))
    dispatch[I4] = dump_i4


def marshalled(value: Any) -> Marshalled:
    """``value`` as it goes on the wire inside any response: a record's XML, made once per
    change of the record instead of once per reader (event.from answers every watcher)."""
    marshaller = _Marshaller(encoding="utf-8", allow_none=True)
    parts = []  # type: List[str]
    marshaller.dispatch[type(value)](marshaller, value, parts.append)
    return Marshalled("".join(parts))


def _marshal(value: Any) -> str:
    return _Marshaller(encoding="utf-8", allow_none=True).dumps((value,))


def response_xml(envelope: Dict[str, Any]) -> bytes:
    # surrogateescape: bytes of a plugin's output that are not UTF-8 go out unchanged, as
    # xapi sends them (the client then cannot parse the answer, as with xapi).
    return ("<?xml version='1.0'?>\n<methodResponse>\n%s</methodResponse>\n"
            % _marshal(envelope)).encode("utf-8", "surrogateescape")


def value_xml(value: Any) -> str:
    """One value as xapi stores a task result: ``<value>...</value>``."""
    text = _marshal("" if value is None else value)
    text = re.sub(r"^<params>\s*<param>\s*", "", text)
    text = re.sub(r"\s*</param>\s*</params>\s*$", "", text)
    return text


def _pcdata(text: str) -> str:
    """xml-light2's ``esc_pcdata``: four entities, control characters dropped."""
    return (_DROPPED_RE.sub("", text).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def _call_value(value: Any) -> str:
    if isinstance(value, dict):
        return "<value><struct>%s</struct></value>" % "".join(
            "<member><name>%s</name>%s</member>" % (_pcdata(k), _call_value(v))
            for k, v in value.items())
    return "<value>%s</value>" % _pcdata(value) if value != "" else "<value/>"


def call_xml(method: str, params: Tuple[Any, ...]) -> str:
    """The methodCall xapi hands a plugin in argv[1], byte for byte: ``Xml.to_string`` of
    ``XMLRPC.To.methodCall`` (no declaration, no whitespace; strings and string maps only)."""
    return "<methodCall><methodName>%s</methodName><params>%s</params></methodCall>" % (
        _pcdata(method), "".join("<param>%s</param>" % _call_value(p) for p in params))


def success(value: Any) -> Dict[str, Any]:
    return {"Status": "Success", "Value": "" if value is None else value}


def failure(details: List[str]) -> Dict[str, Any]:
    return {"Status": "Failure", "ErrorDescription": [str(d) for d in details]}


def parse_call(body: bytes) -> Tuple[str, Tuple[Any, ...]]:
    try:
        params, method = xmlrpc.client.loads(body, use_datetime=False)
    except (xml.parsers.expat.ExpatError, xmlrpc.client.ResponseError, ValueError,
            TypeError, AttributeError, IndexError, KeyError) as exc:
        raise BadRequest("cannot parse the XML-RPC call: %s" % exc) from exc
    if not isinstance(method, str) or not method:
        raise BadRequest("the body is not an XML-RPC methodCall")
    return method, params


def handle_body(body: bytes, call: Callable[[str, Tuple[Any, ...]], Any]) -> bytes:
    """Parse, call ``call(method, params)``, and marshal the envelope; raises BadRequest."""
    method, params = parse_call(body)
    try:
        envelope = success(call(method, params))
    except XapiFailure as exc:
        envelope = failure(exc.details)
    except Exception as exc:  # an internal error must still be an xapi answer
        log.exception("internal error in %s", method)
        envelope = failure(["INTERNAL_ERROR", "%s: %s" % (exc.__class__.__name__, exc)])
    try:
        return response_xml(envelope)
    except (TypeError, OverflowError) as exc:
        log.exception("cannot marshal the result of %s", method)
        return response_xml(failure(["INTERNAL_ERROR", "cannot marshal result: %s" % exc]))
