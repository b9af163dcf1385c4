"""Pure parsers: HTTP responses, chunked bodies, JSON event streams, log frames; literal inputs
and property-based splits at arbitrary byte boundaries."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xscontainer.engine.httpparse import (END, NEED_DATA, ChunkedDecoder, ResponseHead, ResponseParser,
                                          keeps_alive, parse_head)
from xscontainer.engine.streams import (JsonStreamSplitter, LogFrameDemuxer, demux_logs, frame,
                                        parse_container_event)
from xscontainer.errors import EngineError


def run_parser(pieces, method="GET", eof=False):
    parser = ResponseParser(method)
    head, body, ended = None, [], False
    queue = list(pieces)
    while True:
        event = parser.next_event()
        if isinstance(event, ResponseHead):
            head = event
        elif isinstance(event, bytes):
            body.append(event)
        elif event is END:
            ended = True
            break
        elif event is NEED_DATA:
            if queue:
                parser.feed(queue.pop(0))
            elif eof:
                parser.feed_eof()
                eof = False
            else:
                break
    return head, b"".join(body), ended, parser


def parse_response(raw):
    """One complete response, the connection closed after it: its head and body."""
    head, body, ended, _ = run_parser([raw], eof=True)
    assert ended
    return head, body


def decode_chunked(raw):
    """A chunked body through one ChunkedDecoder: the bytes, and whether the last chunk came."""
    decoder = ChunkedDecoder()
    return b"".join(decoder.feed(raw)), decoder.done


def split_at(data, cuts):
    cuts = sorted(set(c % (len(data) + 1) for c in cuts))
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return [p for p in pieces if p]


def chunked(body, sizes):
    out, i = b"", 0
    sizes = [s for s in sizes if s > 0] or [len(body) or 1]
    k = 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        k += 1
        out += ("%x" % len(body[i:i + n])).encode() + b"\r\n" + body[i:i + n] + b"\r\n"
        i += n
    return out + b"0\r\n\r\n"


def test_content_length_response():
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
    head, body = parse_response(raw)
    assert (head.status, head.reason, body) == (200, "OK", b"[]")
    assert head.header("content-type") == "application/json"
    assert keeps_alive(head)


def test_chunked_response_with_extensions_and_trailers():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"
    head, body = parse_response(raw)
    assert body == b"Wikipedia"


def test_read_until_close_and_http10():
    head, body, ended, parser = run_parser([b"HTTP/1.0 200 OK\r\n\r\nabc", b"def"], eof=True)
    assert (body, ended, parser.keep_alive) == (b"abcdef", True, False)


def test_no_body_statuses_and_head():
    head, body, ended, _ = run_parser([b"HTTP/1.1 204 No Content\r\n\r\n"])
    assert ended and body == b""
    head, body, ended, _ = run_parser([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"], method="HEAD")
    assert ended and body == b""


def test_interim_response_skipped():
    head, body, ended, _ = run_parser([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    assert head.status == 200 and body == b"x"


def test_connection_close_header():
    head = parse_head(b"HTTP/1.1 200 OK\r\nConnection: close")
    assert not keeps_alive(head)
    assert keeps_alive(parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive"))


@pytest.mark.parametrize("raw", [
    b"SSH-2.0-OpenSSH_9.2\r\n",
    b"HTTP/1.1 2x0 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
    b"\x00\x01\x02garbage",
])
def test_garbage_is_a_protocol_error(raw):
    with pytest.raises(EngineError) as info:
        run_parser([raw], eof=True)
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"


def test_garbage_rejected_before_eof():
    # No need to wait for more data when the first bytes cannot start a status line.
    with pytest.raises(EngineError):
        run_parser([b"garbage without end"])


def test_truncated_bodies_are_errors():
    with pytest.raises(EngineError):
        run_parser([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], eof=True)
    with pytest.raises(EngineError):
        run_parser([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"], eof=True)


def test_huge_head_is_too_large():
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 20000)
    with pytest.raises(EngineError) as info:
        parser.next_event()
    assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"


def test_trailing_bytes_are_reported():
    _, _, ended, parser = run_parser([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA"])
    assert ended and parser.trailing == b"EXTRA"


def test_a_chunked_body_requires_the_last_chunk():
    assert decode_chunked(b"3\r\nabc\r\n0\r\n\r\n") == (b"abc", True)
    assert decode_chunked(b"3\r\nabc\r\n") == (b"abc", False)
    with pytest.raises(EngineError) as info:
        run_parser([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"], eof=True)
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 700), min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 10000), max_size=12), use_chunked=st.booleans())
def test_response_split_anywhere(body, sizes, cuts, use_chunked):
    if use_chunked:
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, sizes)
    else:
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    head, got, ended, parser = run_parser(split_at(raw, cuts))
    assert ended and got == body and head.status == 200 and parser.keep_alive


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2000), sizes=st.lists(st.integers(1, 300), min_size=1, max_size=5),
       cuts=st.lists(st.integers(0, 5000), max_size=10))
def test_chunked_decoder_split_anywhere(body, sizes, cuts):
    decoder = ChunkedDecoder()
    out = b""
    for piece in split_at(chunked(body, sizes) + b"NEXT", cuts):
        out += b"".join(decoder.feed(piece))
    assert decoder.done and out == body and decoder.unused == b"NEXT"


CURRENT = {"Type": "container", "Action": "start", "Actor": {"ID": "a" * 64, "Attributes": {
    "name": "web", "image": "nginx"}}, "status": "start", "id": "a" * 64, "from": "nginx",
    "time": 1700000000, "timeNano": 1700000000123456789, "scope": "local"}
LEGACY = {"status": "die", "id": "b" * 64, "from": "busybox", "time": 1400000000}


def test_event_shapes():
    current = parse_container_event(CURRENT)
    assert (current.action, current.id, current.name, current.image) == ("start", "a" * 64, "web", "nginx")
    assert current.time_nano == 1700000000123456789
    legacy = parse_container_event(LEGACY)
    assert (legacy.action, legacy.id, legacy.image, legacy.name) == ("die", "b" * 64, "busybox", None)
    exec_event = dict(CURRENT, Action="exec_start: sh -c true")
    assert parse_container_event(exec_event).action == "exec_start"
    assert parse_container_event({"Type": "network", "Action": "connect", "Actor": {"ID": "n"}}) is None
    assert parse_container_event({"status": "untag", "id": "sha256:x"}) is None  # legacy image event
    assert parse_container_event(["not", "a", "dict"]) is None


def test_json_splitter_literal():
    splitter = JsonStreamSplitter()
    assert splitter.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert splitter.feed(b': "\xc3') == []
    assert splitter.feed(b'\xa9"}\n{"c":2}{"d":3}') == [{"b": "\u00e9"}, {"c": 2}, {"d": 3}]


def test_json_splitter_garbage_and_bound():
    with pytest.raises(EngineError) as info:
        JsonStreamSplitter().feed(b'{"a": 1}\nnot json at all\n')
    assert info.value.code == "ENGINE_PROTOCOL_ERROR"
    splitter = JsonStreamSplitter(max_value_bytes=1000)
    splitter.feed(b'{"a": "' + b"x" * 900)
    with pytest.raises(EngineError) as info:
        splitter.feed(b"x" * 200)
    assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=8),
       cuts=st.lists(st.integers(0, 100000), max_size=20), newline=st.booleans())
def test_json_splitter_split_anywhere(values, cuts, newline):
    sep = "\n" if newline else ""
    raw = "".join(json.dumps(v, ensure_ascii=False) + sep for v in values).encode("utf-8")
    splitter = JsonStreamSplitter()
    got = []
    for piece in split_at(raw, cuts):
        got.extend(splitter.feed(piece))
    assert got == values


def test_log_frames_literal():
    raw = frame(1, b"out line\n") + frame(2, b"err line\n") + frame(1, b"")
    assert demux_logs(raw) == [("stdout", b"out line\n"), ("stderr", b"err line\n")]
    with pytest.raises(EngineError):
        demux_logs(raw[:-3] + frame(1, b"abc")[:5])
    with pytest.raises(EngineError):
        demux_logs(b"\x07\x00\x00\x00\x00\x00\x00\x01x")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(min_size=1, max_size=300)), max_size=10),
       cuts=st.lists(st.integers(0, 5000), max_size=12))
def test_log_frames_split_anywhere(frames, cuts):
    raw = b"".join(frame(s, p) for s, p in frames)
    demuxer = LogFrameDemuxer()
    merged = {1: b"", 2: b""}
    order = []
    for piece in split_at(raw, cuts):
        for stream, data in demuxer.feed(piece):
            merged[stream] += data
            order.append(stream)
    assert demuxer.at_frame_boundary
    assert merged[1] == b"".join(p for s, p in frames if s == 1)
    assert merged[2] == b"".join(p for s, p in frames if s == 2)


def test_json_splitter_strings_escapes_and_brackets_at_every_boundary():
    raw = b'{"a": "q\\"}\\\\", "b": ["]", "{", "\\\\\\""]}\n[1, {"c": null}] "s\\"" 12 true\n'
    expected = [{"a": 'q"}\\', "b": ["]", "{", '\\"']}, [1, {"c": None}], 's"', 12, True]
    for cut in range(len(raw) + 1):
        splitter = JsonStreamSplitter()
        assert splitter.feed(raw[:cut]) + splitter.feed(raw[cut:]) == expected, cut
    splitter = JsonStreamSplitter()
    assert [v for i in range(len(raw)) for v in splitter.feed(raw[i:i + 1])] == expected


def test_json_splitter_refuses_garbage_and_a_complete_value_over_the_bound():
    for garbage in (b"]\n", b'{"a": 1]\n', b"nope\n", b'{"a" 1}'):
        with pytest.raises(EngineError) as info:
            JsonStreamSplitter().feed(garbage)
        assert info.value.code == "ENGINE_PROTOCOL_ERROR", garbage
    with pytest.raises(EngineError) as info:
        JsonStreamSplitter(max_value_bytes=100).feed(b'{"a": "' + b"x" * 200 + b'"}\n')
    assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"


def test_chunk_lines_and_trailers_are_bounded():
    with pytest.raises(EngineError):
        decode_chunked(b"1;" + b"x" * 2000 + b"\r\nx\r\n0\r\n\r\n")
    with pytest.raises(EngineError):
        decode_chunked(b"0\r\n" + b"X-T: y\r\n" * 10000 + b"\r\n")
    assert decode_chunked(b"1;ext=1\r\nx\r\n 2 \r\nyz\r\n0\r\nX-T: y\r\n\r\n") == (b"xyz", True)
