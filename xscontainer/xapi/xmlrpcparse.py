"""XML-RPC responses parsed by ElementTree's C parser, for ``Transport.getparser``.

xmlrpc.client's unmarshaller is a Python callback for every element and every piece of text, and
expat splits text at each entity: a VM record whose other_config holds docker_info (XML inside
XML, hundreds of ``&lt;``) costs 0.74 ms of CPU to parse on Python 3.11 and 0.57 on 3.6, and each
write of the monitor comes back to it as one such record in xapi's events. Here the tree is built
in C and only its values are walked in Python: 0.44 and 0.31 ms (bench/xapi_parse.py).
The values are those of ``xmlrpc.client.getparser`` for every type xapi sends; a reply that is
not XML-RPC raises what that parser raises (``ExpatError``, ``ResponseError``, ``Fault``).

A whole reply is parsed with the cyclic garbage collector paused (``parse_reply``): the tree is
~600 elements per VM record, all alive until converted, so collections during the parse free
nothing and move the tree into the old generations. Every event.from reply of a hundred records
then counted towards the next full collection, which ran every one or two replies and cost
~0.2 s of CPU holding the GIL with 1,000 VMs in the monitor. Freed by reference counting before
the collector resumes, the tree is never seen by it.
"""

import base64
import contextlib
import datetime
import decimal
import gc
import xml.etree.ElementTree as ElementTree
import xml.parsers.expat
import xmlrpc.client
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

_INTEGERS = frozenset(["int", "i1", "i2", "i4", "i8", "biginteger"])
_FLOATS = frozenset(["double", "float"])


class _Converter:
    def __init__(self, use_datetime: bool, use_builtin_types: bool) -> None:
        self._datetime = use_datetime or use_builtin_types
        self._bytes = use_builtin_types
        self._scalars = {
            "string": lambda text: text,
            "boolean": _boolean,
            "double": float,
            "float": float,
            "bigdecimal": decimal.Decimal,
            "dateTime.iso8601": self._date,
            "base64": self._binary,
            "nil": lambda text: None,
        }  # type: Dict[str, Callable[[str], Any]]

    def value(self, element: ElementTree.Element) -> Any:
        """The Python value of a ``<value>`` element."""
        if not len(element):
            return element.text or ""  # <value>text</value> is a string
        typed = element[0]
        tag = typed.tag
        if tag == "struct":
            return self._struct(typed)
        if tag == "array":
            return self._array(typed)
        text = typed.text or ""
        if tag in _INTEGERS:
            return int(text)
        convert = self._scalars.get(tag)
        if convert is None:
            raise xmlrpc.client.ResponseError("unknown XML-RPC type <%s>" % tag)
        return convert(text)

    def _struct(self, element: ElementTree.Element) -> Dict[str, Any]:
        result = {}
        for member in element:
            name, value = None, None
            for part in member:
                if part.tag == "name":
                    name = part.text or ""
                elif part.tag == "value":
                    value = part
            if name is None or value is None:
                raise xmlrpc.client.ResponseError("a struct member without name or value")
            result[name] = self.value(value)
        return result

    def _array(self, element: ElementTree.Element) -> list:
        data = element.find("data")
        return [] if data is None else [self.value(item) for item in data if item.tag == "value"]

    def _date(self, text: str) -> Any:
        if self._datetime:
            return datetime.datetime.strptime(text, "%Y%m%dT%H:%M:%S")
        return xmlrpc.client.DateTime(text)

    def _binary(self, text: str) -> Any:
        data = base64.decodebytes(text.encode("ascii"))
        return data if self._bytes else xmlrpc.client.Binary(data)


def _boolean(text: str) -> bool:
    if text not in ("0", "1"):
        raise TypeError("bad boolean value")
    return text == "1"


class TreeParser:
    """The parser half: fed the body's bytes, builds the tree in C."""

    def __init__(self) -> None:
        self._parser = ElementTree.XMLParser()
        self.root = None  # type: Optional[ElementTree.Element]

    def feed(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except ElementTree.ParseError as exc:
            raise xml.parsers.expat.ExpatError(str(exc)) from exc

    def close(self) -> None:
        try:
            self.root = self._parser.close()
        except ElementTree.ParseError as exc:
            raise xml.parsers.expat.ExpatError(str(exc)) from exc


class TreeUnmarshaller:
    """The unmarshaller half: ``close()`` returns the response's parameters or raises its fault."""

    def __init__(self, parser: TreeParser, use_datetime: bool = False, use_builtin_types: bool = False) -> None:
        self._parser = parser
        self._converter = _Converter(use_datetime, use_builtin_types)

    def close(self) -> Tuple[Any, ...]:
        root = self._parser.root
        if root is None or root.tag != "methodResponse":
            raise xmlrpc.client.ResponseError("not an XML-RPC response")
        fault = root.find("fault")
        if fault is not None:
            value = fault.find("value")
            details = self._converter.value(value) if value is not None else None
            if not isinstance(details, dict):
                raise xmlrpc.client.ResponseError("a fault without its struct")
            raise xmlrpc.client.Fault(**details)
        params = root.find("params")
        if params is None:
            raise xmlrpc.client.ResponseError("a response without params")
        values = []
        for param in params:
            value = param.find("value")
            if value is None:
                raise xmlrpc.client.ResponseError("a param without value")
            values.append(self._converter.value(value))
        return tuple(values)


def tree_parser(use_datetime: bool = False, use_builtin_types: bool = False) -> Tuple[TreeParser, TreeUnmarshaller]:
    """What ``xmlrpc.client.Transport.getparser`` returns, built on ElementTree."""
    parser = TreeParser()
    return parser, TreeUnmarshaller(parser, use_datetime, use_builtin_types)


def parse_reply(body: bytes, use_datetime: bool = False, use_builtin_types: bool = False) -> Tuple[Any, ...]:
    """The parameters of a whole XML-RPC reply (or its fault, raised), parsed with the cyclic
    garbage collector paused; its tree is freed before the collector resumes."""
    with _collector_paused():
        return _parse_whole(body, use_datetime, use_builtin_types)


def _parse_whole(body: bytes, use_datetime: bool, use_builtin_types: bool) -> Tuple[Any, ...]:
    parser, unmarshaller = tree_parser(use_datetime, use_builtin_types)
    try:
        parser.feed(body)
        parser.close()
        return unmarshaller.close()
    finally:
        del parser, unmarshaller  # a traceback keeps this frame: it must not keep the tree


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # The collector is process-wide: a thread that finds it paused by another leaves it alone
    # (the other resumes it), and one paused by the application stays paused.
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
