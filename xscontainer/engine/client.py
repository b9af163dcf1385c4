"""The Docker Engine API calls xscontainer makes, on any ``HttpPool`` (SSH or TLS alike).

The API version is negotiated once (``/_ping``'s ``API-Version`` header, else the unversioned
``/version``) and every later path carries it as ``/v1.xx/``: unversioned paths silently change
meaning when the engine upgrades, and current engines refuse unversioned or too-old clients.
"""

import email.utils
import json
import logging
import re
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote, urlencode

from xscontainer import jsonbound
from xscontainer.engine.http import HttpPool, Response, StreamingResponse
from xscontainer.engine.streams import (STREAM_NAMES, ContainerEvent, JsonStreamSplitter, LogFrameDemuxer,
                                        decode_json_body, demux_logs, parse_container_event)
from xscontainer.errors import EngineError, InvalidArgument, NotFound

LOG = logging.getLogger(__name__)

MIN_API = (1, 24)
MAX_API = (1, 54)  # the newest API whose behaviour we rely on; newer engines still accept it
# Always used with fullmatch: "$" would also match before a trailing newline ("abc\n").
CONTAINER_REF = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
FULL_ID = re.compile(r"[0-9a-f]{64}")
API_VERSION = re.compile(r"[ \t]*([0-9]+)\.([0-9]+)[ \t]*")  # ASCII digits only (\d takes any Unicode digit)
ONE_SHOT_API = (1, 41)  # stats' one-shot=true (one sample, no ~1 s wait for a second one)
LIFECYCLE = ("start", "stop", "restart", "pause", "unpause")
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW_STREAM = "application/vnd.docker.raw-stream"

# Per-endpoint bounds on one response's body, well below the pool's 64 MiB, from real sizes:
# a /containers/json entry is 1-2 KB (10,000 containers ~15 MB, so 16 MiB); an inspect record
# 5-20 KB (a few hundred mounts, labels and env variables stay far below 4 MiB); top of a few
# thousand processes ~0.5 MB; /version ~1 KB and /info ~5-10 KB (1 MiB); one stats sample
# ~5 KB; /_ping says "OK". Logs: the plugin keeps the newest 1 MiB of at most 10,000 lines
# (tail), which needs the whole answer: 16 MiB holds 10,000 lines of 1.6 KB with their 8-byte
# frame headers; a longer answer is refused (ENGINE_RESPONSE_TOO_LARGE: ask for a smaller tail).
MIB = 1024 * 1024
MAX_PING = 64 * 1024
MAX_SMALL = 1 * MIB  # version, info, stats, exec inspect, errors of lifecycle calls
MAX_RECORD = 4 * MIB  # inspect, top, exec create
MAX_LIST = 16 * MIB  # /containers/json
MAX_LOGS = 16 * MIB


def parse_api_version(text: Optional[str]) -> Optional[Tuple[int, int]]:
    match = API_VERSION.fullmatch(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def choose_api_version(engine_version: Optional[str], engine_min: Optional[str] = None,
                       vm_uuid: str = "") -> Tuple[int, int]:
    """min(engine's ApiVersion, ours); API_TOO_OLD below 1.24; API_TOO_NEW if the engine's own
    minimum is above what we speak. ``vm_uuid`` names the VM in the messages."""
    engine_name = "The Docker engine" + (" in VM %s" % vm_uuid if vm_uuid else "")
    engine = parse_api_version(engine_version)
    if engine is None:
        raise EngineError("%s did not say which API version it speaks (%r)." % (engine_name, engine_version),
                          code="ENGINE_PROTOCOL_ERROR")
    if engine < MIN_API:
        raise EngineError("%s speaks API %d.%d; xscontainer needs %d.%d or newer (Docker 1.12 or later). "
                          "Upgrade the engine in the VM." % ((engine_name,) + engine + MIN_API),
                          code="API_TOO_OLD", api_version="%d.%d" % engine)
    chosen = min(engine, MAX_API)
    minimum = parse_api_version(engine_min)
    if minimum is not None and minimum > chosen:
        raise EngineError("%s needs API %d.%d or newer, but xscontainer speaks at most %d.%d. Upgrade "
                          "xscontainer." % ((engine_name,) + minimum + MAX_API), code="API_TOO_NEW")
    return chosen


def http_date_seconds(text: Optional[str]) -> Optional[int]:
    """Seconds since the epoch of an HTTP ``Date`` header; None when absent or not a date."""
    try:
        parsed = email.utils.parsedate_tz(text or "")
        seconds = email.utils.mktime_tz(parsed) if parsed is not None else None
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if seconds is not None and seconds > 0 else None


def check_container_ref(ref: str) -> str:
    if not isinstance(ref, str) or not CONTAINER_REF.fullmatch(ref) or len(ref) > 255:
        raise InvalidArgument("%r is not a container id or name (letters, digits, '_', '.', '-')." % (ref,),
                              code="BAD_CONTAINER_REF")
    return ref


def resolve_container(containers: List[Dict[str, Any]], ref: str) -> Dict[str, Any]:
    """Pure: find ``ref`` (full id, name, or unique id prefix) in a ``/containers/json`` list.
    An exact id or name wins over a prefix, as in Docker itself."""
    check_container_ref(ref)
    for container in containers:
        if container.get("Id") == ref:
            return container
    for container in containers:
        if ref in [n.lstrip("/") for n in container.get("Names") or []]:
            return container
    matches = [c for c in containers if str(c.get("Id", "")).startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound("There is no container %r." % ref, code="CONTAINER_NOT_FOUND", container=ref)
    raise InvalidArgument("%r matches %d containers; give more of the id." % (ref, len(matches)),
                          code="CONTAINER_AMBIGUOUS", container=ref)


def _engine_message(response: Response, decode: Callable[[bytes], Any] = decode_json_body) -> str:
    try:
        value = decode(response.body)
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return value["message"]
    except EngineError:
        pass
    return response.body[:500].decode("utf-8", "replace").strip() or response.reason


class EventStream(object):
    """Container events as they happen: iterate for ``ContainerEvent``s; ``close()`` (from any
    thread) stops the iteration."""

    def __init__(self, response: StreamingResponse, max_event_bytes: int) -> None:
        self._response = response
        self._splitter = JsonStreamSplitter(max_event_bytes)

    def __iter__(self) -> Iterator[ContainerEvent]:
        for piece in self._response.iter_body():
            for value in self._splitter.feed(piece):
                event = parse_container_event(value)
                if event is not None:
                    yield event

    def close(self) -> None:
        self._response.close()


class DockerClient(object):
    """Docker Engine API calls for one VM. Thread-safe; one HTTP pool underneath."""

    def __init__(self, pool: HttpPool, vm_uuid: str = "") -> None:
        self._pool = pool
        self.vm_uuid = vm_uuid
        self._api = None  # type: Optional[Tuple[int, int]]
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def api_version(self) -> str:
        return "%d.%d" % self._negotiate()

    def _negotiate(self, ping: Optional[Response] = None) -> Tuple[int, int]:
        """The API version, asked once; ``ping``: a ``/_ping`` answer at hand to ask it with."""
        # No lock across the requests: one engine that never answers must not block every other
        # thread of this client behind it. Two first calls may both ask; they get one answer.
        with self._lock:
            if self._api is not None:
                return self._api
        api = self._ask_api_version(ping)
        with self._lock:
            if self._api is None:
                self._api = api
                LOG.debug("VM %s: Docker API %d.%d", self.vm_uuid, api[0], api[1])
            return self._api

    def _ask_api_version(self, ping: Optional[Response] = None) -> Tuple[int, int]:
        response = ping or self._pool.request("GET", "/_ping", max_bytes=MAX_PING)
        header = response.header("api-version")
        if response.status == 200 and header:
            return choose_api_version(header, vm_uuid=self.vm_uuid)
        version = self._pool.request("GET", "/version", max_bytes=MAX_SMALL)
        if version.status != 200:
            raise EngineError("The Docker engine answered /version with %d: %s"
                              % (version.status, _engine_message(version, self._decode)), code="ENGINE_ERROR")
        record = self._json(version)
        if not isinstance(record, dict):
            raise EngineError("The Docker engine answered /version with something that is not a version record.",
                              code="ENGINE_PROTOCOL_ERROR")
        return choose_api_version(record.get("ApiVersion"), record.get("MinAPIVersion"), self.vm_uuid)

    def _target(self, path: str, query: Optional[List[Tuple[str, str]]] = None) -> str:
        major, minor = self._negotiate()
        target = "/v%d.%d%s" % (major, minor, path)
        if query:
            target += "?" + urlencode(query)
        return target

    def _json(self, response: Response) -> Any:
        return self._decode(response.body)

    def _decode(self, body: bytes) -> Any:
        """The JSON ``body``, held in the VM's budget (see ``ByteBudget.hold``) while it is
        decoded and, a list or dict, until the caller drops it."""
        budget = self._pool.budget
        if budget is None:
            return decode_json_body(body)
        return budget.hold(jsonbound.decoded_size_bound(body), self.vm_uuid, lambda: decode_json_body(body))

    def _check(self, response: Response, what: str, container: Optional[str] = None) -> Response:
        if response.status < 300 or response.status == 304:
            return response
        message = _engine_message(response, self._decode)
        if response.status == 404 and container is not None:
            raise NotFound("There is no container %r: %s" % (container, message), code="CONTAINER_NOT_FOUND",
                           container=container, status=404)
        raise EngineError("%s failed: the Docker engine answered %d: %s" % (what, response.status, message),
                          code="ENGINE_ERROR", status=response.status, engine_message=message)

    def get(self, path: str, query: Optional[List[Tuple[str, str]]] = None, what: str = "",
            container: Optional[str] = None, timeout: Optional[float] = None,
            max_bytes: Optional[int] = None) -> Any:
        response = self._pool.request("GET", self._target(path, query), timeout=timeout, max_bytes=max_bytes)
        return self._json(self._check(response, what or "GET " + path, container))

    # -- calls ----------------------------------------------------------------------------------
    def ping(self) -> bool:
        return self._pool.request("GET", "/_ping", max_bytes=MAX_PING).status == 200

    def version(self) -> Dict[str, Any]:
        return self.get("/version", max_bytes=MAX_SMALL)

    def info(self) -> Dict[str, Any]:
        return self.get("/info", max_bytes=MAX_SMALL)

    def containers(self, all: bool = True, size: bool = False) -> List[Dict[str, Any]]:
        """``/containers/json``; ``size`` is expensive (it walks every container's files)."""
        query = [("all", "1" if all else "0")]
        if size:
            query.append(("size", "1"))
        return self.get("/containers/json", query, max_bytes=MAX_LIST)

    def resolve(self, ref: str) -> str:
        """The full id of the container named by ``ref`` (full id, name or unique id prefix)."""
        check_container_ref(ref)
        return resolve_container(self.containers(all=True), ref)["Id"]

    def _id(self, ref: str) -> str:
        return ref if FULL_ID.fullmatch(ref or "") else self.resolve(ref)

    def inspect(self, ref: str) -> Dict[str, Any]:
        ident = self._id(ref)
        return self.get("/containers/%s/json" % quote(ident), container=ref, max_bytes=MAX_RECORD)

    def top(self, ref: str) -> Dict[str, Any]:
        """``{"Titles": [...], "Processes": [[...]]}`` with Docker's default ``ps -ef`` columns
        (UID PID PPID C STIME TTY TIME CMD): XenCenter reads PID, CMD and TIME."""
        ident = self._id(ref)
        return self.get("/containers/%s/top" % quote(ident), container=ref, max_bytes=MAX_RECORD)

    def stats(self, ref: str, one_shot: bool = False) -> Dict[str, Any]:
        """One ``/containers/{id}/stats`` sample. By default the engine waits for a second sample
        (about 1 s) so that ``precpu_stats`` holds the previous one and a CPU percentage can be
        computed as ``docker stats`` does. ``one_shot`` (API 1.41 or newer; ignored before) answers
        at once, but ``precpu_stats`` is then empty: use it for memory, network and I/O figures."""
        ident = self._id(ref)
        query = [("stream", "false")]
        if one_shot and self._negotiate() >= ONE_SHOT_API:
            query.append(("one-shot", "true"))
        return self.get("/containers/%s/stats" % quote(ident), query, container=ref, max_bytes=MAX_SMALL)

    def logs(self, ref: str, tail: Optional[int] = 100, timestamps: bool = False) -> List[Tuple[str, bytes]]:
        """The container's recent output as ``(stream, bytes)`` pieces, stdout and stderr
        demultiplexed (a TTY container has a single raw stream, reported as stdout)."""
        ident = self._id(ref)
        query = [("stdout", "1"), ("stderr", "1"), ("timestamps", "1" if timestamps else "0"),
                 ("tail", "all" if tail is None else str(int(tail)))]
        response = self._check(self._pool.request("GET", self._target("/containers/%s/logs" % quote(ident), query),
                                                  max_bytes=MAX_LOGS), "logs", container=ref)
        content_type = (response.header("content-type") or "").split(";")[0].strip()
        if content_type == MULTIPLEXED:
            tty = False
        elif content_type == RAW_STREAM:
            tty = True
        else:  # engines before API 1.42 do not say: ask the container
            tty = bool(self.get("/containers/%s/json" % quote(ident), container=ref,
                                max_bytes=MAX_RECORD).get("Config", {}).get("Tty"))
        if tty:
            return [("stdout", response.body)] if response.body else []
        return demux_logs(response.body)

    def action(self, ref: str, action: str, timeout: Optional[int] = None) -> bytes:
        """start, stop, restart, pause or unpause; the engine's (normally empty) body. Starting a
        running container (304) counts as success, as the original did."""
        if action not in LIFECYCLE:
            raise InvalidArgument("Unknown container action %r." % action, code="BAD_ACTION")
        ident = self._id(ref)
        query = []  # type: List[Tuple[str, str]]
        wait = 0
        if timeout is not None and action in ("stop", "restart"):
            query.append(("t", str(int(timeout))))
            wait = int(timeout)
        elif action in ("stop", "restart"):
            wait = 10  # Docker's default grace period
        response = self._pool.request("POST", self._target("/containers/%s/%s" % (quote(ident), action), query),
                                      timeout=self._pool.limits.response_timeout + wait)
        return self._check(response, action, container=ref).body

    # -- exec (the console) ---------------------------------------------------------------------
    def target(self, path: str, query: Optional[List[Tuple[str, str]]] = None) -> str:
        """The versioned request target of ``path``, for requests made outside this client."""
        return self._target(path, query)

    def exec_create(self, ref: str, body: bytes) -> str:
        """Create an exec instance in a running container; its id."""
        ident = self._id(ref)
        response = self._pool.request("POST", self._target("/containers/%s/exec" % quote(ident)), body=body,
                                      headers={"Content-Type": "application/json"})
        record = self._json(self._check(response, "exec", container=ref))
        exec_id = record.get("Id") if isinstance(record, dict) else None
        if not isinstance(exec_id, str) or not CONTAINER_REF.fullmatch(exec_id):
            raise EngineError("The Docker engine gave no usable exec id.", code="ENGINE_PROTOCOL_ERROR")
        return exec_id

    def exec_resize(self, exec_id: str, rows: int, columns: int) -> None:
        response = self._pool.request("POST", self._target("/exec/%s/resize" % quote(exec_id),
                                                           [("h", str(rows)), ("w", str(columns))]))
        self._check(response, "exec resize")

    def container_tty(self, ref: str) -> bool:
        """Whether the container was created with a TTY (its output is then one raw stream)."""
        return bool((self.inspect(ref).get("Config") or {}).get("Tty"))

    def follow_logs(self, ref: str, tail: Optional[int] = None) -> StreamingResponse:
        """The container's output as it comes (``logs?follow=1``), on a connection of its own;
        ``close()`` it from another thread to stop."""
        ident = self._id(ref)
        query = [("stdout", "1"), ("stderr", "1"), ("follow", "1"),
                 ("tail", "all" if tail is None else str(int(tail)))]
        response = self._pool.stream("GET", self._target("/containers/%s/logs" % quote(ident), query))
        if response.status >= 300:
            response.close()
            raise NotFound("There is no container %r." % ref, code="CONTAINER_NOT_FOUND", container=ref) \
                if response.status == 404 else EngineError("Following the logs failed: the Docker engine "
                                                           "answered %d." % response.status, code="ENGINE_ERROR")
        return response

    def container_resize(self, ref: str, rows: int, columns: int) -> None:
        response = self._pool.request("POST", self._target("/containers/%s/resize" % quote(self._id(ref)),
                                                           [("h", str(rows)), ("w", str(columns))]))
        self._check(response, "resize", container=ref)

    def exec_inspect(self, exec_id: str) -> Dict[str, Any]:
        return self.get("/exec/%s/json" % quote(exec_id), what="exec inspect", max_bytes=MAX_SMALL)

    def start(self, ref: str) -> bytes:
        return self.action(ref, "start")

    def stop(self, ref: str, timeout: Optional[int] = None) -> bytes:
        return self.action(ref, "stop", timeout)

    def restart(self, ref: str, timeout: Optional[int] = None) -> bytes:
        return self.action(ref, "restart", timeout)

    def pause(self, ref: str) -> bytes:
        return self.action(ref, "pause")

    def unpause(self, ref: str) -> bytes:
        return self.action(ref, "unpause")

    def events(self, since: Optional[int] = None, until: Optional[int] = None,
               read_timeout: Optional[float] = None) -> EventStream:
        """Container events from ``/events`` (``type=container``). Each event's size is bounded;
        with ``read_timeout`` None a quiet engine may stay silent indefinitely, the tunnel's
        keepalive detecting a dead VM (then the iteration raises ``CONNECTION_LOST``).

        Without ``since`` or ``until``: every event from the call on, and those of up to a
        second before. dockerd sends the stream's headers before it subscribes (moby's
        ``getEvents``), and an event between the two comes only as a replay, which ``since`` asks
        for (the engine's own clock, from its ``Date`` header; an engine without one streams
        without a replay)."""
        if since is None and until is None:  # (with until, since defaults to the engine's oldest)
            since = self._engine_seconds()
        query = [("filters", json.dumps({"type": ["container"]}, separators=(",", ":")))]
        if since is not None:
            query.append(("since", str(int(since))))
        if until is not None:
            query.append(("until", str(int(until))))
        response = self._pool.stream("GET", self._target("/events", query), read_timeout=read_timeout)
        if response.status != 200:
            response.close()
            raise EngineError("The Docker engine refused the event stream (%d)." % response.status,
                              code="ENGINE_ERROR", status=response.status)
        return EventStream(response, self._pool.limits.max_event_bytes)

    def _engine_seconds(self) -> Optional[int]:
        """The engine's clock in whole seconds (``/_ping``'s ``Date``), None without a valid one;
        the ping negotiates the API version too when that is still to do."""
        ping = self._pool.request("GET", "/_ping", max_bytes=MAX_PING)
        self._negotiate(ping)
        return http_date_seconds(ping.header("date"))

    def close(self) -> None:
        self._pool.close()


__all__ = ["DockerClient", "EventStream", "ContainerEvent", "choose_api_version", "resolve_container",
           "STREAM_NAMES", "LogFrameDemuxer"]
