"""The xapi side of prepare-vm: finding the VM by uuid or name-label, and recording its settings
key by key in ``VM.other_config``."""

from typing import Any, Dict, List, NamedTuple, Tuple

from xscontainer.errors import NotFound, XapiError
from xscontainer.vmsettings import MODE_KEY, MONITOR_KEY, USERNAME_KEY, choose_addresses
from xscontainer.xapi import Failure, NULL_REF, Session
from xscontainer.xapi.maps import set_map_key


class VmChoice(NamedTuple):
    uuid: str
    ref: str
    name_label: str
    power_state: str


def _is_guest(record: Dict[str, Any]) -> bool:
    return not (record.get("is_a_template") or record.get("is_control_domain")
                or record.get("is_a_snapshot"))


def choose_vm(query: str, candidates: List[Tuple[str, Dict[str, Any]]]) -> VmChoice:
    """Pure: pick the one VM (ref, record) that ``query`` names: its uuid, or else its name-label
    among guests (templates, snapshots and dom0 are never chosen by name)."""
    by_uuid = [(ref, rec) for ref, rec in candidates if rec.get("uuid") == query]
    matches = by_uuid or [(ref, rec) for ref, rec in candidates
                          if rec.get("name_label") == query and _is_guest(rec)]
    if not matches:
        raise NotFound("There is no VM with uuid or name-label %r." % query, code="VM_NOT_FOUND")
    if len(matches) > 1:
        raise NotFound("%d VMs are called %r (%s): give the uuid of the one to prepare."
                       % (len(matches), query, ", ".join(sorted(rec.get("uuid", "?") for _, rec in matches))),
                       code="VM_AMBIGUOUS")
    ref, rec = matches[0]
    if not _is_guest(rec):
        raise NotFound("%s is a template, a snapshot or the control domain, not a VM that can run an "
                       "engine." % query, code="VM_NOT_FOUND")
    return VmChoice(rec["uuid"], ref, rec.get("name_label", ""), rec.get("power_state", ""))


def _failure(action: str, exc: BaseException) -> XapiError:
    details = exc.details if isinstance(exc, Failure) else exc
    return XapiError("xapi refused to %s: %s" % (action, details))


def find_vm(session: Session, query: str) -> VmChoice:
    api = session.xenapi
    candidates = []  # type: List[Tuple[str, Dict[str, Any]]]
    try:
        try:
            ref = api.VM.get_by_uuid(query)
            candidates.append((ref, api.VM.get_record(ref)))
        except Failure as exc:
            if exc.details[0] not in ("UUID_INVALID", "HANDLE_INVALID"):
                raise
        if not candidates:
            for ref in api.VM.get_by_name_label(query):
                candidates.append((ref, api.VM.get_record(ref)))
    except (Failure, OSError) as exc:
        raise _failure("look up VM %r" % query, exc) from exc
    return choose_vm(query, candidates)


def vm_addresses(session: Session, vm: VmChoice) -> List[str]:
    """The VM's addresses as the engine layer orders them (read without its settings, so that a
    bad ``xscontainer-mode`` value, which preparing overwrites, is no obstacle)."""
    api = session.xenapi
    try:
        metrics = api.VM.get_guest_metrics(vm.ref)
        if not metrics or metrics == NULL_REF:
            return []
        try:
            return choose_addresses(api.VM_guest_metrics.get_networks(metrics))
        except Failure as exc:
            if exc.details[0] == "HANDLE_INVALID":
                return []
            raise
    except (Failure, OSError) as exc:
        raise _failure("read the addresses of VM %s" % vm.uuid, exc) from exc


def record_settings(session: Session, vm: VmChoice, settings: Dict[str, str]) -> None:
    """Write each key of ``settings`` into the VM's other_config, one key at a time."""
    try:
        for key in sorted(settings):
            set_map_key(session.xenapi.VM, vm.ref, key, settings[key])
    except (Failure, OSError) as exc:
        raise _failure("record the settings of VM %s" % vm.uuid, exc) from exc


def ssh_settings(username: str) -> Dict[str, str]:
    """Pure: what --mode ssh records (monitoring switched on as the plugin's ``register`` does)."""
    return {USERNAME_KEY: username, MODE_KEY: "ssh", MONITOR_KEY: "True"}


def tls_settings() -> Dict[str, str]:
    return {MODE_KEY: "tls", MONITOR_KEY: "True"}
