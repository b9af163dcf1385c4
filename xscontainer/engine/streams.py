"""Pure parsers of Docker's streamed bodies: the ``/events`` JSON stream, the multiplexed log
frames, and the two shapes of a container event.
"""

import json
import struct
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from xscontainer.errors import EngineError

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
_WHITESPACE = b" \t\r\n"


class JsonStreamSplitter(object):
    """Split a stream of concatenated JSON values with ``json.JSONDecoder.raw_decode``.

    Docker writes one compact JSON value per line, but read boundaries fall anywhere. A value that
    does not decode yet is incomplete while no line break follows it (compact JSON never contains
    a raw line break); once a line break has arrived and it still does not decode, it is garbage.
    A value that does not complete within ``max_value_bytes`` is an ``ENGINE_RESPONSE_TOO_LARGE``
    error, never unbounded memory.
    """

    def __init__(self, max_value_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._decoder = json.JSONDecoder()
        self._buf = b""
        self._max = max_value_bytes

    def feed(self, data: bytes) -> List[Any]:
        self._buf += data
        values = []  # type: List[Any]
        while True:
            self._buf = self._buf.lstrip(_WHITESPACE)
            if not self._buf:
                break
            text = self._decodable_prefix()
            try:
                value, end = self._decoder.raw_decode(text)
            except ValueError as exc:
                if b"\n" in self._buf:
                    raise EngineError("The Docker engine sent a stream that is not JSON: %s" % exc,
                                      code="ENGINE_PROTOCOL_ERROR") from exc
                self._check_size()
                break
            if end == len(text) and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._check_size()  # a number at the end of the data may still grow
                break
            values.append(value)
            self._buf = self._buf[len(text[:end].encode("utf-8")):]
        return values

    def _decodable_prefix(self) -> str:
        try:
            return self._buf.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multibyte character split by a read boundary: decode up to it, wait for the rest.
            if exc.reason == "unexpected end of data" and exc.end == len(self._buf):
                return self._buf[:exc.start].decode("utf-8", "replace")
            raise EngineError("The Docker engine sent a stream that is not UTF-8.",
                              code="ENGINE_PROTOCOL_ERROR") from exc

    def _check_size(self) -> None:
        if len(self._buf) > self._max:
            raise EngineError("The Docker engine sent a stream value larger than %d bytes." % self._max,
                              code="ENGINE_RESPONSE_TOO_LARGE")


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
        self._buf = b""
        self._stream = STDOUT
        self._remaining = 0

    @property
    def at_frame_boundary(self) -> bool:
        return self._remaining == 0 and not self._buf

    def feed(self, data: bytes) -> List[Tuple[int, bytes]]:
        self._buf += data
        out = []  # type: List[Tuple[int, bytes]]
        while self._buf:
            if self._remaining == 0:
                if len(self._buf) < _FRAME.size:
                    break
                stream, length = _FRAME.unpack_from(self._buf)
                if stream not in STREAM_NAMES or self._buf[1:4] != b"\0\0\0":
                    raise EngineError("The Docker engine sent a log stream with a bad frame header.",
                                      code="ENGINE_PROTOCOL_ERROR")
                self._buf = self._buf[_FRAME.size:]
                self._stream, self._remaining = stream, length
                continue
            piece = self._buf[:self._remaining]
            self._buf = self._buf[len(piece):]
            self._remaining -= len(piece)
            out.append((self._stream, piece))
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
