"""The one HTTP/1.1 client of xscontainer, written once over any byte stream (SSH channel, TLS
socket, Unix socket), with keep-alive connection reuse, a size bound and a deadline per response.

Why our own client and not the ``docker`` package: docker-py rides on requests/urllib3, whose
connection pools cannot be fed an already-open SSH channel, whose SSH adapter spawns
``docker system dial-stdio`` per connection, and which has no bound on a response's size. The
API surface we need is small (``client.py``), so a small client we fully control is simpler and
safer than adapting theirs.
"""

import logging
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from xscontainer.engine.budget import ByteBudget
from xscontainer.engine.httpparse import END, NEED_DATA, TOO_LARGE, ResponseHead, ResponseParser
from xscontainer.errors import ConnectionFailure, EngineError
from xscontainer.transport.stream import Stream

LOG = logging.getLogger(__name__)

TIMEOUT = "ENGINE_TIMEOUT"
CONNECTION_LOST = "CONNECTION_LOST"

RECV_SIZE = 256 * 1024


class Limits(NamedTuple):
    """Bounds of every response: 64 MiB is ~100 times what ``/containers/json?all=1`` of
    10,000 containers takes; 30 s covers a slow ``stats``; stop/restart add their grace period."""

    max_body_bytes: int = 64 * 1024 * 1024
    response_timeout: float = 30.0
    max_event_bytes: int = 1024 * 1024


class Response(NamedTuple):
    status: int
    reason: str
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return ResponseHead("HTTP/1.1", self.status, self.reason, self.headers).header(name, default)


def build_request(method: str, target: str, host: str = "docker",
                  headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None) -> bytes:
    """Serialise a request; ``target`` must already be percent-encoded."""
    if any(c in target for c in " \r\n") or not target.startswith("/"):
        raise ValueError("bad request target %r" % target)
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % host, "User-Agent: xscontainer"]
    for name, value in (headers or {}).items():
        if any(c in name + value for c in "\r\n"):
            raise ValueError("bad header %r" % name)
        lines.append("%s: %s" % (name, value))
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    elif method in ("POST", "PUT"):
        lines.append("Content-Length: 0")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data + (body or b"")


class _Deadline(object):
    def __init__(self, seconds: Optional[float], clock: Callable[[], float]) -> None:
        self._clock = clock
        self._at = None if seconds is None else clock() + seconds
        self.seconds = seconds

    def remaining(self) -> Optional[float]:
        if self._at is None:
            return None
        left = self._at - self._clock()
        if left <= 0:
            raise EngineError("The Docker engine did not answer within %.0f s." % self.seconds, code=TIMEOUT)
        return left


class HttpConnection(object):
    """One HTTP/1.1 conversation on one stream; requests are sent one at a time (no pipelining)."""

    def __init__(self, stream: Stream, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self._clock = clock
        self.reusable = True
        self.requests = 0
        self.received = 0  # bytes of the current request's response received so far

    def close(self) -> None:
        self.reusable = False
        self.stream.close()

    def _recv(self, deadline: _Deadline) -> bytes:
        timeout = deadline.remaining()
        try:
            self.stream.settimeout(timeout)
            data = self.stream.recv(RECV_SIZE)
            self.received += len(data)
            return data
        except socket.timeout as exc:
            self.close()
            raise EngineError("The Docker engine did not answer within %.0f s." % deadline.seconds,
                              code=TIMEOUT) from exc
        except (OSError, EOFError) as exc:
            self.close()
            raise ConnectionFailure("The connection to the Docker engine broke: %s" % (exc or type(exc).__name__),
                                    code=CONNECTION_LOST) from exc

    def _closed_midway(self) -> ConnectionFailure:
        why = self.stream.broken()
        return ConnectionFailure("The connection to the Docker engine closed in the middle of a response%s."
                                 % (" (%s)" % why if why else ""), code=CONNECTION_LOST)

    def send(self, data: bytes, deadline: _Deadline) -> None:
        self.requests += 1
        self.received = 0
        try:
            self.stream.settimeout(deadline.remaining())
            self.stream.sendall(data)
        except socket.timeout as exc:
            self.close()
            raise EngineError("The Docker engine did not accept the request within %.0f s."
                              % deadline.seconds, code=TIMEOUT) from exc
        except (OSError, EOFError) as exc:
            self.close()
            raise ConnectionFailure("The connection to the Docker engine broke: %s" % (exc or type(exc).__name__),
                                    code=CONNECTION_LOST) from exc

    def _next_event(self, parser: ResponseParser) -> Any:
        """The parser's next event; a protocol error closes the connection (its state is lost)."""
        try:
            return parser.next_event()
        except EngineError:
            self.close()
            raise

    def read_head(self, parser: ResponseParser, deadline: _Deadline) -> Tuple[ResponseHead, bool]:
        """Read until the head is parsed; also says whether any byte arrived (stale detection)."""
        got_any = False
        while True:
            event = self._next_event(parser)
            if isinstance(event, ResponseHead):
                return event, True
            data = self._recv(deadline)
            if data:
                got_any = True
                parser.feed(data)
            else:
                self.close()
                if not got_any:
                    raise _StaleConnection()
                raise self._closed_midway()

    def iter_body(self, parser: ResponseParser, deadline: _Deadline,
                  max_bytes: Optional[int]) -> Iterator[bytes]:
        total = 0
        while True:
            event = self._next_event(parser)
            if event is END:
                if not parser.keep_alive or parser.trailing:
                    self.close()
                return
            if event is NEED_DATA:
                data = self._recv(deadline)
                if data:
                    parser.feed(data)
                elif parser.ends_at_eof:
                    parser.feed_eof()
                else:
                    self.close()
                    raise self._closed_midway()
                continue
            assert isinstance(event, bytes)
            total += len(event)
            if max_bytes is not None and total > max_bytes:
                self.close()
                raise EngineError("The Docker engine's response exceeds the %d-byte bound." % max_bytes,
                                  code=TOO_LARGE)
            yield event


class _StaleConnection(Exception):
    """The peer closed the connection without sending a byte of an answer."""


# RFC 9110 9.2.2: a client may repeat these automatically, the engine's state ends the same.
IDEMPOTENT = frozenset(["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"])


def may_resend(method: str, sent: bool, received: int) -> bool:
    """Pure: whether a request that failed on a reused connection may be sent again. Never once
    a byte of an answer came (the engine got the request); for any method when the send itself
    failed (a partial request cannot be acted on); after a complete send, only for idempotent
    methods: a connection that dies silently after a complete POST may have carried it out (the
    engine restarted the container, then the VM's network dropped), and a second
    ``POST .../restart`` would restart it twice."""
    if received:
        return False
    return not sent or method in IDEMPOTENT


def _lost_request(method: str, sent: bool, received: int, exc: BaseException) -> ConnectionFailure:
    if isinstance(exc, ConnectionFailure) and (received or not sent or exc.code != CONNECTION_LOST):
        return exc  # its message already says what broke (e.g. the engine refused our certificate)
    if not sent:
        return ConnectionFailure("The connection to the Docker engine broke before the request was sent.",
                                 code=CONNECTION_LOST)
    if method in IDEMPOTENT:
        return ConnectionFailure("The Docker engine closed the connection without answering.",
                                 code=CONNECTION_LOST)
    return ConnectionFailure("The connection to the Docker engine broke before it answered: the operation "
                             "may or may not have been carried out (it is not repeated automatically).",
                             code=CONNECTION_LOST)


class StreamingResponse(object):
    """A response whose body is read piece by piece (events, followed logs). ``close()`` may be
    called from another thread to stop a reader blocked in ``iter_body``."""

    def __init__(self, conn: HttpConnection, head: ResponseHead, parser: ResponseParser,
                 read_timeout: Optional[float], max_bytes: Optional[int],
                 clock: Callable[[], float]) -> None:
        self._conn = conn
        self.head = head
        self._parser = parser
        self._read_timeout = read_timeout
        self._max_bytes = max_bytes
        self._clock = clock
        self.closed = False

    @property
    def status(self) -> int:
        return self.head.status

    def iter_body(self) -> Iterator[bytes]:
        """Body pieces; each read waits at most ``read_timeout`` (None: as long as the transport
        lives; its keepalive detects a dead peer)."""
        total = 0
        while True:
            deadline = _Deadline(self._read_timeout, self._clock)
            try:
                event = self._parser.next_event()
            except EngineError:
                self.close()
                raise
            if event is END:
                self.close()
                return
            if event is NEED_DATA:
                try:
                    data = self._conn._recv(deadline)
                except (EngineError, ConnectionFailure):
                    if self.closed:
                        return  # closed on purpose by another thread
                    raise
                if data:
                    self._parser.feed(data)
                elif self.closed:
                    return
                elif self._parser.ends_at_eof:
                    self._parser.feed_eof()
                else:
                    self.close()
                    raise self._conn._closed_midway()
                continue
            assert isinstance(event, bytes)
            total += len(event)
            if self._max_bytes is not None and total > self._max_bytes:
                self.close()
                raise EngineError("The Docker engine's response exceeds the %d-byte bound." % self._max_bytes,
                                  code=TOO_LARGE)
            yield event

    def close(self) -> None:
        self.closed = True
        self._conn.close()


class HttpPool(object):
    """HTTP/1.1 keep-alive over streams from ``open_stream``: idle connections are reused (at most
    ``max_idle`` kept; one the peer closed while idle is dropped before use); a request that dies
    on a reused connection is sent again on a new stream only when ``may_resend`` says so.
    Thread-safe: each request takes a connection for itself. A whole-body ``request`` reserves
    its bytes in ``budget`` as they arrive (the VM's, itself part of the process's) and gives them
    back when the response is done or failed: ``max_bytes`` bounds one response, the budget all
    of one VM's (and the monitor's) at once."""

    def __init__(self, open_stream: Callable[[], Stream], limits: Limits = Limits(),
                 max_idle: int = 4, clock: Callable[[], float] = time.monotonic,
                 host: str = "docker", budget: Optional[ByteBudget] = None, vm_uuid: str = "") -> None:
        self._open_stream = open_stream
        self._budget = budget
        self._vm_uuid = vm_uuid
        self.limits = limits
        self._max_idle = max_idle
        self._clock = clock
        self._host = host
        self._lock = threading.Lock()
        self._idle = []  # type: List[HttpConnection]
        self._closed = False

    @property
    def budget(self) -> Optional[ByteBudget]:
        """The VM's budget (None: unbounded), which decoded answers are held in too."""
        return self._budget

    def _take(self) -> Tuple[HttpConnection, bool]:
        with self._lock:
            if self._closed:  # its owner is done with it: open nothing nobody would close
                raise ConnectionFailure("The connection to the Docker engine was closed.", code=CONNECTION_LOST,
                                        closed=True)
            while self._idle:
                conn = self._idle.pop()
                if conn.stream.alive():
                    return conn, True
                conn.close()
        return HttpConnection(self._open_stream(), self._clock), False

    def _give_back(self, conn: HttpConnection) -> None:
        with self._lock:
            if conn.reusable and not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def warm(self) -> None:
        """Open one connection now (so connection errors surface here) and keep it idle."""
        self._give_back(self._take()[0])

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def _start(self, method: str, target: str, body: Optional[bytes], headers: Optional[Dict[str, str]],
               deadline: _Deadline) -> Tuple[HttpConnection, ResponseParser, ResponseHead]:
        """Send the request and read the response's head. A request that died on a reused
        connection is sent again, once, on a new one only when the engine provably did not act on
        it (``may_resend``); ``POST .../restart`` must never be delivered twice."""
        data = build_request(method, target, self._host, headers, body)
        for attempt in range(2):
            conn, reused = self._take()
            parser = ResponseParser(method)
            sent = False
            try:
                conn.send(data, deadline)
                sent = True
                head, _ = conn.read_head(parser, deadline)
                return conn, parser, head
            except (_StaleConnection, ConnectionFailure) as exc:
                conn.close()
                if attempt == 0 and reused and may_resend(method, sent, conn.received):
                    LOG.debug("reused connection %s failed before any answer (%s); sending %s again",
                              conn.stream.description, exc or type(exc).__name__, method)
                    continue
                raise _lost_request(method, sent, conn.received, exc) from exc
        raise AssertionError("unreachable")

    def request(self, method: str, target: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None, timeout: Optional[float] = None,
                max_bytes: Optional[int] = None) -> Response:
        """Send one request and read the whole response within the bounds."""
        deadline = _Deadline(self.limits.response_timeout if timeout is None else timeout, self._clock)
        limit = self.limits.max_body_bytes if max_bytes is None else max_bytes
        conn, parser, head = self._start(method, target, body, headers, deadline)
        announced = parser.expected_length()
        if announced is not None and announced > limit:
            conn.close()
            raise EngineError("The Docker engine's response (%d bytes) exceeds the %d-byte bound."
                              % (announced, limit), code=TOO_LARGE)
        pieces = []  # type: List[bytes]
        reserved = 0
        try:
            for piece in conn.iter_body(parser, deadline, limit):
                if self._budget is not None:
                    self._budget.reserve(len(piece), self._vm_uuid)
                    reserved += len(piece)
                pieces.append(piece)
            data = b"".join(pieces)
        finally:
            del pieces[:]
            if not parser.done:
                conn.close()
            if reserved and self._budget is not None:
                self._budget.release(reserved)
        self._give_back(conn)
        return Response(head.status, head.reason, head.headers, data)

    def stream(self, method: str, target: str, headers: Optional[Dict[str, str]] = None,
               head_timeout: Optional[float] = None, read_timeout: Optional[float] = None,
               max_bytes: Optional[int] = None) -> StreamingResponse:
        """Send a request whose body is consumed incrementally, on a connection of its own."""
        deadline = _Deadline(self.limits.response_timeout if head_timeout is None else head_timeout,
                             self._clock)
        conn, parser, head = self._start(method, target, None, headers, deadline)
        conn.reusable = False
        return StreamingResponse(conn, head, parser, read_timeout, max_bytes, self._clock)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
