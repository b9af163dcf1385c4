"""Docker engine records -> the exact XML strings XenCenter and Xen Orchestra read (pure, no I/O).

Owns the values of ``VM.other_config`` keys ``docker_ps``, ``docker_info``, ``docker_version``
and the XML of the plugin results ``get_top`` (``docker_top``) and ``get_inspect``
(``docker_inspect``); the contract is ``shared/contracts/consumers.md`` §2-§4.

Generic encoding (the original's ``converttoxml``, made always well-formed):

* The document is ``<?xml version="1.0" ?>`` followed by the root element, no newline, no
  indentation; an element without content is written ``<name/>``.
* A dict becomes one child element per key, **keys sorted** (code-point order) so that the same
  state always gives byte-identical XML; a list becomes one ``<item>`` per element, in order; a
  scalar becomes text: ``True``/``False`` for booleans, ``None`` for null, ``str()`` otherwise.
* A key becomes ``<SPECIAL_XS_ENCODED_ELEMENT name="the key">`` when it is not a plain XML name
  (ASCII ``[A-Za-z_][A-Za-z0-9_.-]*``), starts with ``xml`` in any case, is the literal
  ``SPECIAL_XS_ENCODED_ELEMENT`` or a member of JavaScript's ``Object.prototype``
  (``hasOwnProperty``, ``constructor``, ``__proto__`` ...: Xen Orchestra's parser throws on them),
  or is reserved at that depth: the document's root name anywhere
  below the root (XenCenter looks ``docker_info`` up by descendant search), and ``entry``/``item``
  anywhere below a ``docker_ps`` entry (XenCenter collects every descendant ``entry``). Labels such
  as ``traefik.frontend.rule`` are plain names and stay elements; ``traefik...domains[0].main``,
  ``a:b``, ``80/tcp``, ``1abc`` are encoded. XenCenter's details tree shows the ``name``.
* Text and attribute values are escaped exactly once with the predefined entities only (``&amp;``
  ``&lt;`` ``&gt;``, and ``&quot;`` in attributes) -- no numeric references, which Xen Orchestra's
  parser does not decode. What we write is what parsers read: line ends are normalised to ``\\n``
  (XML parsers would do it anyway), tabs and newlines in attribute values become spaces
  (attribute-value normalisation), and characters XML 1.0 cannot carry at all (C0 controls other
  than tab/newline, lone surrogates, U+FFFE/U+FFFF) are made visible by ``xscontainer.xmltext``'s
  rule, the one every plugin result follows (ESC becomes the four characters ``\\x1b``).

``docker_ps`` (root ``docker_ps``, one ``<item><entry>...</entry></item>`` per container, newest
first): every top-level key of Docker's ``/containers/json`` record, lower-cased, plus

* ``id`` -- the full ``Id``;
* ``names`` -- the container's name without the leading ``/`` (the first of ``Names`` that is not
  a legacy link alias ``/other/alias``);
* ``status`` -- Docker's ``Status`` normalised so it does not change every second: ``Up``,
  ``Up (Paused)``, ``Exited (N)``, anything else unchanged (``Created``, ``Restarting (1) ...``);
* ``container`` -- the first 10 characters of ``Id`` (XenCenter's lifecycle argument);
* ``ports`` -- ``<item><IP>..</IP><PrivatePort>..</PrivatePort><PublicPort>..</PublicPort>
  <Type>tcp</Type></item>`` per mapping, sorted by private port, type, address, public port
  (the engine's order is not stable); ``mounts`` sorted likewise;
* ``started_at`` -- **our addition**: when the container last started, UTC, ISO-8601 to the
  second (``2024-01-15T10:00:00Z``), taken from ``/containers/{id}/json`` ``State.StartedAt``
  (see ``started_at_of``); present only when known and the container has started at least once.
  ``status`` starting with ``Up`` plus ``started_at`` gives the uptime. The name cannot collide
  with a lower-cased Docker field (those have no underscore). Consumers ignore unknown children.

The entry's children come in a fixed order (``id names status container created image command
started_at ports``) then the other keys sorted.

``docker_info`` / ``docker_version``: the records of ``/info`` and ``/version`` under those roots,
Docker's own key names. ``SystemTime`` is left out of ``docker_info``: it changes on every call,
nobody reads it, and it would make an unchanged engine rewrite the key.

``docker_top``: ``<item><Process><TITLE>value</TITLE>...</Process></item>`` per process, the
children in the engine's column order (XenCenter reads ``PID``, ``CMD``, ``TIME``); a missing or
blank value is written ``-``, never an empty element.
"""

import collections.abc
import datetime
import json
import re
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from xscontainer.xmltext import xml_clean

XML_DECLARATION = '<?xml version="1.0" ?>'
SPECIAL_ELEMENT = "SPECIAL_XS_ENCODED_ELEMENT"
STARTED_AT = "started_at"
VOLATILE_INFO_KEYS = ("SystemTime",)
ENTRY_ORDER = ("id", "names", "status", "container", "created", "image", "command", STARTED_AT,
               "ports")

# Xen Orchestra's fast-xml-parser builds plain JS objects: an element named after a member of
# Object.prototype (``hasOwnProperty`` followed by any other key) makes it throw, parseXml returns
# '' and the whole VM object fails. Such names are encoded like invalid ones.
JS_OBJECT_MEMBERS = frozenset([
    "constructor", "__proto__", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf",
    "propertyIsEnumerable", "toLocaleString", "__defineGetter__", "__defineSetter__",
    "__lookupGetter__", "__lookupSetter__"])
# XenCenter reads ``child.FirstChild.Value`` of these docker_top columns: an empty element throws.
EMPTY_PROCESS_VALUE = "-"

# What XenCenter reads of docker_info and docker_version (consumers-detail.md §1.4): kept first
# when a document must be cut to fit in one xapi request.
XENCENTER_INFO_FIELDS = ("Driver", "IndexServerAddress", "ExecutionDriver", "IPv4Forwarding", "Containers",
                         "Images", "NCPU", "MemTotal", "Name", "ID", "OperatingSystem", "KernelVersion",
                         "DockerRootDir", "NGoroutines", "NFd", "NEventsListener", "Debug", "InitPath",
                         "InitSha1", "MemoryLimit", "SwapLimit", "DriverStatus", "Labels")
XENCENTER_VERSION_FIELDS = ("ApiVersion", "Version", "GitCommit", "GoVersion", "Os", "Arch", "KernelVersion")

_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_EXITED_RE = re.compile(r"\AExited \((-?\d+)\)")
_TIMESTAMP_RE = re.compile(
    r"\A(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:([Zz])|([+-])(\d\d):?(\d\d))\Z")
_ENTRY_RESERVED = frozenset(["entry", "item"])


# -- escaping ------------------------------------------------------------------------------

def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return xml_clean(text)


def escape_text(text: str) -> str:
    """Character data as consumers will read it back, escaped once."""
    return _clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(text: str) -> str:
    """A double-quoted attribute value as consumers will read it back, escaped once."""
    text = escape_text(text).replace('"', "&quot;")
    return text.replace("\t", " ").replace("\n", " ")


def scalar_text(value: Any) -> str:
    """The original's scalar rule: str(), so booleans are ``True``/``False`` and null is ``None``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def is_plain_name(key: str) -> bool:
    """True when ``key`` can be written as an element name that every consumer accepts."""
    return (bool(_NAME_RE.match(key)) and not key.lower().startswith("xml")
            and key != SPECIAL_ELEMENT and key not in JS_OBJECT_MEMBERS)


# -- generic encoding ----------------------------------------------------------------------

def _open_tag(key: Any, reserved: FrozenSet[str]) -> Tuple[str, str]:
    """(start tag without '>', end tag) for a dict key."""
    name = key if isinstance(key, str) else scalar_text(key)
    if is_plain_name(name) and name not in reserved:
        return "<" + name, "</%s>" % name
    return ('<%s name="%s"' % (SPECIAL_ELEMENT, escape_attribute(name)),
            "</%s>" % SPECIAL_ELEMENT)


def _sorted_items(mapping: Mapping) -> List[Tuple[Any, Any]]:
    return sorted(mapping.items(), key=lambda kv: kv[0] if isinstance(kv[0], str) else scalar_text(kv[0]))


def _content(parts: List[str], start: str, end: str, value: Any, reserved: FrozenSet[str]) -> None:
    """Append one element (start tag already decided) holding ``value``."""
    if isinstance(value, collections.abc.Mapping):
        if not value:
            parts.append(start + "/>")
            return
        parts.append(start + ">")
        for key, child in _sorted_items(value):
            child_start, child_end = _open_tag(key, reserved)
            _content(parts, child_start, child_end, child, reserved)
        parts.append(end)
    elif isinstance(value, (list, tuple)):
        if not value:
            parts.append(start + "/>")
            return
        parts.append(start + ">")
        for child in value:
            _content(parts, "<item", "</item>", child, reserved)
        parts.append(end)
    else:
        parts.append(start + ">" + escape_text(scalar_text(value)) + end)


def render_document(root: str, value: Any, reserved: Iterable[str] = ()) -> str:
    """The generic encoding of ``value`` as the document element ``root`` (a plain name).

    ``reserved`` names are encoded like invalid ones wherever they occur as keys; ``root`` itself
    always is, so consumers looking ``root`` up by descendant search find only the root."""
    if not is_plain_name(root):
        raise ValueError("not a plain XML name: %r" % (root,))
    parts = [XML_DECLARATION]
    _content(parts, "<" + root, "</%s>" % root, value, frozenset(reserved) | {root})
    return "".join(parts)


# -- docker_ps -----------------------------------------------------------------------------

def normalise_status(status: Any) -> str:
    """``Up``, ``Up (Paused)``, ``Exited (N)``; every other status unchanged (contract §7.4)."""
    text = "" if status is None else scalar_text(status)
    if text.startswith("Up"):
        return "Up (Paused)" if text.endswith("(Paused)") else "Up"
    match = _EXITED_RE.match(text)
    if match:
        return "Exited (%s)" % match.group(1)
    return text


def container_name(names: Any) -> str:
    """The display name: the first of ``Names`` that is not a link alias, without its ``/``."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not names:
        return ""
    texts = [scalar_text(n) for n in names]
    for name in texts:
        if "/" not in name[1:]:
            return name[1:] if name.startswith("/") else name
    return texts[0][1:] if texts[0].startswith("/") else texts[0]


def normalise_timestamp(value: Any) -> Optional[str]:
    """An RFC 3339 time (Docker's ``2024-01-15T10:00:00.123456789Z``) as ``...T10:00:00Z`` UTC;
    None for Docker's zero time (year 1, never started) or anything unparseable."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP_RE.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if year <= 1:
        return None
    try:
        moment = datetime.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return None
    if match.group(8):
        offset = datetime.timedelta(hours=int(match.group(9)), minutes=int(match.group(10)))
        moment = moment - offset if match.group(8) == "+" else moment + offset
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def started_at_of(inspect_record: Mapping) -> Optional[str]:
    """The ``started_at`` value for a ``/containers/{id}/json`` record (its ``State.StartedAt``)."""
    state = inspect_record.get("State") if isinstance(inspect_record, collections.abc.Mapping) else None
    if not isinstance(state, collections.abc.Mapping):
        return None
    return normalise_timestamp(state.get("StartedAt"))


def _number_key(value: Any) -> Tuple[int, Any]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return (1, "" if value is None else scalar_text(value))
    return (0, value)


def _port_key(port: Any) -> Tuple:
    if not isinstance(port, collections.abc.Mapping):
        return (2, _canonical(port))
    return (0, _number_key(port.get("PrivatePort")), scalar_text(port.get("Type", "")),
            scalar_text(port.get("IP", "")), _number_key(port.get("PublicPort")), _canonical(port))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=scalar_text)


def _created_key(container: Mapping) -> Tuple:
    created = container.get("Created")
    number = created if isinstance(created, (int, float)) and not isinstance(created, bool) else 0
    return (-number, scalar_text(container.get("Id", "")))


def entry_fields(container: Mapping, started_at: Optional[str] = None) -> List[Tuple[str, Any]]:
    """The (child name, value) pairs of one ``entry``, in output order."""
    fields = {}  # type: Dict[str, Any]
    for key, value in container.items():
        fields[(key if isinstance(key, str) else scalar_text(key)).lower()] = value
    container_id = scalar_text(container.get("Id", "") or "")
    fields["id"] = container_id
    fields["names"] = container_name(container.get("Names"))
    fields["status"] = normalise_status(container.get("Status"))
    fields["container"] = container_id[:10]
    fields.pop(STARTED_AT, None)
    if started_at:
        fields[STARTED_AT] = started_at
    if isinstance(fields.get("ports"), (list, tuple)):
        fields["ports"] = sorted(fields["ports"], key=_port_key)
    if isinstance(fields.get("mounts"), (list, tuple)):
        fields["mounts"] = sorted(fields["mounts"], key=_canonical)
    ordered = [(name, fields.pop(name)) for name in ENTRY_ORDER if name in fields]
    return ordered + sorted(fields.items())


def _entry_fragments(container: Mapping, started_at: Mapping[str, str],
                     reserved: FrozenSet[str]) -> Tuple[str, str]:
    """(the consumers' fields, the rest of the record) of one entry, as XML fragments."""
    when = normalise_timestamp(started_at.get(scalar_text(container.get("Id", "") or "")))
    head = []  # type: List[str]
    tail = []  # type: List[str]
    for name, value in entry_fields(container, when):
        start, end = _open_tag(name, reserved)
        _content(head if name in ENTRY_ORDER else tail, start, end, value, reserved)
    return "".join(head), "".join(tail)


class PsDocument(NamedTuple):
    """A ``docker_ps`` value and what it leaves out."""

    xml: str
    total: int  # containers the engine listed
    listed: int  # entries in the document
    abridged: int  # listed entries that carry only the consumers' fields (ENTRY_ORDER)

    @property
    def complete(self) -> bool:
        return self.listed == self.total and not self.abridged


def _is_live(container: Mapping) -> bool:
    state = scalar_text(container.get("State", "") or "").lower()
    return state in ("running", "paused", "restarting") or normalise_status(container.get("Status")).startswith("Up")


def _byte_length(text: str) -> int:
    return len(text.encode("utf-8"))


def fit_docker_ps(containers: Iterable[Mapping], started_at: Optional[Mapping[str, str]] = None,
                  budget: Optional[int] = None, cost: Callable[[str], int] = _byte_length) -> PsDocument:
    """``docker_ps`` for the records of ``GET /containers/json?all=1``, at most ``budget`` in
    ``cost`` units (None: no limit).

    ``started_at`` maps a container's full ``Id`` to its start time, either Docker's raw
    ``State.StartedAt`` or an already normalised value (both go through ``normalise_timestamp``);
    containers missing from it get no ``started_at`` child.

    When everything fits, the document is the whole record of every container, unmarked. When it
    does not, every container first gets the fields consumers read (``ENTRY_ORDER``), running
    (and paused) containers first, then newest first; the rest of a record is added, in the same
    order, to the entries it fits in. Entries stay in document order (newest first), and the root
    says what was left out: ``<docker_ps total="N" listed="M" abridged="K">`` (XenCenter reads
    only ``entry`` elements, Xen Orchestra only ``docker_ps.item``; both ignore these)."""
    started_at = started_at or {}
    reserved = frozenset(["docker_ps"]) | _ENTRY_RESERVED
    records = sorted(containers, key=_created_key)
    if not records:
        return PsDocument(XML_DECLARATION + "<docker_ps/>", 0, 0, 0)
    fragments = [_entry_fragments(c, started_at, reserved) for c in records]
    whole = "".join("<item><entry>%s%s</entry></item>" % pair for pair in fragments)
    document = XML_DECLARATION + "<docker_ps>" + whole + "</docker_ps>"
    if budget is None or cost(document) <= budget:
        return PsDocument(document, len(records), len(records), 0)
    total = len(records)
    # The counts are not known yet: reserve room for the largest they can be.
    widest = '<docker_ps total="%d" listed="%d" abridged="%d">' % (total, total, total)
    room = budget - cost(XML_DECLARATION + widest + "</docker_ps>")
    live = [_is_live(record) for record in records]
    order = sorted(range(total), key=lambda i: (not live[i], i))
    listed, room = _take(order, live, [cost("<item><entry>%s</entry></item>" % f[0]) for f in fragments], room)
    sizes = [cost(f[1]) if i in listed else room + 1 for i, f in enumerate(fragments)]
    detailed, room = _take([i for i in order if i in listed], live, sizes, room)
    parts = [XML_DECLARATION, '<docker_ps total="%d" listed="%d" abridged="%d">'
             % (total, len(listed), len(listed) - len(detailed))]
    for index in sorted(listed):
        head, tail = fragments[index]
        parts.append("<item><entry>%s%s</entry></item>" % (head, tail if index in detailed else ""))
    parts.append("</docker_ps>")
    return PsDocument("".join(parts), total, len(listed), len(listed) - len(detailed))


def _take(order: Sequence[int], live: Sequence[bool], sizes: Sequence[int], room: int) -> Tuple[set, int]:
    """The indexes, in ``order``, whose sizes fit in ``room`` one after another, and the room
    left. A smaller live container may take the place of a larger one, a stopped one never does."""
    taken = set()
    live_refused = False
    for index in order:
        if sizes[index] <= room and (live[index] or not live_refused):
            taken.add(index)
            room -= sizes[index]
        elif live[index]:
            live_refused = True
    return taken, room


def render_docker_ps(containers: Iterable[Mapping],
                     started_at: Optional[Mapping[str, str]] = None) -> str:
    """``docker_ps`` with every container's whole record, whatever its size (see ``fit_docker_ps``)."""
    return fit_docker_ps(containers, started_at).xml


def fit_document(root: str, value: Mapping, budget: Optional[int] = None,
                 cost: Callable[[str], int] = _byte_length, first: Sequence[str] = ()) -> str:
    """``render_document(root, value)`` when it fits in ``budget``; else the top-level keys named in
    ``first`` (in that order), then the others by name, each while it fits, and the root says how
    many were left out: ``<root omitted="N">``."""
    document = render_document(root, value)
    if budget is None or cost(document) <= budget:
        return document
    reserved = frozenset([root])
    pieces = {}  # type: Dict[Any, str]
    for key, child in value.items():
        parts = []  # type: List[str]
        start, end = _open_tag(key, reserved)
        _content(parts, start, end, child, reserved)
        pieces[key] = "".join(parts)
    names = [k for k in first if k in pieces] + [k for k, _ in _sorted_items(value) if k not in first]
    opening = '<%s omitted="%d">' % (root, len(names))
    room = budget - cost(XML_DECLARATION + opening + "</%s>" % root)
    kept = set()
    for key in names:
        size = cost(pieces[key])
        if size <= room:
            kept.add(key)
            room -= size
    body = "".join(pieces[k] for k, _ in _sorted_items(value) if k in kept)
    return '%s<%s omitted="%d">%s</%s>' % (XML_DECLARATION, root, len(names) - len(kept), body, root)


# -- the other documents -------------------------------------------------------------------

def render_docker_info(info: Mapping, drop: Sequence[str] = VOLATILE_INFO_KEYS, budget: Optional[int] = None,
                       cost: Callable[[str], int] = _byte_length) -> str:
    """``docker_info`` for the record of ``GET /info`` (``drop``: keys left out), within
    ``budget`` (see ``fit_document``; the fields XenCenter reads come first)."""
    return fit_document("docker_info", dict((k, v) for k, v in info.items() if k not in drop),
                        budget, cost, XENCENTER_INFO_FIELDS)


def render_docker_version(version: Mapping, budget: Optional[int] = None,
                          cost: Callable[[str], int] = _byte_length) -> str:
    """``docker_version`` for the record of ``GET /version``, within ``budget``."""
    return fit_document("docker_version", version, budget, cost, XENCENTER_VERSION_FIELDS)


def render_docker_inspect(inspect_record: Mapping) -> str:
    """``docker_inspect`` for the record of ``GET /containers/{id}/json`` (``get_inspect``)."""
    return render_document("docker_inspect", inspect_record)


def render_docker_top(top: Mapping) -> str:
    """``docker_top`` for the record of ``GET /containers/{id}/top`` (``get_top``).

    A row shorter than ``Titles`` gets ``-`` for the missing columns, and so does a blank value
    (XenCenter's Processes tab fails on an empty ``PID``, ``CMD`` or ``TIME``); extra values are
    dropped. Columns keep the engine's order (a title that is not a plain name, such as Windows'
    ``Private Working Set``, is encoded like any other key)."""
    titles = [scalar_text(t) for t in (top.get("Titles") or [])]
    processes = top.get("Processes") or []
    reserved = frozenset(["docker_top"])
    parts = [XML_DECLARATION]
    if not processes:
        parts.append("<docker_top/>")
        return "".join(parts)
    parts.append("<docker_top>")
    for row in processes:
        row = list(row) if isinstance(row, (list, tuple)) else [row]
        if not titles:
            parts.append("<item><Process/></item>")
            continue
        parts.append("<item><Process>")
        for index, title in enumerate(titles):
            start, end = _open_tag(title, reserved)
            value = row[index] if index < len(row) else None
            if value is None or not scalar_text(value).strip():
                value = EMPTY_PROCESS_VALUE
            _content(parts, start, end, value, reserved)
        parts.append("</Process></item>")
    parts.append("</docker_top>")
    return "".join(parts)
