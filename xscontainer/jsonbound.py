"""JSON from untrusted senders (a guest's engine, a configuration) with bounded nesting, and where
a value ends in a stream, found by looking at each byte once.

Python's ``json`` decoder recurses once per level, so a few thousand ``[`` raise RecursionError,
an internal error unless turned into a refusal (``loads``); and a stream splitter that retries
``raw_decode`` from the start of its buffer on every read costs time quadratic in the value's
size. ``JsonScanner`` looks at each byte once (regular expressions skip everything but brackets
and quotes) and refuses depth beyond a bound as the value arrives; it does not validate: ``json``
still decodes the value it delimits.
"""

import json
import re
import sys
from typing import Any, Optional, Tuple, Union

# Docker's own records nest less than 10 deep, cloud-config and Ignition documents about as
# little; 100 levels stay far below the recursion limit (and the C stack) of any thread.
MAX_DEPTH = 100

_QUOTE = ord('"')
_OPENERS = (ord("["), ord("{"))
_STRUCTURE = re.compile(rb'["\[\]{}]')  # the bytes that matter outside strings
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.S)  # up to the closing quote (or the end)
_TOKEN = re.compile(rb'[^ \t\r\n\[\]{}",:]*')  # a number, true, false, null (or garbage)
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_TEXT_WHITESPACE = re.compile(r"[ \t\r\n]*")

# From this size on a top-level list is decoded one element at a time: ``json.loads`` holds the
# GIL for the whole of a value (0.2 to 0.5 s for a guest's 12 MB container list) and every other
# VM's watcher waits meanwhile; between elements the other threads get their turn.
ELEMENTWISE_CHARS = 1024 * 1024

Buffer = Union[bytes, bytearray]


class TooDeep(ValueError):
    """The value nests deeper than the bound (a ValueError, as ``json``'s own refusals are)."""

    def __init__(self, limit: int) -> None:
        super().__init__("the JSON value nests deeper than %d levels" % limit)
        self.limit = limit


class JsonScanner(object):
    """Finds the end of the JSON value that starts at ``buf[start]`` (not whitespace), across calls
    as more bytes arrive: each call resumes where the previous one stopped.

    Its positions are relative to ``start``, so the caller may drop bytes before the value between
    calls. ``reset()`` before scanning the next value.
    """

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        self.max_depth = max_depth
        self.reset()

    def reset(self) -> None:
        self._scanned = 0  # bytes of the current value already looked at
        self._depth = 0
        self._in_string = False
        self._token = False

    @property
    def started(self) -> bool:
        """True once part of a value has been scanned (whitespace before a value is the caller's)."""
        return self._scanned > 0

    def find_end(self, buf: Buffer, start: int) -> Optional[int]:
        """The offset just past the value, or None while it is incomplete; TooDeep beyond the bound.

        A top-level number or literal ends at the first byte that cannot continue it (Docker ends
        every value with a line break). A byte that cannot start a value is returned as a value of
        its own, for ``json`` to refuse.
        """
        pos = start + self._scanned
        if self._scanned == 0:
            first = buf[start]
            if first in _OPENERS:
                self._open()
                pos += 1
            elif first == _QUOTE:
                self._in_string = True
                pos += 1
            else:
                self._token = True
        if self._token:
            end = _TOKEN.match(buf, pos).end()
            if end == len(buf):
                self._scanned = end - start
                return None
            return max(end, start + 1)
        end, pos = self._scan(buf, pos)
        self._scanned = pos - start
        return end

    def _scan(self, buf: Buffer, pos: int) -> Tuple[Optional[int], int]:
        """(the end of the value or None, where scanning stopped)."""
        size = len(buf)
        while pos < size:
            if self._in_string:
                pos = _STRING_REST.match(buf, pos).end()
                if pos >= size or buf[pos] != _QUOTE:
                    return None, pos  # the end of the data, or a backslash whose escaped byte is to come
                pos += 1
                self._in_string = False
                if self._depth == 0:
                    return pos, pos
                continue
            match = _STRUCTURE.search(buf, pos)
            if match is None:
                return None, size
            pos = match.end()
            byte = buf[pos - 1]
            if byte == _QUOTE:
                self._in_string = True
            elif byte in _OPENERS:
                self._open()
            else:
                self._depth -= 1
                if self._depth == 0:
                    return pos, pos
        return None, pos

    def _open(self) -> None:
        self._depth += 1
        if self._depth > self.max_depth:
            raise TooDeep(self.max_depth)


def count_values(data: Buffer) -> int:
    """An upper bound of the values and keys ``json`` would build from ``data`` (each follows an
    opening bracket, a comma or a colon; those inside strings make the bound looser, never lower),
    counted at C speed before decoding. Decoded, each costs 30 to 70 bytes of Python objects, so a
    small body of ``{},{},...`` may take 25 times its size in memory."""
    return 1 + data.count(b",") + data.count(b":") + data.count(b"[") + data.count(b"{")


# Bytes of Python objects (and list or dict slots) per value ``count_values`` counts, at most:
# measured with tracemalloc on the costliest shapes (a list of empty dicts, of one-key dicts),
# 170 on Python 3.6 (dom0's) and 97 on 3.11; a /containers/json list takes 70 and 47.
VALUE_BYTES = 192 if sys.version_info < (3, 11) else 112
_UCS4 = re.compile(rb"[\xf0-\xff]")  # UTF-8 lead bytes of characters beyond U+FFFF
_UCS2 = re.compile(rb"[\xc4-\xef]")  # of characters beyond U+00FF


def decoded_size_bound(data: Buffer) -> int:
    """An upper bound of the memory that decoding ``data`` takes at its peak: the bytes, the
    text decoded from them (1, 2 or 4 bytes a character, as wide as their widest character: a
    single emoji makes it four times the bytes), the strings decoded from that text (no more
    characters than it, no wider) and ``VALUE_BYTES`` per value counted. Pure, at C speed; about
    twice what a container list really takes."""
    width = 4 if _UCS4.search(data) else 2 if _UCS2.search(data) else 1
    return len(data) * (1 + 2 * width) + count_values(data) * VALUE_BYTES


def nesting_exceeds(value: Any, max_depth: int = MAX_DEPTH) -> bool:
    """True when a decoded value (plain dicts and lists, as ``json`` makes them) nests more than
    ``max_depth`` deep; walked without recursion, a top-level list or dict being level 1."""
    stack = [(value, 1)] if type(value) is dict or type(value) is list else []
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if depth > max_depth:
            return True
        depth += 1
        # type() is: isinstance() and a generator made this walk cost 90 % of the decoding, not 30 %.
        for child in (item.values() if type(item) is dict else item):
            if type(child) is dict or type(child) is list:
                push((child, depth))
    return False


def loads(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses nesting beyond ``max_depth`` with TooDeep (a ValueError).

    ``json`` itself stops where Python's recursion limit does, with RecursionError (the C decoder
    counts its levels against it, so nothing crashes); what it decodes below that is walked once
    more, without recursion: a third of the decoding's cost for a 10,000-container list, where a
    bracket scan of the text before decoding (a Python loop over every bracket and quote) cost
    2 to 7 times the decoding.
    """
    try:
        value = _decode(text)
    except RecursionError as exc:
        raise TooDeep(max_depth) from exc
    # Fewer brackets than levels cannot nest too deep (most bodies: one inspect record, a ping).
    if text.count("[") + text.count("{") > max_depth and nesting_exceeds(value, max_depth):
        raise TooDeep(max_depth)
    return value


def _decode(text: str) -> Any:
    """``json.loads(text)``, a large top-level list one element at a time (``ELEMENTWISE_CHARS``)."""
    start = _TEXT_WHITESPACE.match(text).end()
    if len(text) < ELEMENTWISE_CHARS or not text.startswith("[", start):
        return json.loads(text)
    decoder = json.JSONDecoder()
    items = []
    pos = _TEXT_WHITESPACE.match(text, start + 1).end()
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            value, pos = decoder.raw_decode(text, pos)
            items.append(value)
            pos = _TEXT_WHITESPACE.match(text, pos).end()
            if text.startswith("]", pos):
                pos += 1
                break
            if not text.startswith(",", pos):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _TEXT_WHITESPACE.match(text, pos + 1).end()
    if _TEXT_WHITESPACE.match(text, pos).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, pos)
    return items
