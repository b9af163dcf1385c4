"""Which host must run a plugin call, and re-issuing it there (as the original plugin did).

XenCenter makes lifecycle calls on the pool coordinator; the VM's engine connection lives on the
host the VM is resident on. A call about a VDI or SR runs on a host that has the SR attached.
"""

from typing import Dict, NamedTuple, Optional

from xscontainer.errors import NotFound
from xscontainer.plugincall import FORWARDED_KEY, PLUGIN_NAME, check_call_size, forwarding_error
from xscontainer.xapi import Failure, NULL_REF, Session


class Target(NamedTuple):
    """The host that must run a call, and why, as a phrase: "that runs VM web (uuid)"."""
    host: str
    why: str


def this_host_ref(session: Session, host_uuid: str) -> str:
    return session.xenapi.host.get_by_uuid(host_uuid)


def _ref_by_uuid(session: Session, cls: str, uuid: str) -> str:
    """The ref of the ``cls`` object with ``uuid``; NotFound (``VM_NOT_FOUND``, ...) when none has."""
    try:
        return getattr(session.xenapi, cls).get_by_uuid(uuid)
    except Failure as exc:
        if exc.details[0] == "UUID_INVALID":
            raise NotFound("No %s has uuid %s." % (cls, uuid), code=cls + "_NOT_FOUND") from exc
        raise


def vm_ref_by_uuid(session: Session, vm_uuid: str) -> str:
    return _ref_by_uuid(session, "VM", vm_uuid)


def host_of_vm(session: Session, vm_ref: str) -> Optional[str]:
    """The host the VM runs on, or None when it is not resident anywhere."""
    host = session.xenapi.VM.get_resident_on(vm_ref)
    return None if host == NULL_REF else host


def host_seeing_sr(session: Session, sr_ref: str, preferred: str) -> Optional[str]:
    """A host with an attached PBD for the SR, ``preferred`` when it qualifies."""
    hosts = []
    for pbd in session.xenapi.SR.get_PBDs(sr_ref):
        record = session.xenapi.PBD.get_record(pbd)
        if record["currently_attached"]:
            hosts.append(record["host"])
    if preferred in hosts:
        return preferred
    return hosts[0] if hosts else None


def sr_ref_by_uuid(session: Session, sr_uuid: str) -> str:
    return _ref_by_uuid(session, "SR", sr_uuid)


def vdi_sr_ref(session: Session, vdi_uuid: str) -> str:
    return session.xenapi.VDI.get_SR(_ref_by_uuid(session, "VDI", vdi_uuid))


def describe_host(session: Session, host_ref: str) -> str:
    """``name (uuid)`` of a host, for sentences; the ref when xapi cannot say more."""
    try:
        return "%s (%s)" % (session.xenapi.host.get_name_label(host_ref),
                            session.xenapi.host.get_uuid(host_ref))
    except Failure:
        return host_ref


def describe_vm(session: Session, vm_ref: str, vm_uuid: str) -> str:
    try:
        return "%s (%s)" % (session.xenapi.VM.get_name_label(vm_ref), vm_uuid)
    except Failure:
        return vm_uuid


def forward(session: Session, target: Target, fn: str, args: Dict[str, str]) -> str:
    """Re-issue the call on the target host; its result, or the plugin's own failure there, comes
    back unchanged. xapi's failures to get it there become our codes with a sentence."""
    check_call_size(fn, session.handle, args)
    forwarded = dict(args)
    forwarded[FORWARDED_KEY] = "1"
    try:
        return session.xenapi.host.call_plugin(target.host, PLUGIN_NAME, fn, forwarded)
    except Failure as exc:
        error = forwarding_error(exc.details, describe_host(session, target.host), target.why)
        if error is None:
            raise
        raise error from exc


def was_forwarded(args: Dict[str, str]) -> bool:
    return args.get(FORWARDED_KEY) == "1"


def strip_routing_keys(args: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in args.items() if k != FORWARDED_KEY}
