"""Read an engine's state and render the other_config values (shared by the monitor's refreshes
and the plugin's direct path): ``docker_ps``, ``docker_info`` and ``docker_version``."""

import threading
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

from xscontainer.consumerxml.documents import render_docker_info, render_docker_version
from xscontainer.consumerxml.ps import PsDocument, fit_docker_ps
from xscontainer.errors import XSContainerError
from xscontainer.xapi import maps

# The VM.other_config keys whose values this package renders (the monitor refreshes them by kind).
PS = "docker_ps"
INFO = "docker_info"
VERSION = "docker_version"
ALL_KINDS = frozenset([PS, INFO, VERSION])
RUNNING_STATES = ("running", "paused", "restarting")


# Inspects per refresh for start times not known yet: a VM listing 10,000 running containers cost
# 10,000 inspect requests in one refresh (38 % of a core for 12 s), where docker_ps can list a few
# hundred of them at most. The newest come first (docker_ps lists them first); the others follow
# at later refreshes.
MAX_INSPECTS = 100


def _newest_first(container: Dict) -> Tuple[int, str]:
    created = container.get("Created")
    return (-created if isinstance(created, int) else 0, str(container.get("Id", "")))


class StartTimes:
    """Each running container's start time, read with ``inspect`` only when it may have changed,
    at most ``MAX_INSPECTS`` of them per lookup."""

    def __init__(self) -> None:
        self._known = {}  # type: Dict[str, str]
        self._lock = threading.Lock()

    def invalidate(self, container_id: str) -> None:
        with self._lock:
            self._known.pop(container_id, None)

    def lookup(self, client, containers, max_inspects: int = MAX_INSPECTS) -> Dict[str, str]:
        result = {}
        running = [c for c in containers if str(c.get("State", "")).lower() in RUNNING_STATES]
        live = set(c.get("Id", "") for c in running)
        unknown = []
        with self._lock:
            for container in running:
                known = self._known.get(container.get("Id", ""))
                if known is None:
                    unknown.append(container)
                elif known:
                    result[container.get("Id", "")] = known
        for container in sorted(unknown, key=_newest_first)[:max_inspects]:
            cid = container.get("Id", "")
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
    ps: Optional[PsDocument]  # what docker_ps left out (None when not asked)
    containers: Optional[List[Dict]] = None  # the list docker_ps was made of (None when not asked)


def render_values(client, kinds: Iterable[str], start_times: StartTimes,
                  expectations: Optional[Dict[str, Callable]] = None, settle: Settle = Settle()) -> Rendered:
    """The values of the requested kinds, each small enough for one xapi request (the request is
    what xapi limits, so values are measured escaped as they travel: ``maps.xmlrpc_text_bytes``)."""
    kinds = frozenset(kinds)
    values = {}
    cost = maps.xmlrpc_text_bytes
    if VERSION in kinds:
        values[VERSION] = render_docker_version(client.version(), budget=maps.value_budget("VM", VERSION),
                                                       cost=cost)
    if INFO in kinds:
        values[INFO] = render_docker_info(client.info(), budget=maps.value_budget("VM", INFO), cost=cost)
    document = containers = None
    if PS in kinds:
        containers = client.containers(all=True)
        for delay in settle.delays:
            if not expectations or not unmet(containers, expectations):
                break
            containers = None  # the list is held in the VM's budget until dropped: one at a time
            settle.sleep(delay)
            containers = client.containers(all=True)
        document = fit_docker_ps(containers, start_times.lookup(client, containers),
                                        budget=maps.value_budget("VM", PS), cost=cost)
        values[PS] = document.xml
    return Rendered(values, document, containers)


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
