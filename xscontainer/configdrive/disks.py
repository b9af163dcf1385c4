"""A config drive's disk in xapi: the VDI and its VBD made (and undone on failure) for
``create_config_drive``, and finding and removing a VM's earlier drives."""

import logging
from typing import Any, Dict, List, Optional, Tuple

from xscontainer.errors import ConfigDriveError
from xscontainer.xapi import Failure, NULL_REF, Session

LOG = logging.getLogger(__name__)

CONFIG_DRIVE_KEY = "config-drive"
CONFIG_DRIVE_NAME = "Automatic Config Drive"
FIRST_USERDEVICE = 1
LAST_USERDEVICE = 15

_XAPI_CODES = {
    "SR_FULL": "SR_FULL",
    "VDI_TOO_LARGE": "DISK_TOO_LARGE",
    "SR_NO_PBDS": "SR_NOT_ATTACHED",
    "SR_OPERATION_NOT_SUPPORTED": "SR_NOT_SUITABLE",
    "SR_BACKEND_FAILURE_44": "SR_FULL",  # "insufficient space" from the storage manager
    "VM_BAD_POWER_STATE": "VM_BAD_POWER_STATE",
    "HANDLE_INVALID": "OBJECT_VANISHED",
}


def translate_failure(exc: Failure, doing: str) -> ConfigDriveError:
    details = list(exc.details or [])
    code = _XAPI_CODES.get(details[0] if details else "", "XAPI_ERROR")
    return ConfigDriveError("xapi refused to %s: %s" % (doing, " ".join(str(d) for d in details)),
                            code=code, xapi_error=details)


def _is_true(value: Optional[str]) -> bool:
    return (value or "").strip().lower() == "true"


class MadeSoFar:
    """What one create_config_drive call has made, so a failure can remove exactly that."""

    def __init__(self, session: Session, vm_uuid: str) -> None:
        self.session = session
        self.vm_uuid = vm_uuid
        self.vdi = None  # type: Optional[str]
        self.vbd = None  # type: Optional[str]

    def undo(self) -> None:
        api = self.session.xenapi
        if self.vbd is not None:
            try:
                if api.VBD.get_currently_attached(self.vbd):
                    api.VBD.unplug(self.vbd)
                api.VBD.destroy(self.vbd)
            except Failure as exc:
                LOG.error("VM %s: cannot remove the new config drive VBD %s: %s", self.vm_uuid,
                          self.vbd, exc.details)
        if self.vdi is not None:
            try:
                api.VDI.destroy(self.vdi)
            except Failure as exc:
                LOG.error("VM %s: cannot remove the new config drive VDI %s: %s", self.vm_uuid,
                          self.vdi, exc.details)


def create_vdi(session: Session, sr_ref: str, vm_uuid: str, size: int) -> str:
    record = {
        "name_label": CONFIG_DRIVE_NAME,
        "name_description": "Cloud-config drive of VM %s, made by xscontainer" % vm_uuid,
        "SR": sr_ref,
        "virtual_size": str(size),
        "type": "user",
        "sharable": False,
        "read_only": False,
        "other_config": {CONFIG_DRIVE_KEY: "True"},
        "xenstore_data": {},
        "sm_config": {},
        "tags": [],
    }
    try:
        return session.xenapi.VDI.create(record)
    except Failure as exc:
        raise translate_failure(exc, "create the config drive disk") from exc


def create_vbd(session: Session, vm_ref: str, vdi_ref: str) -> str:
    used = set()
    for vbd in session.xenapi.VM.get_VBDs(vm_ref):
        try:
            used.add(session.xenapi.VBD.get_userdevice(vbd))
        except Failure:
            continue
    record = {
        "VM": vm_ref, "VDI": vdi_ref, "device": "", "bootable": False, "mode": "RO",
        "type": "Disk", "unpluggable": True, "empty": False,
        "other_config": {CONFIG_DRIVE_KEY: "True"},
        "qos_algorithm_type": "", "qos_algorithm_params": {},
    }
    for number in range(FIRST_USERDEVICE, LAST_USERDEVICE + 1):
        if str(number) in used:
            continue
        record["userdevice"] = str(number)
        try:
            return session.xenapi.VBD.create(record)
        except Failure as exc:
            if exc.details and exc.details[0] == "DEVICE_ALREADY_EXISTS":
                continue  # someone took it since we looked: try the next one
            if exc.details and exc.details[0] == "INVALID_DEVICE":
                break
            raise translate_failure(exc, "attach the config drive") from exc
    raise ConfigDriveError("The VM has no free disk slot for the config drive.",
                           code="NO_FREE_DEVICE")


def config_drives_of(session: Session, vm_ref: str,
                      exclude_vbd: Optional[str]) -> List[Tuple[str, Dict[str, Any]]]:
    """(VBD ref, VBD record) of every config drive of the VM but ``exclude_vbd``."""
    api = session.xenapi
    result = []
    for vbd in api.VM.get_VBDs(vm_ref):
        if vbd == exclude_vbd:
            continue
        try:
            record = api.VBD.get_record(vbd)
            marked = _is_true(record.get("other_config", {}).get(CONFIG_DRIVE_KEY))
            if not marked and record.get("VDI", NULL_REF) != NULL_REF and not record.get("empty"):
                marked = _is_true(api.VDI.get_other_config(record["VDI"]).get(CONFIG_DRIVE_KEY))
        except Failure:
            continue  # removed meanwhile
        if marked:
            result.append((vbd, record))
    return result


def remove_drive(session: Session, vm_uuid: str, vbd: str, record: Dict[str, Any]) -> None:
    api = session.xenapi
    if record.get("currently_attached"):
        api.VBD.unplug(vbd)
    api.VBD.destroy(vbd)
    vdi = record.get("VDI", NULL_REF)
    if vdi != NULL_REF and not record.get("empty"):
        if not api.VDI.get_VBDs(vdi):
            api.VDI.destroy(vdi)
        else:
            LOG.info("VM %s: old config drive VDI %s is still used by another VM; kept", vm_uuid, vdi)
    LOG.info("VM %s: removed the previous config drive (VBD %s)", vm_uuid, vbd)
