"""Pure, incremental HTTP/1.1 response parsing (status line, headers, Content-Length, chunked and
read-until-close bodies): bytes in, events out, no I/O.

Written sans-I/O (as h11 is) so the same code serves every stream (SSH channel, TLS socket, Unix
socket) and can be tested with responses split at arbitrary byte boundaries.
"""

import collections
import re
from typing import Deque, List, NamedTuple, Optional, Tuple, Union

from xscontainer.digits import ascii_digits
from xscontainer.errors import EngineError

PROTOCOL_ERROR = "ENGINE_PROTOCOL_ERROR"
TOO_LARGE = "ENGINE_RESPONSE_TOO_LARGE"

MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE = 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_PLAIN_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})\r\n")  # no extension, no blanks


class ResponseHead(NamedTuple):
    version: str  # "HTTP/1.1"
    status: int
    reason: str
    headers: List[Tuple[str, str]]  # names lower-cased, in order

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default


class _Sentinel(object):
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
END = _Sentinel("END")

Event = Union[ResponseHead, bytes, _Sentinel]


def _protocol_error(what: str) -> EngineError:
    return EngineError("The Docker engine sent something that is not a valid HTTP response (%s)." % what,
                       code=PROTOCOL_ERROR)


def parse_head(raw: bytes) -> ResponseHead:
    """Parse a status line and headers (without the final blank line)."""
    try:
        text = raw.decode("iso-8859-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise _protocol_error("undecodable head")
    lines = text.split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or len(parts[0]) != 8:
        raise _protocol_error("bad status line %r" % status_line[:80])
    code = parts[1]
    if len(code) != 3 or not ascii_digits(code):
        raise _protocol_error("bad status code %r" % code[:20])
    headers = []  # type: List[Tuple[str, str]]
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise _protocol_error("obsolete header folding")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t"):
            raise _protocol_error("bad header line %r" % line[:80])
        headers.append((name.lower(), value.strip(" \t")))
    return ResponseHead(parts[0], int(code), parts[2] if len(parts) > 2 else "", headers)


def _content_length(head: ResponseHead) -> Optional[int]:
    values = [v for k, v in head.headers if k == "content-length"]
    if not values:
        return None
    distinct = set(v.strip() for value in values for v in value.split(","))
    if len(distinct) != 1:
        raise _protocol_error("conflicting Content-Length")
    value = distinct.pop()
    if not ascii_digits(value):
        raise _protocol_error("bad Content-Length %r" % value[:20])
    return int(value)


def _is_chunked(head: ResponseHead) -> bool:
    codings = [c.strip().lower() for k, v in head.headers if k == "transfer-encoding"
               for c in v.split(",") if c.strip()]
    if not codings:
        return False
    if codings != ["chunked"]:
        raise _protocol_error("unsupported Transfer-Encoding %r" % ",".join(codings))
    return True


def keeps_alive(head: ResponseHead) -> bool:
    """True when the connection may carry another request after this response (RFC 7230 6.3)."""
    tokens = set(t.strip().lower() for k, v in head.headers if k == "connection" for t in v.split(","))
    if "close" in tokens:
        return False
    if head.version == "HTTP/1.1":
        return True
    return "keep-alive" in tokens


class ChunkedDecoder(object):
    """Incremental decoder of a chunked body (RFC 7230 4.1): ``feed`` bytes, get data pieces.

    ``done`` turns True after the last chunk and the trailers; bytes beyond that are kept in
    ``unused``. Each received byte is copied in once and (if data) out once, and searched once for
    a line end, whatever the chunk and read sizes: slicing the buffer at every chunk made 1-byte
    chunks cost time quadratic in the read size.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already consumed (dropped once per feed)
        self._searched = 0  # where the search for the current line's CRLF resumes
        self._state = "size"  # size | data | data_crlf | trailer | done
        self._remaining = 0
        self._trailer_bytes = 0
        self.unused = b""

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> List[bytes]:
        if self._state == "done":
            self.unused += data
            return []
        self._buf += data
        out = []  # type: List[bytes]
        while self._whole_chunk(out) or self._step(out):
            pass
        del self._buf[:self._pos]
        self._searched = max(0, self._searched - self._pos)
        self._pos = 0
        return out

    def _whole_chunk(self, out: List[bytes]) -> bool:
        """Fast path: a chunk whose size line, data and CRLF have all arrived, in one step."""
        if self._state != "size":
            return False
        match = _PLAIN_SIZE_LINE.match(self._buf, self._pos)
        if match is None:
            return False
        start = match.end()
        end = start + int(match.group(1), 16)
        if end == start or self._buf[end:end + 2] != b"\r\n":
            return False  # the last chunk, incomplete, or malformed: the general path decides
        out.append(bytes(self._buf[start:end]))
        self._pos = self._searched = end + 2
        return True

    def _step(self, out: List[bytes]) -> bool:
        """Decode one element (size line, data, CRLF, trailer line); False when more bytes are needed."""
        if self._state == "size":
            line = self._line(MAX_CHUNK_LINE, "chunk size line too long")
            if line is None:
                return False
            size_text = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise _protocol_error("bad chunk size %r" % line[:40])
            self._remaining = int(size_text, 16)
            self._state = "data" if self._remaining else "trailer"
        elif self._state == "data":
            take = min(self._remaining, len(self._buf) - self._pos)
            if not take:
                return False
            out.append(bytes(self._buf[self._pos:self._pos + take]))
            self._pos += take
            self._remaining -= take
            if not self._remaining:
                self._state = "data_crlf"
        elif self._state == "data_crlf":
            if len(self._buf) - self._pos < 2:
                return False
            if self._buf[self._pos:self._pos + 2] != b"\r\n":
                raise _protocol_error("missing CRLF after chunk data")
            self._pos += 2
            self._searched = self._pos
            self._state = "size"
        elif self._state == "trailer":
            line = self._line(MAX_HEAD_BYTES - self._trailer_bytes, "trailers too long")
            if line is None:
                return False
            self._trailer_bytes += len(line) + 2
            if not line:
                self._state = "done"
                self.unused = bytes(self._buf[self._pos:])
                self._pos = len(self._buf)
                return False
        return True

    def _line(self, limit: int, too_long: str) -> Optional[bytes]:
        """The next CRLF-terminated line (consumed), or None until it is complete; a line longer
        than ``limit`` is a protocol error."""
        end = self._buf.find(b"\r\n", max(self._pos, self._searched - 1))
        if end < 0:
            self._searched = len(self._buf)
            if len(self._buf) - self._pos > limit:
                raise _protocol_error(too_long)
            return None
        if end - self._pos > limit:
            raise _protocol_error(too_long)
        line = bytes(self._buf[self._pos:end])
        self._pos = end + 2
        self._searched = self._pos
        return line


class ResponseParser(object):
    """Incremental parser of one response: ``feed(data)`` / ``feed_eof()``, then ``next_event()``
    until it returns ``NEED_DATA`` or ``END``.

    Events: one ``ResponseHead`` (interim 1xx responses are skipped), then body pieces as
    ``bytes``, then ``END``. ``method`` matters because a HEAD response has no body.
    """

    def __init__(self, method: str = "GET", max_head: int = MAX_HEAD_BYTES) -> None:
        self._method = method.upper()
        self._max_head = max_head
        self._buf = bytearray()
        self._searched = 0  # where the search for the end of the head resumes
        self._eof = False
        self._state = "head"  # head | length | chunked | close | done
        self._remaining = 0
        self._chunked = None  # type: Optional[ChunkedDecoder]
        self._pending = collections.deque()  # type: Deque[bytes]
        self.head = None  # type: Optional[ResponseHead]
        self.keep_alive = False

    @property
    def done(self) -> bool:
        return self._state == "done"

    @property
    def trailing(self) -> bytes:
        """Bytes received after the end of the response (a protocol error on a reused connection)."""
        if self._chunked is not None:
            return self._chunked.unused + bytes(self._buf)
        return bytes(self._buf) if self._state == "done" else b""

    def feed(self, data: bytes) -> None:
        if self._eof:
            raise ValueError("data fed after EOF")
        self._buf += data

    def feed_eof(self) -> None:
        self._eof = True

    def next_event(self) -> Event:
        if self._pending:
            return self._pending.popleft()
        if self._state == "head":
            return self._next_head()
        if self._state == "length":
            if self._buf:
                piece = bytes(self._buf[:self._remaining])
                del self._buf[:len(piece)]
                self._remaining -= len(piece)
                if not self._remaining:
                    self._state = "done"
                return piece
            if not self._remaining:
                self._state = "done"
                return END
            if self._eof:
                raise _protocol_error("connection closed %d bytes before the end of the body"
                                      % self._remaining)
            return NEED_DATA
        if self._state == "chunked":
            assert self._chunked is not None
            if self._buf:
                data, self._buf = self._buf, bytearray()
                # One event per read, however many chunks it held (1-byte chunks would otherwise
                # cost an event, and a pass through every layer above, per byte).
                pieces = self._chunked.feed(data)
                if pieces:
                    self._pending.append(b"".join(pieces))
                if self._chunked.done:
                    self._state = "done"
                if self._pending:
                    return self._pending.popleft()
                return self.next_event()
            if self._chunked.done:
                self._state = "done"
                return END
            if self._eof:
                raise _protocol_error("connection closed inside a chunked body")
            return NEED_DATA
        if self._state == "close":
            if self._buf:
                data, self._buf = bytes(self._buf), bytearray()
                return data
            if self._eof:
                self._state = "done"
                return END
            return NEED_DATA
        return END

    def _next_head(self) -> Event:
        while True:
            # Resume where the last search stopped: a head arriving byte by byte is searched once.
            end = self._buf.find(b"\r\n\r\n", max(0, self._searched - 3))
            if (len(self._buf) if end < 0 else end) > self._max_head:
                raise EngineError("The Docker engine sent response headers larger than %d bytes."
                                  % self._max_head, code=TOO_LARGE)
            if end < 0:
                self._searched = len(self._buf)
                if self._eof:
                    if self._buf:
                        raise _protocol_error("connection closed inside the response head")
                    raise _protocol_error("connection closed before any response")
                # Garbage that cannot become a status line is rejected without waiting for more.
                probe = bytes(self._buf[:5])
                if probe and not b"HTTP/"[:len(probe)] == probe:
                    raise _protocol_error("bad status line %r" % bytes(self._buf[:40]))
                return NEED_DATA
            head = parse_head(bytes(self._buf[:end]))
            del self._buf[:end + 4]
            self._searched = 0
            if 100 <= head.status < 200 and head.status != 101:
                continue  # interim response: the real one follows
            self.head = head
            self._start_body(head)
            return head

    def _start_body(self, head: ResponseHead) -> None:
        self.keep_alive = keeps_alive(head)
        if self._method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200:
            self._state = "done"
            self._pending.clear()
            return
        if _is_chunked(head):
            self._state = "chunked"
            self._chunked = ChunkedDecoder()
            return
        length = _content_length(head)
        if length is not None:
            self._state = "length"
            self._remaining = length
            return
        self._state = "close"
        self.keep_alive = False

    @property
    def ends_at_eof(self) -> bool:
        """True when the body is delimited by the connection closing (EOF is its normal end)."""
        return self._state in ("close", "done")

    def expected_length(self) -> Optional[int]:
        """The announced body length, when known after the head."""
        if self._state == "length":
            return self._remaining
        return None
