"""Which hosts of the pool run which xscontainer: hosts are upgraded one by one, and a call about
a VM is forwarded to its host, which may have no xscontainer yet or the original product."""

import re
from typing import List, NamedTuple, Optional, Tuple

from xscontainer.plugincall import PLUGIN_NAME
from xscontainer.xapi import Failure, Session

VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")

MISSING, ORIGINAL, OFFLINE, FAILED, VERSION = "missing", "original", "offline", "failed", "version"


class HostVersion(NamedTuple):
    name: str
    uuid: str
    kind: str  # MISSING, ORIGINAL, OFFLINE, FAILED or VERSION
    version: Optional[str] = None


def classify(result: Optional[str], failure: Optional[List[str]]) -> Tuple[str, Optional[str]]:
    """Pure: (kind, version) from a ``get_version`` call's result or xapi failure details."""
    if failure is not None:
        code = failure[0] if failure else ""
        if code == "XENAPI_MISSING_PLUGIN":
            return MISSING, None
        if code == "UNKNOWN_XENAPI_PLUGIN_FUNCTION":  # a plugin without get_version: the original
            return ORIGINAL, None
        if code in ("HOST_OFFLINE", "CANNOT_CONTACT_HOST"):
            return OFFLINE, None
        return FAILED, None
    text = (result or "")[len("True"):] if (result or "").startswith("True") else ""
    return (VERSION, text) if VERSION_RE.fullmatch(text) else (FAILED, None)


def _as_tuple(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def pool_note(ours: str, hosts: List[HostVersion]) -> Optional[str]:
    """Pure: one sentence naming every host that does not run this version, or None."""
    parts = []
    for host in hosts:
        who = "host %s (%s)" % (host.name, host.uuid)
        if host.kind == MISSING:
            parts.append("%s has no xscontainer" % who)
        elif host.kind == ORIGINAL:
            parts.append("%s runs the original xscontainer (before 11)" % who)
        elif host.kind == OFFLINE:
            parts.append("%s cannot be asked (offline or unreachable)" % who)
        elif host.kind == FAILED:
            parts.append("%s did not say which xscontainer it runs" % who)
        elif _as_tuple(host.version or "0") < _as_tuple(ours):
            parts.append("%s runs the older xscontainer %s" % (who, host.version))
        elif host.version != ours:
            parts.append("%s runs xscontainer %s" % (who, host.version))
    if not parts:
        return None
    return ("This host runs xscontainer %s, but %s: install xscontainer %s on every host of the "
            "pool (calls about VMs on those hosts fail or lack this version's functions)."
            % (ours, "; ".join(parts), ours))


def probe_hosts(session: Session, here_uuid: str) -> List[HostVersion]:
    """Ask every other host's plugin for its version (one plugin run per host)."""
    api = session.xenapi
    found = []
    for ref, record in sorted(api.host.get_all_records().items(), key=lambda item: item[1]["name_label"]):
        if record["uuid"] == here_uuid:
            continue
        result, failure = None, None
        try:
            result = api.host.call_plugin(ref, PLUGIN_NAME, "get_version", {})
        except Failure as exc:
            failure = [str(d) for d in exc.details]
        kind, version = classify(result, failure)
        found.append(HostVersion(record["name_label"], record["uuid"], kind, version))
    return found
