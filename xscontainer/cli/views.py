"""What each verb shows (pure): JSON-able data and text tables built from parsed documents."""

import datetime
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from xscontainer.cli import layout
from xscontainer.cli.failures import UNREACHABLE_CODES
from xscontainer.cli.layout import Column
from xscontainer.cli.model import VmInfo
from xscontainer.cli.xmlread import ContainerRow, none_if_null, uptime_seconds
from xscontainer.errors import XSContainerError
from xscontainer.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE


def error_json(exc: XSContainerError) -> Dict[str, str]:
    return {"code": exc.code, "message": exc.message}


def vm_json(vm: VmInfo) -> Dict[str, Any]:
    return {"uuid": vm.uuid, "name_label": vm.name_label, "power_state": vm.power_state,
            "managed": vm.managed,
            "host": {"uuid": vm.host_uuid, "name_label": vm.host_name} if vm.host_uuid else None}


def container_json(row: ContainerRow, now: datetime.datetime) -> Dict[str, Any]:
    return {"id": row.id, "container": row.container, "name": row.name, "image": row.image,
            "command": row.command, "status": row.status, "state": row.state,
            "created": int(row.created) if row.created.isdigit() else (row.created or None),
            "started_at": row.started_at, "uptime_seconds": uptime_seconds(row, now),
            "ports": [{"ip": p.ip or None, "public_port": _int_or_none(p.public_port),
                       "private_port": _int_or_none(p.private_port), "type": p.type or None}
                      for p in row.ports]}


def _int_or_none(text: str) -> Any:
    return int(text) if text.isdigit() else (text or None)


# -- ps ------------------------------------------------------------------------------------------

class VmContainers(NamedTuple):
    vm: VmInfo
    containers: Optional[List[ContainerRow]]  # None: no docker_ps yet
    error: Optional[XSContainerError]  # why the refresh or the parse failed


PS_COLUMNS = (Column("VM", shrink=True, min_width=8), Column("CONTAINER"),
              Column("NAME", shrink=True, min_width=8), Column("IMAGE", shrink=True, min_width=10),
              Column("STATUS"), Column("UPTIME"), Column("PORTS", shrink=True, min_width=10))


def ps_json(views: Sequence[VmContainers], now: datetime.datetime) -> Dict[str, Any]:
    result = []
    for view in views:
        item = vm_json(view.vm)
        item["containers"] = None if view.containers is None else [container_json(r, now) for r in view.containers]
        item["error"] = error_json(view.error) if view.error else None
        result.append(item)
    return {"vms": result}


def ps_table(views: Sequence[VmContainers], now: datetime.datetime, width: Optional[int]) -> str:
    rows = []
    for view in views:
        for row in view.containers or []:
            rows.append([view.vm.name_label, row.container, row.name, row.image, row.status,
                         layout.format_duration(uptime_seconds(row, now)), layout.format_ports(row.ports)])
    return layout.render_table(PS_COLUMNS, rows, width)


def ps_notes(views: Sequence[VmContainers], refreshed: bool) -> List[str]:
    """One line per VM whose containers are not shown, or shown from an old list."""
    notes = []
    for view in views:
        vm = view.vm
        if view.error is not None:
            message = view.error.message
            if not message.startswith(vm.name_label + ":"):
                message = "%s: %s" % (vm.name_label, message)
            notes.append("%s [%s]%s" % (message, view.error.code,
                                        " (showing the last known list)" if view.containers else ""))
        elif view.containers is None:
            if vm.power_state != "Running":
                notes.append("%s: the VM is %s." % (vm.name_label, vm.power_state.lower()))
            elif not refreshed:
                notes.append("%s: no container list yet: run `xscontainer ps --refresh`, or check that "
                             "xscontainer-monitor runs on its host." % vm.name_label)
            else:
                notes.append("%s: no container list." % vm.name_label)
        elif not view.containers:
            notes.append("%s: no containers." % vm.name_label)
        if not vm.managed:
            notes.append("%s: not registered for container management (xscontainer register %s)."
                         % (vm.name_label, vm.name_label))
    return notes


# -- top -----------------------------------------------------------------------------------------

_SHRINKABLE_TOP = ("CMD", "COMMAND", "ARGS")
_NUMERIC_TOP = ("PID", "PPID", "C", "%CPU", "%MEM", "VSZ", "RSS")


def top_table(titles: Sequence[str], rows: Sequence[Sequence[str]], width: Optional[int]) -> str:
    columns = [Column(t, shrink=t in _SHRINKABLE_TOP, min_width=10, right=t in _NUMERIC_TOP) for t in titles]
    return layout.render_table(columns, rows, width)


def top_json(titles: Sequence[str], rows: Sequence[Sequence[str]]) -> Dict[str, Any]:
    return {"titles": list(titles), "processes": [dict(zip(titles, row)) for row in rows]}


# -- stats ---------------------------------------------------------------------------------------

_INT_FIELDS = ("memory_usage", "memory_limit", "network_rx_bytes", "network_tx_bytes",
               "block_read_bytes", "block_write_bytes")
STATS_COLUMNS = (Column("CONTAINER"), Column("NAME", shrink=True, min_width=8), Column("CPU %", right=True),
                 Column("MEM USAGE / LIMIT"), Column("MEM %", right=True), Column("NET I/O"),
                 Column("BLOCK I/O"))


def _number(value: Any, kind) -> Any:
    value = none_if_null(value)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return value


def stats_records(decoded: Any) -> List[Dict[str, Any]]:
    """The ``docker_stats`` items with their numbers typed (one dict per container)."""
    items = decoded if isinstance(decoded, list) else ([decoded] if isinstance(decoded, dict) else [])
    records = []
    for item in items:
        if not isinstance(item, dict):
            continue
        record = dict(item)
        for key in _INT_FIELDS:
            if key in record:
                record[key] = _number(record[key], int)
        if "cpu_percent" in record:
            record["cpu_percent"] = _number(record["cpu_percent"], float)
        records.append(record)
    return records


def _pair(a: Any, b: Any) -> str:
    return "%s / %s" % (layout.format_bytes(a), layout.format_bytes(b))


def stats_table(records: Sequence[Dict[str, Any]], width: Optional[int]) -> str:
    rows = []
    for r in records:
        usage, limit = r.get("memory_usage"), r.get("memory_limit")
        mem_pct = ("%.2f%%" % (100.0 * usage / limit)) if isinstance(usage, int) and isinstance(limit, int) \
            and limit > 0 else "-"
        cpu = r.get("cpu_percent")
        rows.append([str(r.get("id", ""))[:10], r.get("name", ""),
                     ("%.2f%%" % cpu) if isinstance(cpu, float) else "-", _pair(usage, limit), mem_pct,
                     _pair(r.get("network_rx_bytes"), r.get("network_tx_bytes")),
                     _pair(r.get("block_read_bytes"), r.get("block_write_bytes"))])
    return layout.render_table(STATS_COLUMNS, rows, width)


# -- doctor --------------------------------------------------------------------------------------

_DIAGNOSIS_CODE_RE = re.compile(r"\(([A-Z][A-Z0-9_]*)\)\s*\Z")

ADVICE = {
    "OK": "Nothing: the engine answers.",
    "NO_ADDRESS": "Start the VM's guest tools (or agent) so that xapi learns its IP address, and check its "
                  "network.",
    "PORT_CLOSED": "Start sshd in the VM (systemctl start sshd) and let port 22 through its firewall.",
    "ADDRESS_UNREACHABLE": "Check the network between this host and the VM (routes, VLAN, firewall).",
    "SSH_HANDSHAKE_FAILED": "Check that port 22 of the VM is an SSH server, and read its sshd log.",
    "SSH_AUTH_FAILED": "Authorize the pool's public key for the VM's user: create a config drive "
                       "(xscontainer config-drive create) or run xscontainer prepare-vm.",
    "SSH_HOSTKEY_MISMATCH": "If the VM was rebuilt on purpose, remove its other-config:xscontainer-sshhostkey "
                            "(xe vm-param-remove ... param-key=xscontainer-sshhostkey); otherwise "
                            "investigate: something else answers at its address.",
    "SSH_HOSTKEY_UNVERIFIED": "Check the fingerprint shown against the VM's own (on its console: ssh-keygen -lf "
                              "/etc/ssh/ssh_host_ed25519_key.pub), then xscontainer register VM "
                              "--host-key-fingerprint SHA256:... (or run xscontainer prepare-vm).",
    "SSH_HOSTKEY_DUPLICATE": "Give the VM its own host keys (a clone keeps its source's: remove "
                             "/etc/ssh/ssh_host_* in it and run ssh-keygen -A), then pin the new one.",
    "NO_DOCKER_SOCKET": "Install and start the Docker engine in the VM (systemctl start docker).",
    "DOCKER_SOCKET_DENIED": "Add the VM's user to the docker group (usermod -aG docker USER).",
    "ENGINE_NOT_ANSWERING": "Restart the Docker engine in the VM (systemctl restart docker) and read its log.",
    "ENGINE_UNREACHABLE": "Check that the Docker engine runs in the VM and that sshd allows stream-local "
                          "forwarding (AllowStreamLocalForwarding yes).",
    "ENGINE_TIMEOUT": "The engine is hung or overloaded: restart it in the VM (systemctl restart docker).",
    "API_TOO_OLD": "Upgrade the Docker engine in the VM.",
    "API_TOO_NEW": "Upgrade xscontainer in dom0.",
    "TLS_NOT_CONFIGURED": "Set up TLS for the VM with xscontainer prepare-vm, or switch it back to SSH.",
    "TLS_VERIFY_FAILED": "The engine's certificate is not signed by the CA xscontainer trusts: redo the TLS "
                         "setup with xscontainer prepare-vm.",
    "TLS_HANDSHAKE_FAILED": "Check that the engine listens with TLS on port 2376.",
    "POOL_KEY_MISSING": "Register the VM again (xscontainer register) so that the pool key pair is created.",
}
NOT_MONITORED_ADVICE = "Register the VM (xscontainer register VM) so that the monitor watches it."
MONITOR_NOT_RUNNING_ADVICE = "Start the monitor on the VM's host (systemctl start xscontainer-monitor) " \
                             "so that its containers stay current in XenCenter."


class DoctorReport(NamedTuple):
    state: str
    reason: Optional[str]
    since: Optional[str]
    last_error: Optional[str]
    code: str  # the first failing step's code, "OK" when nothing fails, "" when unknown
    diagnosis: Optional[str]
    advice: List[str]
    pool_note: Optional[str] = None  # hosts of the pool without this xscontainer version

    @property
    def healthy(self) -> bool:
        return self.code in ("OK", "")


def doctor_report(status: Any) -> DoctorReport:
    """Read the plugin's ``get_status`` record (decoded) into a report with what to do."""
    status = status if isinstance(status, dict) else {}
    state = none_if_null(status.get("state")) or "unknown"
    reason = none_if_null(status.get("reason"))
    diagnosis = none_if_null(status.get("diagnosis"))
    code = none_if_null(status.get("last_error_code")) or ""
    if diagnosis:
        match = _DIAGNOSIS_CODE_RE.search(diagnosis)
        if match and (not code or match.group(1) != "OK"):
            code = match.group(1)
    if not code and state == "monitored":
        code = "OK"
    advice = []
    if code and code in ADVICE:
        advice.append(ADVICE[code])
    elif code:
        advice.append("Read the diagnosis above; the code %s names the failing step." % code)
    if code == "OK" and state in ("not monitored", "monitor not running"):
        advice = []  # the engine answers; what is missing is monitoring
    if state == "not monitored":
        advice.append(NOT_MONITORED_ADVICE)
    elif state == "monitor not running":
        advice.append(MONITOR_NOT_RUNNING_ADVICE)
    pool = none_if_null(status.get("pool_note"))
    return DoctorReport(state, reason, none_if_null(status.get("since")), none_if_null(status.get("last_error")),
                        code, diagnosis, advice, pool)


def doctor_exit_code(report: DoctorReport) -> int:
    if report.healthy:
        return EXIT_OK
    return EXIT_UNREACHABLE if report.code in UNREACHABLE_CODES else EXIT_FAILED


def doctor_json(vm: VmInfo, report: DoctorReport) -> Dict[str, Any]:
    return {"vm": vm_json(vm), "state": report.state, "reason": report.reason, "since": report.since,
            "last_error": report.last_error, "code": report.code or None, "diagnosis": report.diagnosis,
            "healthy": report.healthy, "advice": report.advice, "pool": report.pool_note}


def doctor_text(vm: VmInfo, report: DoctorReport) -> str:
    pairs = [("VM", "%s (%s)" % (vm.name_label, vm.uuid)),
             ("Host", vm.host_name or "-"),
             ("State", report.state + (" (%s)" % report.reason if report.reason else "")),
             ("Since", report.since or "-"),
             ("Last error", report.last_error or "-"),
             ("Diagnosis", report.diagnosis or "-")]
    if report.pool_note:
        pairs.append(("Pool", report.pool_note))
    for index, advice in enumerate(report.advice):
        pairs.append(("What to do" if index == 0 else "", advice))
    return key_value_text(pairs)


def key_value_text(pairs: Sequence[Tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs) + 2
    return "".join(("%s%s" % ((k + ":" if k else "").ljust(width), layout.single_line(v))).rstrip() + "\n"
                   for k, v in pairs)
