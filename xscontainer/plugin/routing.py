"""Which host must run a plugin call, and re-issuing it there (as the original plugin did).

XenCenter makes lifecycle calls on the pool coordinator; the VM's engine connection lives on the
host the VM is resident on. A call about a VDI or SR runs on a host that has the SR attached.
"""

from typing import Dict, Optional

import XenAPI

from xscontainer.errors import NotFound

PLUGIN_NAME = "xscontainer"
NULL_REF = "OpaqueRef:NULL"
# Set on a forwarded call so that a VM migrating at that moment cannot make calls bounce forever.
FORWARDED_KEY = "xscontainer-forwarded"


def this_host_ref(session: "XenAPI.Session", host_uuid: str) -> str:
    return session.xenapi.host.get_by_uuid(host_uuid)


def vm_ref_by_uuid(session: "XenAPI.Session", vm_uuid: str) -> str:
    try:
        return session.xenapi.VM.get_by_uuid(vm_uuid)
    except XenAPI.Failure as exc:
        if exc.details[0] == "UUID_INVALID":
            raise NotFound("No VM has uuid %s." % vm_uuid, code="VM_NOT_FOUND") from exc
        raise


def host_of_vm(session: "XenAPI.Session", vm_ref: str) -> Optional[str]:
    """The host the VM runs on, or None when it is not resident anywhere."""
    host = session.xenapi.VM.get_resident_on(vm_ref)
    return None if host == NULL_REF else host


def host_seeing_sr(session: "XenAPI.Session", sr_ref: str, preferred: str) -> Optional[str]:
    """A host with an attached PBD for the SR, ``preferred`` when it qualifies."""
    hosts = []
    for pbd in session.xenapi.SR.get_PBDs(sr_ref):
        record = session.xenapi.PBD.get_record(pbd)
        if record["currently_attached"]:
            hosts.append(record["host"])
    if preferred in hosts:
        return preferred
    return hosts[0] if hosts else None


def sr_ref_by_uuid(session: "XenAPI.Session", sr_uuid: str) -> str:
    try:
        return session.xenapi.SR.get_by_uuid(sr_uuid)
    except XenAPI.Failure as exc:
        if exc.details[0] == "UUID_INVALID":
            raise NotFound("No SR has uuid %s." % sr_uuid, code="SR_NOT_FOUND") from exc
        raise


def vdi_sr_ref(session: "XenAPI.Session", vdi_uuid: str) -> str:
    try:
        return session.xenapi.VDI.get_SR(session.xenapi.VDI.get_by_uuid(vdi_uuid))
    except XenAPI.Failure as exc:
        if exc.details[0] == "UUID_INVALID":
            raise NotFound("No VDI has uuid %s." % vdi_uuid, code="VDI_NOT_FOUND") from exc
        raise


def forward(session: "XenAPI.Session", host_ref: str, fn: str, args: Dict[str, str]) -> str:
    """Re-issue the call on another host; its result or failure comes back unchanged."""
    forwarded = dict(args)
    forwarded[FORWARDED_KEY] = "1"
    return session.xenapi.host.call_plugin(host_ref, PLUGIN_NAME, fn, forwarded)


def was_forwarded(args: Dict[str, str]) -> bool:
    return args.get(FORWARDED_KEY) == "1"


def strip_routing_keys(args: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in args.items() if k != FORWARDED_KEY}
