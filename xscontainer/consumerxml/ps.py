"""The ``docker_ps`` document (pure, no I/O).

Root ``docker_ps``, one ``<item><entry>...</entry></item>`` per container, newest first: every
top-level key of Docker's ``/containers/json`` record, lower-cased, plus

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
"""

import collections.abc
import datetime
import json
import re
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from xscontainer.consumerxml.encoding import (XML_DECLARATION, append_element, open_tag, scalar_text,
                                              utf8_length)

STARTED_AT = "started_at"
ENTRY_ORDER = ("id", "names", "status", "container", "created", "image", "command", STARTED_AT,
               "ports")

_EXITED_RE = re.compile(r"\AExited \((-?\d+)\)")
_TIMESTAMP_RE = re.compile(
    r"\A(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:([Zz])|([+-])(\d\d):?(\d\d))\Z")
_ENTRY_RESERVED = frozenset(["entry", "item"])


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


class _Fragments:
    """Each entry's XML (the consumers' fields, the rest of the record), rendered when first asked
    for: rendering all 10,000 entries of a hostile guest's list cost 2.9 s of CPU per refresh for a
    document that holds a few hundred of them."""

    def __init__(self, records: Sequence[Mapping], started_at: Mapping[str, str],
                 reserved: FrozenSet[str]) -> None:
        self._records = records
        self._started_at = started_at
        self._reserved = reserved
        self._fields = {}  # type: Dict[int, List[Tuple[str, Any]]]
        self._rendered = {}  # type: Dict[Tuple[int, bool], str]

    def head(self, index: int) -> str:
        return self._render(index, True)

    def tail(self, index: int) -> str:
        return self._render(index, False)

    def _render(self, index: int, consumers_fields: bool) -> str:
        text = self._rendered.get((index, consumers_fields))
        if text is None:
            text = self._rendered[index, consumers_fields] = self._render_afresh(index, consumers_fields)
        return text

    def _render_afresh(self, index: int, consumers_fields: bool) -> str:
        fields = self._fields.get(index)
        if fields is None:
            container = self._records[index]
            when = normalise_timestamp(self._started_at.get(scalar_text(container.get("Id", "") or "")))
            fields = self._fields[index] = entry_fields(container, when)
        parts = []  # type: List[str]
        for name, value in fields:
            if (name in ENTRY_ORDER) == consumers_fields:
                start, end = open_tag(name, self._reserved)
                append_element(parts, start, end, value, self._reserved)
        return "".join(parts)


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


def fit_docker_ps(containers: Iterable[Mapping], started_at: Optional[Mapping[str, str]] = None,
                  budget: Optional[int] = None, cost: Callable[[str], int] = utf8_length) -> PsDocument:
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
    records = sorted(containers, key=_created_key)
    if not records:
        return PsDocument(XML_DECLARATION + "<docker_ps/>", 0, 0, 0)
    fragments = _Fragments(records, started_at, frozenset(["docker_ps"]) | _ENTRY_RESERVED)
    total = len(records)
    whole = _whole_document(fragments, total, budget, cost)
    if whole is not None:
        return PsDocument(whole, total, total, 0)
    # The counts are not known yet: reserve room for the largest they can be.
    widest = '<docker_ps total="%d" listed="%d" abridged="%d">' % (total, total, total)
    room = budget - cost(XML_DECLARATION + widest + "</docker_ps>")
    live = [_is_live(record) for record in records]
    order = sorted(range(total), key=lambda i: (not live[i], i))
    listed, room = _take(order, live, lambda i: cost("<item><entry>%s</entry></item>" % fragments.head(i)), room)
    detailed, room = _take([i for i in order if i in listed], live, lambda i: cost(fragments.tail(i)), room)
    parts = [XML_DECLARATION, '<docker_ps total="%d" listed="%d" abridged="%d">'
             % (total, len(listed), len(listed) - len(detailed))]
    for index in sorted(listed):
        parts.append("<item><entry>%s%s</entry></item>"
                     % (fragments.head(index), fragments.tail(index) if index in detailed else ""))
    parts.append("</docker_ps>")
    return PsDocument("".join(parts), total, len(listed), len(listed) - len(detailed))


def _whole_document(fragments: _Fragments, total: int, budget: Optional[int],
                    cost: Callable[[str], int]) -> Optional[str]:
    """Every whole entry, or None as soon as they exceed ``budget`` (``cost`` is additive)."""
    parts = [XML_DECLARATION, "<docker_ps>"]
    used = cost(XML_DECLARATION + "<docker_ps></docker_ps>")
    for index in range(total):
        item = "<item><entry>%s%s</entry></item>" % (fragments.head(index), fragments.tail(index))
        if budget is not None:
            used += cost(item)
            if used > budget:
                return None
        parts.append(item)
    parts.append("</docker_ps>")
    return "".join(parts)


# Entries in a row that do not fit before the rest are left out unrendered: a smaller one further
# on could still fit, but looking for it cost rendering each entry of a 10,000-container list.
MAX_REFUSED_IN_A_ROW = 100


def _take(order: Sequence[int], live: Sequence[bool], size_of: Callable[[int], int],
          room: int) -> Tuple[set, int]:
    """The indexes, in ``order`` (live ones first), whose sizes fit in ``room`` one after another,
    and the room left. A smaller live container may take the place of a larger one, a stopped one
    never does; after ``MAX_REFUSED_IN_A_ROW`` refusals the rest are left out."""
    taken = set()
    live_refused = False
    refused_in_a_row = 0
    for index in order:
        if (live_refused and not live[index]) or refused_in_a_row >= MAX_REFUSED_IN_A_ROW:
            break  # every later index is stopped, or out of reach
        size = size_of(index)
        if size <= room:
            taken.add(index)
            room -= size
            refused_in_a_row = 0
        else:
            refused_in_a_row += 1
            live_refused = live_refused or live[index]
    return taken, room


def render_docker_ps(containers: Iterable[Mapping],
                     started_at: Optional[Mapping[str, str]] = None) -> str:
    """``docker_ps`` with every container's whole record, whatever its size (see ``fit_docker_ps``)."""
    return fit_docker_ps(containers, started_at).xml
