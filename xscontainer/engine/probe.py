"""Does a Docker engine answer on this stream? The ``/_ping`` probe by which the SSH tunnel
chooses its way to the guest's Docker socket (``transport.ssh.SshTunnel``'s ``probe``)."""

import socket
from typing import Callable, Optional

from xscontainer.engine.httpparse import ResponseHead, ResponseParser
from xscontainer.errors import EngineError
from xscontainer.transport.ssh import NO_ANSWER, ChannelStream

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: xscontainer\r\n\r\n"


def ping_engine(stream: ChannelStream, deadline: float, clock: Callable[[], float]) -> Optional[str]:
    """None when the engine answers /_ping on this stream by ``deadline`` (of ``clock``),
    ``NO_ANSWER`` when it stays silent until then, else why not."""
    parser = ResponseParser("GET")
    try:
        stream.sendall(PING)
        while True:
            event = parser.next_event()
            if isinstance(event, ResponseHead):
                break
            why_not = _feed_more(stream, parser, deadline, clock)
            if why_not is not None:
                return stream.eof_reason() if why_not == CLOSED else why_not
        while not parser.done:
            event = parser.next_event()
            if not isinstance(event, bytes) and not parser.done:
                why_not = _feed_more(stream, parser, deadline, clock)
                if why_not is not None:
                    return "closed inside the answer" if why_not == CLOSED else why_not
        if not parser.keep_alive:
            return "the engine does not keep connections open"
        return None
    except socket.timeout:
        return NO_ANSWER
    except (EngineError, OSError, EOFError) as exc:
        return str(exc) or type(exc).__name__


CLOSED = "closed"  # _feed_more: the stream ended


def _feed_more(stream: ChannelStream, parser: ResponseParser, deadline: float,
               clock: Callable[[], float]) -> Optional[str]:
    """Feed the parser what the stream has next: None, else ``NO_ANSWER`` (the deadline passed)
    or ``CLOSED``."""
    remaining = deadline - clock()
    if remaining <= 0:
        return NO_ANSWER
    stream.settimeout(remaining)
    data = stream.recv(65536)
    if not data:
        return CLOSED
    parser.feed(data)
    return None
