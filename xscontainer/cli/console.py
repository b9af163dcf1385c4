"""``xscontainer exec``: a command in a container, its streams wired to ours, its exit code ours.

For root in dom0 only: no plugin function runs commands in containers. The engine is reached
through the monitor's warm connection when the monitor of this host watches the VM (no new SSH
handshake), else directly with the pool key.
"""

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple, Optional

from xscontainer.engine.console import (ExecOptions, copy_log_stream, exec_create_body, start_attach, start_exec,
                                        terminal_size)
from xscontainer.errors import EngineError

LOG = logging.getLogger(__name__)
EXIT_CODE_WAIT = 5.0  # the engine records the exit code just after the output ends


@contextlib.contextmanager
def raw_terminal(fd: Optional[int]) -> Iterator[None]:
    """The local terminal in raw mode (keys go to the container as typed), restored on every
    way out, SIGTERM and SIGHUP included."""
    if fd is None:
        yield
        return
    import termios
    import tty
    saved = termios.tcgetattr(fd)

    def leave(signum, frame):
        raise SystemExit(128 + signum)
    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class WindowFollower(object):
    """Sends the terminal's size to the exec at start and after each SIGWINCH. The handler only
    sets an event; a thread of ours makes the API call."""

    def __init__(self, fd: int, resize: Callable[[int, int], None]) -> None:
        self._fd = fd
        self._resize = resize
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exec-resize", daemon=True)
        self._previous = None  # type: Any

    def __enter__(self) -> "WindowFollower":
        self._previous = signal.signal(signal.SIGWINCH, lambda signum, frame: self._changed.set())
        self._changed.set()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGWINCH, self._previous)
        self._stop.set()
        self._changed.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._changed.wait()
            self._changed.clear()
            if self._stop.is_set():
                return
            size = terminal_size(self._fd)
            if size is None:
                continue
            try:
                self._resize(*size)
            except EngineError as exc:  # e.g. the command has just ended
                LOG.debug("exec resize: %s", exc)


def _exit_code(client, exec_id: str, clock: Callable[[], float] = time.monotonic) -> int:
    deadline = clock() + EXIT_CODE_WAIT
    while True:
        record = client.exec_inspect(exec_id)
        code = record.get("ExitCode")
        if not record.get("Running") and isinstance(code, int) and not isinstance(code, bool):
            return code & 0xFF
        if clock() > deadline:
            raise EngineError("The command's output ended but the engine reports no exit code.",
                              code="ENGINE_ERROR")
        time.sleep(0.05)


def run_exec(client, open_stream: Callable[[], Any], container: str, options: ExecOptions,
             stdin: BinaryIO, stdout: BinaryIO, stderr: BinaryIO) -> int:
    """Run the command; its exit code. ``open_stream`` gives a raw stream to the VM's engine."""
    exec_id = client.exec_create(container, exec_create_body(options))
    session = start_exec(open_stream, client.target("/exec/%s/start" % exec_id), options.tty)
    terminal = _terminal_fd(stdin) if options.tty else None
    try:
        with raw_terminal(terminal if options.interactive else None):
            if terminal is not None:
                with WindowFollower(terminal, lambda rows, cols: client.exec_resize(exec_id, rows, cols)):
                    session.pump(stdout, stderr, stdin if options.interactive else None)
            else:
                session.pump(stdout, stderr, stdin if options.interactive else None)
    finally:
        session.close()
    return _exit_code(client, exec_id)


class EngineRoute(NamedTuple):
    client: Any                      # a DockerClient for the VM's engine
    open_stream: Callable[[], Any]   # a new raw stream to the engine (for the hijacked exec)


def _monitor_route(control_path: str, vm_uuid: str) -> Optional[EngineRoute]:
    """Streams through this host's monitor when it watches the VM, else None."""
    from xscontainer.engine.client import DockerClient
    from xscontainer.engine.http import HttpPool, SocketStream
    from xscontainer.errors import XSContainerError
    from xscontainer.monitor.control import MonitorNotRunning, open_engine_stream

    def open_stream():
        return SocketStream(open_engine_stream(control_path, vm_uuid), "monitor:%s" % vm_uuid)
    try:
        first = [open_stream()]
    except MonitorNotRunning:
        return None
    except XSContainerError as exc:
        if exc.code == "NOT_WATCHED":
            return None
        raise

    def opener():  # the probe's stream serves the first request
        return first.pop() if first else open_stream()
    return EngineRoute(DockerClient(HttpPool(opener), vm_uuid), open_stream)


@contextlib.contextmanager
def engine_route(session, vm_uuid: str, control_path: Optional[str] = None) -> Iterator[EngineRoute]:
    """The VM's engine: through the monitor at ``control_path`` (this host's, when the VM runs
    here) when it watches the VM, else a direct connection with the pool key; closed afterwards."""
    route = _monitor_route(control_path, vm_uuid) if control_path else None
    if route is not None:
        try:
            yield route
        finally:
            route.client.close()
        return
    from xscontainer.engine.connect import EngineConnections
    from xscontainer.poolkeys import PoolKeyCache
    from xscontainer.xapi.session import lend
    sessions = lend(session)
    with EngineConnections(sessions, PoolKeyCache(sessions)) as engines:
        yield EngineRoute(engines.client(vm_uuid), engines.tunnel(vm_uuid).open_stream)


DETACH_KEYS = "ctrl-p,ctrl-q"  # Docker's own default


def run_attach(client, open_stream: Callable[[], Any], container: str, stdin: BinaryIO, stdout: BinaryIO,
               stderr: BinaryIO) -> int:
    """Attach our streams to the container's main process until it ends (its exit code) or
    the detach keys (ctrl-p ctrl-q) are typed (0; the container keeps running)."""
    from urllib.parse import quote
    ident = client.resolve(container)
    record = client.inspect(ident)
    if not (record.get("State") or {}).get("Running"):
        raise EngineError("Container %s is not running: start it first." % container, code="CONTAINER_NOT_RUNNING")
    tty = bool((record.get("Config") or {}).get("Tty"))
    target = client.target("/containers/%s/attach" % quote(ident),
                           [("stream", "1"), ("stdin", "1"), ("stdout", "1"), ("stderr", "1"),
                            ("detachKeys", DETACH_KEYS)])
    session = start_attach(open_stream, target, tty)
    terminal = _terminal_fd(stdin) if tty else None
    try:
        if not (client.inspect(ident).get("State") or {}).get("Running"):
            return _ended(client, ident)  # it ended before we were attached: nothing will come
        with raw_terminal(terminal):
            if terminal is not None:
                with WindowFollower(terminal, lambda rows, cols: client.container_resize(ident, rows, cols)):
                    session.pump(stdout, stderr, stdin)
            else:
                session.pump(stdout, stderr, stdin)
    finally:
        session.close()
    return _ended(client, ident)


def _ended(client, ident: str) -> int:
    state = client.inspect(ident).get("State") or {}
    if state.get("Running"):
        return 0  # detached
    code = state.get("ExitCode")
    return code & 0xFF if isinstance(code, int) and not isinstance(code, bool) else 0


def run_follow_logs(client, container: str, tail: Optional[int], stdout: BinaryIO, stderr: BinaryIO) -> int:
    """The container's output as it comes, until it stops or we are interrupted."""
    tty = client.container_tty(container)
    response = client.follow_logs(container, tail)
    try:
        copy_log_stream(response.iter_body(), tty, stdout, stderr)
    finally:
        response.close()
    return 0


def _terminal_fd(stream: BinaryIO) -> Optional[int]:
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    return fd if os.isatty(fd) else None
