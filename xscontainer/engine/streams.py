"""Pure parsers of Docker's streamed bodies: the ``/events`` JSON stream, the multiplexed log
frames, and the two shapes of a container event.
"""

import json
import re
import struct
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from xscontainer import jsonbound
from xscontainer.errors import EngineError
from xscontainer.jsonbound import MAX_DEPTH, JsonScanner, TooDeep

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
# What one decoded body may hold, whatever its size in bytes: a /containers/json entry counts
# about 100 values and keys (20,000 containers), and 2 million values take 60 to 130 MB of Python
# objects, where a 64 MiB body of "{}," would take 1.5 GB.
MAX_BODY_VALUES = 2000000
_WHITESPACE = re.compile(rb"[ \t\r\n]*")


class JsonStreamSplitter(object):
    """Split a stream of concatenated JSON values (Docker writes one per line, but read boundaries
    fall anywhere) and decode each with ``json.JSONDecoder.raw_decode``.

    ``JsonScanner`` finds where each value ends, looking at every byte once whatever the read
    sizes, so that a value is decoded once, when complete: retrying the decoder on the whole
    buffer at every read cost time quadratic in the value's size. A value that does not complete
    within ``max_value_bytes`` is an ``ENGINE_RESPONSE_TOO_LARGE`` error, never unbounded memory;
    one nested deeper than ``max_depth`` is an ``ENGINE_PROTOCOL_ERROR`` as soon as it is seen.
    """

    def __init__(self, max_value_bytes: int = DEFAULT_MAX_EVENT_BYTES, max_depth: int = MAX_DEPTH) -> None:
        self._decoder = json.JSONDecoder()
        self._scanner = JsonScanner(max_depth)
        self._buf = bytearray()
        self._start = 0  # where the current value (or the whitespace before it) begins
        self._max = max_value_bytes

    def feed(self, data: bytes) -> List[Any]:
        self._buf += data
        values = []  # type: List[Any]
        while True:
            if not self._scanner.started:
                self._start = _WHITESPACE.match(self._buf, self._start).end()
                if self._start == len(self._buf):
                    break
            end = self._find_end()
            if end is None:
                self._check_size(len(self._buf))
                break
            self._check_size(end)
            values.append(self._decode(self._start, end))
            self._start = end
            self._scanner.reset()
        # Consumed bytes go once per read (not once per value: that would copy the rest each time).
        del self._buf[:self._start]
        self._start = 0
        return values

    def _find_end(self) -> Optional[int]:
        try:
            return self._scanner.find_end(self._buf, self._start)
        except TooDeep as exc:
            raise EngineError("The Docker engine sent a stream value that nests deeper than %d levels."
                              % exc.limit, code="ENGINE_PROTOCOL_ERROR") from exc

    def _decode(self, start: int, end: int) -> Any:
        try:
            text = bytes(self._buf[start:end]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EngineError("The Docker engine sent a stream that is not UTF-8.",
                              code="ENGINE_PROTOCOL_ERROR") from exc
        try:
            value, used = self._decoder.raw_decode(text)
        except ValueError as exc:
            raise EngineError("The Docker engine sent a stream that is not JSON: %s" % exc,
                              code="ENGINE_PROTOCOL_ERROR") from exc
        if used != len(text):
            raise EngineError("The Docker engine sent a stream that is not JSON (%r)." % text[used:used + 40],
                              code="ENGINE_PROTOCOL_ERROR")
        return value

    def _check_size(self, end: int) -> None:
        if end - self._start > self._max:
            raise EngineError("The Docker engine sent a stream value larger than %d bytes." % self._max,
                              code="ENGINE_RESPONSE_TOO_LARGE")


def decode_json_body(body: bytes, max_depth: int = MAX_DEPTH, max_values: int = MAX_BODY_VALUES) -> Any:
    """A complete JSON response body; ENGINE_PROTOCOL_ERROR when it is not UTF-8 JSON or nests
    deeper than ``max_depth`` (checked before decoding: ``json`` would raise RecursionError);
    ENGINE_RESPONSE_TOO_LARGE when it would decode into more than ``max_values`` values."""
    if jsonbound.count_values(body) > max_values:
        raise EngineError("The Docker engine answered with more than %d JSON values (a container list "
                          "of about %d containers): more than xscontainer decodes from one VM at once."
                          % (max_values, max_values // 100), code="ENGINE_RESPONSE_TOO_LARGE")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EngineError("The Docker engine answered with something that is not UTF-8.",
                          code="ENGINE_PROTOCOL_ERROR") from exc
    try:
        return jsonbound.loads(text, max_depth)
    except TooDeep as exc:
        raise EngineError("The Docker engine answered with JSON that nests deeper than %d levels."
                          % exc.limit, code="ENGINE_PROTOCOL_ERROR") from exc
    except ValueError as exc:
        raise EngineError("The Docker engine answered with something that is not JSON.",
                          code="ENGINE_PROTOCOL_ERROR") from exc


class ContainerEvent(NamedTuple):
    action: str  # "start", "die", "exec_start" (the part before ":")
    id: str  # the container's full id
    image: Optional[str]
    name: Optional[str]
    attributes: Dict[str, str]
    time: Optional[int]  # seconds
    time_nano: Optional[int]
    raw: Dict[str, Any]


def parse_container_event(event: Dict[str, Any]) -> Optional[ContainerEvent]:
    """Normalise one event record of either shape; None when it is not about a container.

    Current shape (API >= 1.22): ``{"Type": "container", "Action": "start",
    "Actor": {"ID": ..., "Attributes": {"name": ..., "image": ...}}, "time": ..., "timeNano": ...}``.
    Legacy shape: ``{"status": "start", "id": ..., "from": image, "time": ...}`` (no type: it is
    a container event when it has an id and a ``from``).
    """
    if not isinstance(event, dict):
        return None
    kind = event.get("Type")
    actor = event.get("Actor") if isinstance(event.get("Actor"), dict) else {}
    attributes = actor.get("Attributes") if isinstance(actor.get("Attributes"), dict) else {}
    if kind is not None:
        if kind != "container":
            return None
        action = event.get("Action") or event.get("status") or ""
        ident = actor.get("ID") or event.get("id") or ""
    else:
        action = event.get("status") or ""
        ident = event.get("id") or ""
        if not event.get("from"):
            return None  # legacy image/network events have no "from"
    if not isinstance(action, str) or not isinstance(ident, str) or not action or not ident:
        return None
    image = attributes.get("image") or event.get("from")
    time_value = event.get("time")
    nano = event.get("timeNano")
    return ContainerEvent(
        action=action.split(":", 1)[0].strip(),
        id=ident,
        image=image if isinstance(image, str) else None,
        name=attributes.get("name") if isinstance(attributes.get("name"), str) else None,
        attributes=dict((str(k), str(v)) for k, v in attributes.items()),
        time=time_value if isinstance(time_value, int) else None,
        time_nano=nano if isinstance(nano, int) else None,
        raw=event,
    )


STDIN, STDOUT, STDERR = 0, 1, 2
STREAM_NAMES = {STDIN: "stdin", STDOUT: "stdout", STDERR: "stderr"}
_FRAME = struct.Struct(">BxxxL")


class LogFrameDemuxer(object):
    """Split Docker's multiplexed stream (8-byte header: stream byte, 3 zero bytes, big-endian
    length) into ``(stream, payload)`` pieces; payloads may come in several pieces when a frame
    spans reads.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._stream = STDOUT
        self._remaining = 0

    @property
    def at_frame_boundary(self) -> bool:
        return self._remaining == 0 and not self._buf

    def feed(self, data: bytes) -> List[Tuple[int, bytes]]:
        self._buf += data
        out = []  # type: List[Tuple[int, bytes]]
        pos, size = 0, len(self._buf)
        # Walk with an offset and drop the consumed bytes once: slicing the buffer at every frame
        # copied the rest of it each time (quadratic in the number of frames in one read).
        while pos < size:
            if self._remaining == 0:
                if size - pos < _FRAME.size:
                    break
                stream, length = _FRAME.unpack_from(self._buf, pos)
                if stream not in STREAM_NAMES or self._buf[pos + 1:pos + 4] != b"\0\0\0":
                    raise EngineError("The Docker engine sent a log stream with a bad frame header.",
                                      code="ENGINE_PROTOCOL_ERROR")
                pos += _FRAME.size
                self._stream, self._remaining = stream, length
                continue
            take = min(self._remaining, size - pos)
            out.append((self._stream, bytes(self._buf[pos:pos + take])))
            pos += take
            self._remaining -= take
        del self._buf[:pos]
        return out


def demux_logs(raw: bytes) -> List[Tuple[str, bytes]]:
    """Demultiplex a complete log body into ``(stream name, payload)`` frames, merging pieces."""
    demuxer = LogFrameDemuxer()
    pieces = demuxer.feed(raw)
    if not demuxer.at_frame_boundary:
        raise EngineError("The Docker engine's log stream ends inside a frame.",
                          code="ENGINE_PROTOCOL_ERROR")
    return [(STREAM_NAMES[stream], data) for stream, data in pieces]


def frame(stream: int, payload: bytes) -> bytes:
    """Build one frame (tests and fakes)."""
    return _FRAME.pack(stream, len(payload)) + payload
