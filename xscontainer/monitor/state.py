"""Read an engine's state and render the other_config values (shared by the monitor's refreshes
and the plugin's direct path)."""

import threading
import time
from typing import Callable, Dict, Iterable, NamedTuple, Optional, Tuple

from xscontainer.errors import XSContainerError
from xscontainer.monitor import render
from xscontainer.monitor.coalesce import INFO, PS, VERSION
from xscontainer.xapi import maps

RUNNING_STATES = ("running", "paused", "restarting")


class StartTimes:
    """Each running container's start time, read with ``inspect`` only when it may have changed."""

    def __init__(self) -> None:
        self._known = {}  # type: Dict[str, str]
        self._lock = threading.Lock()

    def invalidate(self, container_id: str) -> None:
        with self._lock:
            self._known.pop(container_id, None)

    def lookup(self, client, containers) -> Dict[str, str]:
        result = {}
        live = set()
        for container in containers:
            cid = container.get("Id", "")
            if str(container.get("State", "")).lower() not in RUNNING_STATES:
                continue
            live.add(cid)
            with self._lock:
                known = self._known.get(cid)
            if known is None:
                try:
                    known = ((client.inspect(cid).get("State") or {}).get("StartedAt")) or ""
                except XSContainerError as exc:
                    if exc.code != "CONTAINER_NOT_FOUND":
                        raise
                    continue  # removed between the list and the inspect
                with self._lock:
                    self._known[cid] = known
            if known:
                result[cid] = known
        with self._lock:
            for cid in list(self._known):
                if cid not in live:
                    del self._known[cid]
        return result


# Container actions after which StartedAt is still what ``inspect`` said before (anything else,
# including actions we do not know, is read again).
KEEPS_START_TIME = frozenset(["pause", "unpause", "rename", "health_status"])


def may_change_start_time(action: str) -> bool:
    """Whether a container event (its action, ``health_status: ...`` included) may have changed
    the container's start time, so that ``StartTimes`` must inspect it again."""
    return action.split(":", 1)[0].strip() not in KEEPS_START_TIME


class Settle(NamedTuple):
    """How long a refresh waits for the container list to catch up with the events it follows."""

    delays: Tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    sleep: Callable[[float], None] = time.sleep


class Rendered(NamedTuple):
    values: Dict[str, str]  # key -> value, for the kinds asked
    ps: Optional[render.PsDocument]  # what docker_ps left out (None when not asked)


def render_values(client, kinds: Iterable[str], start_times: StartTimes,
                  expectations: Optional[Dict[str, Callable]] = None, settle: Settle = Settle()) -> Rendered:
    """The values of the requested kinds, each small enough for one xapi request (the request is
    what xapi limits, so values are measured escaped as they travel: ``maps.xmlrpc_text_bytes``)."""
    kinds = frozenset(kinds)
    values = {}
    cost = maps.xmlrpc_text_bytes
    if VERSION in kinds:
        values[VERSION] = render.render_docker_version(client.version(), budget=maps.value_budget("VM", VERSION),
                                                       cost=cost)
    if INFO in kinds:
        values[INFO] = render.render_docker_info(client.info(), budget=maps.value_budget("VM", INFO), cost=cost)
    document = None
    if PS in kinds:
        containers = client.containers(all=True)
        for delay in settle.delays:
            if not expectations or not unmet(containers, expectations):
                break
            settle.sleep(delay)
            containers = client.containers(all=True)
        document = render.fit_docker_ps(containers, start_times.lookup(client, containers),
                                        budget=maps.value_budget("VM", PS), cost=cost)
        values[PS] = document.xml
    return Rendered(values, document)


def render_state(client, kinds: Iterable[str], start_times: StartTimes,
                 expectations: Optional[Dict[str, Callable]] = None, settle: Settle = Settle()) -> Dict[str, str]:
    """``{"docker_ps": xml, ...}`` for the requested kinds (see ``render_values``)."""
    return render_values(client, kinds, start_times, expectations, settle).values


def _state(container: Optional[Dict]) -> str:
    return str((container or {}).get("State", "")).lower()


def expected_state(action: str, name: str = "") -> Optional[Callable[[Optional[Dict]], bool]]:
    """What ``/containers/json`` must show once an event's change is visible there, or None.

    Docker logs some events (pause, for one) before it saves the container to the view that
    ``/containers/json`` reads, so a refresh right after the event may still see the old state.
    A container that changed again since (a restart policy, say) may never match: callers retry
    a bounded number of times.
    """
    checks = {
        "pause": lambda c: _state(c) == "paused",
        "unpause": lambda c: c is None or _state(c) != "paused",
        "die": lambda c: c is None or _state(c) != "running",
        "destroy": lambda c: c is None,
        "create": lambda c: c is not None,
    }
    if action == "rename" and name:
        return lambda c: c is not None and any(n.lstrip("/") == name for n in (c.get("Names") or []))
    return checks.get(action)


def unmet(containers, expectations: Dict[str, Callable[[Optional[Dict]], bool]]) -> Dict[str, Callable]:
    """The expectations (by container id) that the container list does not satisfy yet."""
    by_id = {c.get("Id"): c for c in containers}
    return {cid: check for cid, check in expectations.items() if not check(by_id.get(cid))}
