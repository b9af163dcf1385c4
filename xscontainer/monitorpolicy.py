"""Which VMs this host's monitor watches (pure: xapi records in, a decision out).

A VM is monitored when ``other_config:xscontainer-monitor`` is true (``True`` as ``register``
writes it; compared case-insensitively like XenCenter's ``IsEnlightened``), it is ``Running``,
``resident_on`` this host, it is neither a template, a snapshot nor a control domain, and its
guest metrics report at least one IPv4 address (``vmsettings.choose_addresses``).
"""

from typing import Mapping, Optional

from xscontainer.vmsettings import MONITOR_KEY, choose_addresses
from xscontainer.xapi import NULL_REF


def monitor_enabled(other_config: Optional[Mapping]) -> bool:
    """The ``xscontainer-monitor`` switch: true for ``True`` (any case, surrounding spaces)."""
    value = (other_config or {}).get(MONITOR_KEY)
    return isinstance(value, str) and value.strip().lower() == "true"


def _is_true(value: object) -> bool:
    # xapi gives booleans; some clients and older event snapshots give strings.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def why_not_monitored(vm_record: Mapping, this_host_ref: str,
                      guest_metrics_record: Optional[Mapping]) -> Optional[str]:
    """None when the VM must be monitored here, else a short reason (for logs and the CLI)."""
    if _is_true(vm_record.get("is_control_domain")):
        return "control domain"
    if _is_true(vm_record.get("is_a_template")) or _is_true(vm_record.get("is_a_snapshot")):
        return "template or snapshot"
    if not monitor_enabled(vm_record.get("other_config")):
        return "not registered (other-config:%s is not True)" % MONITOR_KEY
    if vm_record.get("power_state") != "Running":
        return "not running (%s)" % vm_record.get("power_state")
    resident = vm_record.get("resident_on")
    if not resident or resident == NULL_REF or resident != this_host_ref:
        return "not resident on this host"
    if guest_metrics_record is None:
        return "no guest metrics (are the guest tools running?)"
    networks = guest_metrics_record.get("networks") or {}
    if not choose_addresses(dict(networks)):
        return "the guest reports no IPv4 address"
    return None


def should_monitor(vm_record: Mapping, this_host_ref: str,
                   guest_metrics_record: Optional[Mapping]) -> bool:
    """True when this host's monitor must watch the VM (issue 5 §1)."""
    return why_not_monitored(vm_record, this_host_ref, guest_metrics_record) is None
