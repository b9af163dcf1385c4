"""CPU cost of parsing what a guest's engine sends, in shapes a hostile engine can choose, each
against a baseline of the same payload in an ordinary shape measured in the same run:

- a chunked body of --size bytes in 1-byte chunks vs the same body in 16 KiB chunks, the wire
  bytes fed to ``ResponseParser`` in 64 KiB reads (a socket's) and in one read;
- one event of --size bytes fed to ``JsonStreamSplitter`` in 16-byte reads vs in one read;
- --size bytes of 1-byte log frames vs one frame, through ``LogFrameDemuxer`` in one read.

Prints one JSON object: CPU seconds (best of --repeat, ``time.process_time``), body MB/s, and
each shape's ratio to its baseline. Parsers that look at each byte a bounded number of times keep
the ratios flat as --size grows; quadratic ones make them grow with it (try --size 65536 and
1048576).

With --h11 (h11 installed: ``pip install h11``; not a dependency), the responses are also parsed
by h11 and by ours side by side: the shapes above, and a 10,000-container /containers/json body
(Content-Length, and chunked in 16 KiB chunks) in 256 KiB reads, the client's read size.

Usage: bench/parsers.py [--size BYTES] [--repeat N] [--h11]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xscontainer.engine.httpparse import END, NEED_DATA, ResponseParser  # noqa: E402
from xscontainer.engine.streams import JsonStreamSplitter, LogFrameDemuxer, frame  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
SOCKET_READ = 64 * 1024


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256 * 1024, help="payload bytes (default 262144)")
    parser.add_argument("--repeat", type=int, default=3, help="samples per figure, best kept (default 3)")
    parser.add_argument("--h11", action="store_true", help="compare with h11 (must be installed)")
    return parser.parse_args(argv)


def chunked(body, chunk):
    pieces = [HEAD]
    for start in range(0, len(body), chunk):
        piece = body[start:start + chunk]
        pieces.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    pieces.append(b"0\r\n\r\n")
    return b"".join(pieces)


def parse_response(raw, read):
    parser = ResponseParser()
    reads = [raw[i:i + read] for i in range(0, len(raw), read)]
    reads.reverse()
    total = 0
    while True:
        event = parser.next_event()
        if event is END:
            return total
        if event is NEED_DATA:
            parser.feed(reads.pop())
        elif isinstance(event, bytes):
            total += len(event)


def parse_response_h11(raw, read):
    import h11
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/containers/json", headers=[("Host", "docker")]))
    conn.send(h11.EndOfMessage())
    reads = [raw[i:i + read] for i in range(0, len(raw), read)]
    reads.reverse()
    total = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(reads.pop() if reads else b"")
        elif isinstance(event, h11.Data):
            total += len(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return total


def container_list(count):
    entry = (b'{"Id": "%064d", "Names": ["/web-%d"], "Image": "nginx:latest", "ImageID": "sha256:%064d", '
             b'"Command": "nginx -g daemon off;", "Created": 1700000000, "Ports": [{"IP": "0.0.0.0", '
             b'"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}], "Labels": {"maintainer": "NGINX"}, '
             b'"State": "running", "Status": "Up 2 hours", "HostConfig": {"NetworkMode": "default"}, '
             b'"NetworkSettings": {"Networks": {"bridge": {"NetworkID": "%064d", "Gateway": "172.17.0.1", '
             b'"IPAddress": "172.17.0.2", "IPPrefixLen": 16, "MacAddress": "02:42:ac:11:00:02"}}}, "Mounts": []}')
    return b"[" + b",".join(entry % (i, i, i, i) for i in range(count)) + b"]"


def compare_h11(args, size):
    body = b"x" * size
    listing = container_list(10000)
    cases = {
        "one_byte_chunks_socket_reads": (chunked(body, 1), SOCKET_READ, size),
        "one_byte_chunks_one_read": (chunked(body, 1), None, size),
        "16k_chunks_socket_reads": (chunked(body, 16 * 1024), SOCKET_READ, size),
        "containers_json_content_length": (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(listing)
                                           + listing, 256 * 1024, len(listing)),
        "containers_json_16k_chunks": (chunked(listing, 16 * 1024), 256 * 1024, len(listing)),
    }
    result = {}
    for name, (raw, read, payload) in sorted(cases.items()):
        read = read or len(raw)
        ours = _common.best_cpu(args.repeat, parse_response, raw, read)
        theirs = _common.best_cpu(args.repeat, parse_response_h11, raw, read)
        result[name] = {"ours": figure(ours, payload), "h11": figure(theirs, payload),
                        "h11_over_ours": ratio(theirs, ours)}
    import h11
    result["h11_version"] = h11.__version__
    return result


def split_event(data, read):
    splitter = JsonStreamSplitter(max_value_bytes=len(data) + 1)
    values = []
    for start in range(0, len(data), read):
        values.extend(splitter.feed(data[start:start + read]))
    assert len(values) == 1


def demux(data):
    LogFrameDemuxer().feed(data)


def figure(seconds, size):
    return {"cpu_s": round(seconds, 5), "mb_per_s": round(size / 1e6 / seconds, 2) if seconds > 0 else None}


def ratio(shape, baseline):
    return round(shape / baseline, 1) if baseline > 0 else None


def main(argv=None):
    args = parse_args(argv)
    size = args.size
    body = b"x" * size
    result = {"bench": "parsers", "size": size, "repeat": args.repeat, "python": sys.version.split()[0]}

    small, large = chunked(body, 1), chunked(body, 16 * 1024)
    for name, read in (("socket_reads", SOCKET_READ), ("one_read", len(small))):
        one = _common.best_cpu(args.repeat, parse_response, small, read)
        base = _common.best_cpu(args.repeat, parse_response, large, read)
        result["chunked_" + name] = {"one_byte_chunks": figure(one, size), "baseline_16k_chunks": figure(base, size),
                                     "ratio": ratio(one, base), "wire_bytes": len(small)}

    event = b'{"Type": "container", "Action": "' + b"x" * size + b'"}\n'
    drip = _common.best_cpu(args.repeat, split_event, event, 16)
    whole = _common.best_cpu(args.repeat, split_event, event, len(event))
    result["event"] = {"16_byte_reads": figure(drip, size), "baseline_one_read": figure(whole, size),
                       "ratio": ratio(drip, whole)}

    tiny = b"".join(frame(1, b"x") for _ in range(size))
    many = _common.best_cpu(args.repeat, demux, tiny)
    one_frame = _common.best_cpu(args.repeat, demux, frame(1, body))
    result["log_frames"] = {"one_byte_frames": figure(many, size), "baseline_one_frame": figure(one_frame, size),
                            "ratio": ratio(many, one_frame)}
    if args.h11:
        result["h11_comparison"] = compare_h11(args, size)
    _common.emit(result)


if __name__ == "__main__":
    main()
