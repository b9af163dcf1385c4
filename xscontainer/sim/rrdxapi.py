"""xapi's side of the simulated xcp-rrdd: the VM data-source calls (``VM.get_data_sources``,
``query_data_source``, ``record_data_source``, ``forget_data_source_archives``) and
``/rrd_updates``, which read what each host's ``HostRrdd`` (sim/rrdd.py) holds."""

import math
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape

from xscontainer.sim.failures import XapiFailure
from xscontainer.sim.rrdd import INTERVAL, HostRrdd, internal_error


# -- xapi's VM data-source calls -------------------------------------------------------------------

def _vm_host_rrdd(api: Any, vm: Any) -> Tuple[Dict[str, Any], Optional[HostRrdd]]:
    row = api.db.get("VM", vm)
    hub = getattr(api, "rrdd_hub", None)
    if hub is None or row.get("power_state") not in ("Running", "Paused"):
        return row, None
    host = api.db.tables["host"].get(row.get("resident_on"))
    return row, hub.hosts.get(host["uuid"]) if host else None


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise XapiFailure("FIELD_TYPE_ERROR", "data_source")
    return value


def get_data_sources(api: Any, ctx: Any, vm: Any) -> List[Dict[str, Any]]:
    row, rrdd = _vm_host_rrdd(api, vm)
    return rrdd.vm_data_sources(row["uuid"]) if rrdd is not None else []


def query_data_source(api: Any, ctx: Any, vm: Any, name: Any) -> float:
    row, rrdd = _vm_host_rrdd(api, vm)
    if row.get("power_state") not in ("Running", "Paused"):
        raise XapiFailure("VM_BAD_POWER_STATE", vm, "running;paused", str(row.get("power_state", "")).lower())
    if rrdd is None:
        raise internal_error('Rrd_interface.Rrdd_error(Datasource_missing("VM: %s"))' % row["uuid"])
    return rrdd.query_vm_ds(row["uuid"], _name(name))


def record_data_source(api: Any, ctx: Any, vm: Any, name: Any) -> None:
    row, rrdd = _vm_host_rrdd(api, vm)
    if rrdd is None:
        raise internal_error('Rrd_interface.Rrdd_error(Datasource_missing("VM: %s"))' % row["uuid"])
    rrdd.add_vm_ds(row["uuid"], _name(name))


def forget_data_source_archives(api: Any, ctx: Any, vm: Any, name: Any) -> None:
    row, rrdd = _vm_host_rrdd(api, vm)
    if rrdd is not None:
        rrdd.forget_vm_ds(row["uuid"], _name(name))


# -- xapi's /rrd_updates ------------------------------------------------------------------------

def f_to_s(value: float) -> str:
    """rrd_utils.ml f_to_s."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return "0.0" if value == 0 else "%0.15g" % value


def updates_xml(legend: List[str], rows: List[Tuple[int, List[float]]], step: int) -> bytes:
    """rrd_updates.ml xml_of: <xport><meta>...</meta><data><row><t/><v/>...</row></data></xport>."""
    times = [t for t, _ in rows]
    parts = ['<?xml version="1.0" encoding="UTF-8"?><xport><meta>',
             "<start>%d</start><step>%d</step><end>%d</end>" % (min(times or [0]), step, max(times or [0])),
             "<rows>%d</rows><columns>%d</columns><legend>" % (len(rows), len(legend))]
    parts.extend("<entry>%s</entry>" % escape(entry) for entry in legend)
    parts.append("</legend></meta><data>")
    for t, values in rows:
        parts.append("<row><t>%d</t>%s</row>" % (t, "".join("<v>%s</v>" % f_to_s(v) for v in values)))
    parts.append("</data></xport>")
    return "".join(parts).encode("utf-8")


def handle_rrd_updates(api: Any, handler: Any) -> None:
    """GET /rrd_updates?session_id=&start=[&vm_uuid=...]: every simulated host's VMs at once (a
    real host answers for its own VMs). ``cf``, ``interval`` and ``host`` are accepted and ignored
    (one 5 s average; the simulator has no host data sources)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    session = (query.get("session_id") or [""])[0]
    with api.db.lock:
        valid = bool(session) and api.db.exists("session", session)
    if not valid:
        handler.send_error(401, "Unauthorized")
        return
    try:
        start = int((query.get("start") or [""])[0])
    except ValueError:
        handler.send_error(400, "get_rrd_updates: missing the 'start' parameter")
        return
    vm_uuids = set(query["vm_uuid"]) if "vm_uuid" in query else None
    legend = []  # type: List[str]
    rows = {}  # type: Dict[int, List[float]]
    hub = getattr(api, "rrdd_hub", None)
    for rrdd in (hub.hosts.values() if hub is not None else []):
        host_legend, host_rows = rrdd.updates(start, vm_uuids)
        for t, values in host_rows:
            rows.setdefault(t, [math.nan] * len(legend)).extend(values)
        for t in rows:
            rows[t] += [math.nan] * (len(legend) + len(host_legend) - len(rows[t]))
        legend += host_legend
    body = updates_xml(legend, sorted(rows.items(), reverse=True), int(INTERVAL))
    handler.send_response(200)
    handler.send_header("Content-Type", "text/xml")
    handler.send_header("Access-Control-Allow-Origin", "*")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def register(api: Any) -> None:
    api.rrdd_hub = None  # set by start_hub when the simulator serves
    api.add("VM", "get_data_sources", lambda ctx, vm: get_data_sources(api, ctx, vm), 1)
    api.add("VM", "query_data_source", lambda ctx, vm, n: query_data_source(api, ctx, vm, n), 2)
    api.add("VM", "record_data_source", lambda ctx, vm, n: record_data_source(api, ctx, vm, n), 2)
    api.add("VM", "forget_data_source_archives",
            lambda ctx, vm, n: forget_data_source_archives(api, ctx, vm, n), 2)
