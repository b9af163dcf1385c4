"""Running a command in a container (Docker's exec API) with the connection hijacked, over any
engine Stream: the VM's SSH channel or TLS socket, or the monitor's control socket.

Pure pieces (the create body, the start request, the upgrade answer) are separate from the pump
that moves bytes between the local terminal or pipes and the engine.
"""

import json
import logging
import os
import re
import select
import socket
import threading
from typing import BinaryIO, Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from xscontainer.engine.httpparse import MAX_HEAD_BYTES
from xscontainer.engine.streams import STDERR, LogFrameDemuxer
from xscontainer.errors import ConnectionFailure, EngineError, InvalidArgument

LOG = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
POLL_INTERVAL = 0.5  # how often a blocked reader looks at its stop flag
ENV_ENTRY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")


class ExecOptions(NamedTuple):
    command: Sequence[str]
    interactive: bool = False  # -i: our stdin goes to the command's
    tty: bool = False          # -t: a pseudo-terminal (stdout and stderr merged, raw bytes)
    user: str = ""
    workdir: str = ""
    env: Sequence[str] = ()


def exec_create_body(options: ExecOptions) -> bytes:
    """The JSON of ``POST /containers/{id}/exec``."""
    if not options.command:
        raise InvalidArgument("Name the command to run in the container.", code="USAGE")
    for entry in options.env:
        if not ENV_ENTRY.fullmatch(entry):
            raise InvalidArgument("%r is not NAME=VALUE." % (entry,))
    config = {"AttachStdin": options.interactive, "AttachStdout": True, "AttachStderr": True,
              "Tty": options.tty, "Cmd": list(options.command)}
    if options.user:
        config["User"] = options.user
    if options.workdir:
        config["WorkingDir"] = options.workdir
    if options.env:
        config["Env"] = list(options.env)
    return json.dumps(config).encode("utf-8")


def hijack_request(target: str, body: bytes = b"") -> bytes:
    """A POST asking the engine to hand the connection over (HTTP upgrade to a raw stream)."""
    head = ("POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %d\r\n\r\n" % (target, len(body)))
    return head.encode("ascii") + body


def exec_start_request(target: str, tty: bool) -> bytes:
    """``POST /exec/{id}/start``, hijacked."""
    return hijack_request(target, json.dumps({"Detach": False, "Tty": tty}).encode("ascii"))


class UpgradeAnswer(NamedTuple):
    status: int
    rest: bytes  # bytes after the head: the first output of the command (or an error body)


def parse_upgrade_answer(buffer: bytes) -> Optional[UpgradeAnswer]:
    """The engine's answer to the start request once its head is complete, else None. 101 is
    the hijacked stream; engines before API 1.42 may answer 200 with the raw stream instead."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise EngineError("The Docker engine's answer to exec start has no end of headers.",
                              code="ENGINE_PROTOCOL_ERROR")
        return None
    match = STATUS_LINE.fullmatch(buffer[:end].split(b"\r\n", 1)[0])
    if match is None:
        raise EngineError("The Docker engine answered exec start with something that is not HTTP.",
                          code="ENGINE_PROTOCOL_ERROR")
    return UpgradeAnswer(int(match.group(1)), buffer[end + 4:])


def _error_message(body: bytes) -> str:
    try:
        value = json.loads(body.decode("utf-8"))
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return value["message"]
    except ValueError:
        pass
    return body[:500].decode("utf-8", "replace").strip()


class ExecSession(object):
    """One started exec or attach: ``pump()`` copies output to ``stdout``/``stderr`` (and ``stdin`` to the
    command when interactive) until the command's output ends. ``close()`` stops it from any
    thread."""

    def __init__(self, stream, tty: bool, first_output: bytes) -> None:
        self._stream = stream
        self._tty = tty
        self._first = first_output
        self._stop = threading.Event()

    def pump(self, stdout: BinaryIO, stderr: BinaryIO, stdin: Optional[BinaryIO] = None) -> None:
        feeder = None
        if stdin is not None:
            feeder = threading.Thread(target=self._feed, args=(stdin,), name="exec-stdin")
            feeder.start()
        try:
            self._copy_output(stdout, stderr)
        finally:
            self._stop.set()
            if feeder is not None:
                feeder.join()  # it polls, so it sees the stop within POLL_INTERVAL

    def _copy_output(self, stdout: BinaryIO, stderr: BinaryIO) -> None:
        demuxer = None if self._tty else LogFrameDemuxer()
        data = self._first
        while True:
            if data:
                if demuxer is None:
                    _write(stdout, data)
                else:
                    for stream, piece in demuxer.feed(data):
                        _write(stderr if stream == STDERR else stdout, piece)
            data = self._recv()
            if data is None:
                return

    def _recv(self) -> Optional[bytes]:
        """The next bytes of output; None at the end (EOF, or close() from another thread)."""
        self._stream.settimeout(POLL_INTERVAL)
        while not self._stop.is_set():
            try:
                data = self._stream.recv(READ_SIZE)
            except socket.timeout:
                continue
            except (OSError, EOFError) as exc:
                if self._stop.is_set():
                    return None
                raise ConnectionFailure("The connection to the container's engine broke: %s" % exc,
                                        code="CONNECTION_LOST") from exc
            return data or None
        return None

    def _feed(self, stdin: BinaryIO) -> None:
        try:
            while not self._stop.is_set():
                data = _read_some(stdin, self._stop)
                if data is None:
                    continue
                if not data:
                    break
                self._stream.sendall(data)
            else:
                return
            self._stream.close_write()
        except (OSError, EOFError, ValueError):
            pass  # the command ended (or the connection did) while we were feeding it

    def close(self) -> None:
        self._stop.set()
        self._stream.close()


def _write(out: BinaryIO, data: bytes) -> None:
    out.write(data)
    out.flush()


def _read_some(stdin: BinaryIO, stop: threading.Event) -> Optional[bytes]:
    """Some bytes of stdin, b"" at its end, None when nothing came within POLL_INTERVAL. A file
    descriptor is polled, never left in a blocking read: a thread blocked in a buffered read of
    stdin makes the interpreter abort at exit."""
    try:
        fd = stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return stdin.read(READ_SIZE)
    readable, _, _ = select.select([fd], [], [], POLL_INTERVAL)
    if not readable or stop.is_set():
        return None
    return os.read(fd, READ_SIZE)


def start_exec(open_stream: Callable[[], object], target: str, tty: bool) -> ExecSession:
    """Start an exec on a stream of its own and wait for the engine's upgrade."""
    return start_hijacked(open_stream, exec_start_request(target, tty), tty, "Starting the command")


def start_attach(open_stream: Callable[[], object], target: str, tty: bool) -> ExecSession:
    """Attach to a container's main process (``POST /containers/{id}/attach``, hijacked)."""
    return start_hijacked(open_stream, hijack_request(target), tty, "Attaching to the container")


def start_hijacked(open_stream: Callable[[], object], request: bytes, tty: bool, what: str) -> ExecSession:
    stream = open_stream()
    try:
        stream.settimeout(30.0)
        stream.sendall(request)
        buffer = b""
        answer = None
        while answer is None:
            data = stream.recv(READ_SIZE)
            if not data:
                raise ConnectionFailure("The Docker engine closed the connection: %s failed."
                                        % what.lower(), code="CONNECTION_LOST")
            buffer += data
            answer = parse_upgrade_answer(buffer)
        if answer.status not in (101, 200):
            raise EngineError("%s failed: the Docker engine answered %d: %s"
                              % (what, answer.status, _error_message(answer.rest)), code="ENGINE_ERROR",
                              status=answer.status)
        return ExecSession(stream, tty, answer.rest)
    except BaseException:
        stream.close()
        raise


def copy_log_stream(pieces: Iterator[bytes], tty: bool, stdout: BinaryIO, stderr: BinaryIO) -> None:
    """A followed log body (``logs?follow=1``) to our streams: raw with a TTY, else demultiplexed."""
    demuxer = None if tty else LogFrameDemuxer()
    for data in pieces:
        if demuxer is None:
            _write(stdout, data)
            continue
        for stream, piece in demuxer.feed(data):
            _write(stderr if stream == STDERR else stdout, piece)


def terminal_size(fd: int) -> Optional[Tuple[int, int]]:
    """(rows, columns) of the terminal on ``fd``, or None."""
    import fcntl
    import struct
    import termios
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, columns = struct.unpack("HHHH", packed)[:2]
    return (rows, columns) if rows and columns else None


def command_words(words: List[str]) -> List[str]:
    """The command after an optional ``--``."""
    return words[1:] if words and words[0] == "--" else list(words)
