"""Reading what the monitor and the plugin write (pure): ``docker_ps`` as XenCenter reads it
(every ``entry`` element, its direct children, ``shared/contracts/consumers.md`` §2), the
``docker_top`` process table, and the generic dict/list encoding of the other documents.
"""

import datetime
import re
import xml.dom.minidom
import xml.parsers.expat
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from xscontainer.errors import XSContainerError

SPECIAL = "SPECIAL_XS_ENCODED_ELEMENT"
_TIMESTAMP_RE = re.compile(r"\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\Z")


class BadDocument(XSContainerError):
    code = "BAD_DOCUMENT"


class Port(NamedTuple):
    ip: str
    public_port: str
    private_port: str
    type: str


class ContainerRow(NamedTuple):
    id: str
    name: str
    container: str  # the 10-character short id XenCenter passes to the lifecycle calls
    image: str
    command: str
    status: str
    state: str  # "running", "paused" or "halted", as XenCenter derives it from status
    created: str
    started_at: Optional[str]
    ports: List[Port]


def _load(text: str, what: str):
    try:
        return xml.dom.minidom.parseString(text.encode("utf-8"))
    except (xml.parsers.expat.ExpatError, ValueError) as exc:
        raise BadDocument("The %s document is not well-formed XML: %s." % (what, exc)) from exc


def _inner_text(node) -> str:
    if node.nodeType in (node.TEXT_NODE, node.CDATA_SECTION_NODE):
        return node.data
    return "".join(_inner_text(child) for child in node.childNodes)


def _elements(node) -> list:
    return [child for child in node.childNodes if child.nodeType == child.ELEMENT_NODE]


def _direct_child(node, name: str):
    for child in _elements(node):
        if child.tagName == name:
            return child
    return None


def _child_text(node, name: str) -> str:
    child = _direct_child(node, name)
    return "" if child is None else _inner_text(child)


def container_state(status: str) -> str:
    """XenCenter's rule: contains ``Paused`` -> paused; starts with ``Up`` -> running; else halted."""
    if "Paused" in status:
        return "paused"
    if status.startswith("Up"):
        return "running"
    return "halted"


def _ports(node) -> List[Port]:
    if node is None:
        return []
    return [Port(_child_text(item, "IP"), _child_text(item, "PublicPort"),
                 _child_text(item, "PrivatePort"), _child_text(item, "Type"))
            for item in node.getElementsByTagName("item")]


def docker_ps_is_abridged(text: str) -> bool:
    """True when the monitor had to leave containers out to fit xapi's request limit (the root's
    ``listed`` is below its ``total``)."""
    root = _load(text, "docker_ps").documentElement
    try:
        return int(root.getAttribute("listed")) < int(root.getAttribute("total"))
    except ValueError:
        return False


def parse_docker_ps(text: str) -> List[ContainerRow]:
    """The containers of a ``docker_ps`` value, in document order."""
    rows = []
    for entry in _load(text, "docker_ps").getElementsByTagName("entry"):
        status = _child_text(entry, "status")
        started = _direct_child(entry, "started_at")
        container_id = _child_text(entry, "id")
        rows.append(ContainerRow(
            id=container_id, name=_child_text(entry, "names"),
            container=_child_text(entry, "container") or container_id[:10],
            image=_child_text(entry, "image"), command=_child_text(entry, "command"),
            status=status, state=container_state(status), created=_child_text(entry, "created"),
            started_at=_inner_text(started) if started is not None else None,
            ports=_ports(_direct_child(entry, "ports"))))
    return rows


def parse_timestamp(text: Optional[str]) -> Optional[datetime.datetime]:
    """``2024-01-15T10:00:00Z`` (the ``started_at`` format) as a naive UTC datetime."""
    match = _TIMESTAMP_RE.match((text or "").strip())
    if not match:
        return None
    try:
        return datetime.datetime(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def uptime_seconds(row: ContainerRow, now: datetime.datetime) -> Optional[int]:
    """How long a running or paused container has been up (``now``: naive UTC), None if unknown."""
    if not row.status.startswith("Up"):
        return None
    started = parse_timestamp(row.started_at)
    if started is None:
        return None
    return max(0, int((now - started).total_seconds()))


def _label(element) -> str:
    if element.tagName == SPECIAL and element.hasAttribute("name"):
        return element.getAttribute("name")
    return element.tagName


def _decode(element) -> Any:
    children = _elements(element)
    if not children:
        return _inner_text(element)
    if all(child.tagName == "item" for child in children):
        return [_decode(child) for child in children]
    result = {}  # type: Dict[str, Any]
    for child in children:
        result.setdefault(_label(child), _decode(child))
    return result


def decode_document(text: str, what: str = "plugin") -> Tuple[str, Any]:
    """(root name, value) of a document in the generic encoding: an element whose children are all
    ``item`` is a list, other elements with children are dicts (encoded keys by their ``name``),
    leaves are their text. Scalars stay strings (``None``, ``True``, ``42``): the encoding does not
    keep types, and an empty dict, list or string all read back as ``""``."""
    root = _load(text, what).documentElement
    return root.tagName, _decode(root)


def parse_docker_top(text: str) -> Tuple[List[str], List[List[str]]]:
    """(column titles, rows) of a ``docker_top`` document; titles in the engine's order."""
    titles = []  # type: List[str]
    processes = []
    for process in _load(text, "docker_top").getElementsByTagName("Process"):
        values = {}  # type: Dict[str, str]
        for child in _elements(process):
            label = _label(child)
            if label not in values:
                values[label] = _inner_text(child)
                if label not in titles:
                    titles.append(label)
        processes.append(values)
    return titles, [[values.get(title, "") for title in titles] for values in processes]


def none_if_null(value: Any) -> Any:
    """The generic encoding writes null as ``None`` and nothing as an empty element."""
    return None if value in ("None", "") else value
