"""The parsers of what a guest's engine sends cost time linear in the bytes received, whatever
the shape (1-byte chunks, 1-byte reads, thousands of tiny values or frames in one read).

No wall-clock bound is asserted. Each test times the same work at size N and 16N in the same
process, interleaved, keeps the fastest of several CPU-time samples of each (``time.process_time``:
other processes on the machine do not count; the garbage collector is paused, its passes depend
on the heap, not on the parser) and asserts the ratio. Machine speed and load scale both samples
alike and cancel out. Linear code measured 13 to 27 (16 expected); the quadratic code these tests
were written against measured 120 to 167 at these sizes, and its ratio only grows with N. The
bound, 48, is three times the linear figure and well below the quadratic one.
"""

import gc
import time

from xscontainer.engine.httpparse import END, NEED_DATA, ResponseHead, ResponseParser
from xscontainer.engine.streams import JsonStreamSplitter, LogFrameDemuxer, frame

GROWTH = 16
MAX_RATIO = 48.0
SAMPLES = 3


def cpu_seconds(work, argument):
    started = time.process_time()
    work(argument)
    return time.process_time() - started


def growth_ratio(work, make_input, small):
    """CPU time of ``work`` on an input of size 16*small over its time on size ``small``."""
    inputs = (make_input(small), make_input(small * GROWTH))
    work(inputs[0])  # warm up (imports, caches)
    best = [float("inf"), float("inf")]
    gc.disable()
    try:
        for _ in range(SAMPLES):
            for index, data in enumerate(inputs):
                best[index] = min(best[index], cpu_seconds(work, data))
    finally:
        gc.enable()
    return best[1] / max(best[0], 1e-6)


def one_byte_chunks(size):
    return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * size + b"0\r\n\r\n")


def body_length(raw, piece=None):
    """Parse a whole response fed at once (a full socket buffer), or in ``piece``-byte reads."""
    parser = ResponseParser()
    pieces = [raw] if piece is None else [raw[i:i + piece] for i in range(0, len(raw), piece)]
    pieces.reverse()
    total = 0
    while True:
        event = parser.next_event()
        if event is END:
            return total
        if event is NEED_DATA:
            if pieces:
                parser.feed(pieces.pop())
            else:
                parser.feed_eof()
        elif isinstance(event, bytes):
            total += len(event)
        else:
            assert isinstance(event, ResponseHead)


def test_one_byte_chunks_in_one_read_cost_linear_time():
    assert body_length(one_byte_chunks(100)) == 100
    assert growth_ratio(body_length, one_byte_chunks, 4096) < MAX_RATIO


def test_a_head_received_one_byte_at_a_time_costs_linear_time():
    def head(size):
        return b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * (size // 8) + b"Content-Length: 0\r\n\r\n"
    assert growth_ratio(lambda raw: body_length(raw, piece=1), head, 3000) < MAX_RATIO


def test_a_large_event_in_small_reads_costs_linear_time():
    def feed_in_pieces(data):
        splitter = JsonStreamSplitter(max_value_bytes=len(data) + 1)
        values = []
        for start in range(0, len(data), 16):
            values.extend(splitter.feed(data[start:start + 16]))
        assert len(values) == 1

    def event(size):
        return b'{"Type": "container", "Action": "' + b"x" * size + b'"}\n'
    assert growth_ratio(feed_in_pieces, event, 8192) < MAX_RATIO


def test_many_small_events_in_one_read_cost_linear_time():
    def events(count):
        return b'{"status":"start","id":"a"}\n' * count

    def split(data):
        assert len(JsonStreamSplitter().feed(data)) == data.count(b"\n")
    assert growth_ratio(split, events, 1024) < MAX_RATIO


def test_many_small_log_frames_in_one_read_cost_linear_time():
    def frames(count):
        return frame(1, b"x") * count

    def demux(data):
        assert len(LogFrameDemuxer().feed(data)) == len(data) // 9
    assert growth_ratio(demux, frames, 4096) < MAX_RATIO
