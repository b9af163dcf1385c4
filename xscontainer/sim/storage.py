"""VDI and VBD constructors and calls with xapi's semantics (xapi_vdi, xapi_vbd; contract §10-§12),
a part of ``Devices`` (sim/devices.py)."""

import os
import re
import uuid as uuidlib
from typing import Any, Dict, Optional

from xscontainer.sim import datamodel as dm
from xscontainer.sim.calls import Ctor, bad_power, power_state
from xscontainer.sim.failures import XapiFailure

_VBD_VDI_TYPES = ("system", "user", "ephemeral", "suspend", "crashdump", "metadata", "rrd",
                  "pvs_cache")
_MAX_DEVICE = 254


def device_number(name: str) -> Optional[int]:
    if re.match(r"^[0-9]+$", name):
        return int(name)
    m = re.match(r"^(xvd|hd|sd)([a-z])$", name)
    if m:
        return ord(m.group(2)) - ord("a")
    return None


def device_name(number: int) -> str:
    return "xvd" + chr(ord("a") + number) if number < 26 else "xvd%d" % number


class StorageCalls:
    """The VDI and VBD calls of ``Devices`` (uses its ``db`` and ``api``)."""

    # ---- VDI ------------------------------------------------------------------------------
    def vdi_create(self, ctx: Any, args: Any) -> str:
        ctor = Ctor("VDI", args)
        sr = ctor.get("SR")
        self.db.get("SR", sr)
        values = {
            "SR": sr, "virtual_size": ctor.get("virtual_size"), "type": ctor.get("type"),
            "sharable": ctor.get("sharable"), "read_only": ctor.get("read_only"),
            "other_config": ctor.get("other_config"),
            "name_label": ctor.get("name_label", "", False),
            "name_description": ctor.get("name_description", "", False),
            "xenstore_data": ctor.get("xenstore_data", {}, False),
            "sm_config": ctor.get("sm_config", {}, False),
            "tags": ctor.get("tags", [], False),
            "managed": True, "missing": False, "storage_lock": False,
        }
        if values["virtual_size"] < 0:
            raise XapiFailure("INVALID_VALUE", "virtual_size", values["virtual_size"])
        master = self.api.master()
        if not any(self.db.get("PBD", p)["host"] == master and
                   self.db.get("PBD", p)["currently_attached"]
                   for p in self.db.get("SR", sr)["PBDs"]):
            raise XapiFailure("SR_NO_PBDS", sr)
        if values["type"] == "cbt_metadata":
            raise XapiFailure("VDI_INCOMPATIBLE_TYPE", "", values["type"])
        vdi_uuid = str(uuidlib.uuid4())
        values["uuid"] = vdi_uuid
        values["location"] = vdi_uuid
        ref = self.db.create("VDI", values)
        self._sr_allocation(sr)
        return ref

    def _sr_allocation(self, sr: str) -> None:
        total = sum(self.db.get("VDI", v)["virtual_size"] for v in self.db.get("SR", sr)["VDIs"])
        self.db.set("SR", sr, "virtual_allocation", total)

    def vdi_destroy(self, ctx: Any, vdi: Any) -> None:
        row = self.db.get("VDI", vdi)
        if any(self.db.get("VBD", b)["currently_attached"] for b in row["VBDs"]):
            raise XapiFailure("VDI_IN_USE", vdi, "destroy")
        for vbd in list(row["VBDs"]):
            self.db.destroy("VBD", vbd)
        sr = row["SR"]
        self.db.destroy("VDI", vdi)
        if self.db.exists("SR", sr):
            self._sr_allocation(sr)
        try:
            os.unlink(os.path.join(self.api.config.vdi_dir, row["uuid"] + ".raw"))
        except OSError:
            pass

    # ---- VBD ------------------------------------------------------------------------------
    def vbd_create(self, ctx: Any, args: Any) -> str:
        ctor = Ctor("VBD", args)
        vm = ctor.get("VM")
        vm_row = self.db.get("VM", vm)
        vdi = ctor.get("VDI")
        values = {
            "VM": vm, "VDI": vdi, "userdevice": ctor.get("userdevice"),
            "bootable": ctor.get("bootable"), "mode": ctor.get("mode"),
            "type": ctor.get("type"), "empty": ctor.get("empty"),
            "other_config": ctor.get("other_config"),
            "qos_algorithm_type": ctor.get("qos_algorithm_type"),
            "qos_algorithm_params": ctor.get("qos_algorithm_params"),
            "unpluggable": ctor.get("unpluggable", True, False),
            "device": "", "currently_attached": False, "storage_lock": False,
        }
        if values["empty"]:
            if values["type"] != "CD":
                raise XapiFailure("VBD_NOT_REMOVABLE_MEDIA", "in constructor")
            values["VDI"] = dm.NULL_REF
        else:
            vdi_row = self.db.get("VDI", vdi)
            if vdi_row["type"] not in _VBD_VDI_TYPES:
                raise XapiFailure("VDI_INCOMPATIBLE_TYPE", vdi, vdi_row["type"])
            if values["mode"] == "RW" and vdi_row["read_only"]:
                raise XapiFailure("VDI_READONLY", vdi)
        if values["type"] == "CD" and values["mode"] != "RO":
            raise XapiFailure("VBD_CDS_MUST_BE_READONLY")
        used = set()
        for other in vm_row["VBDs"]:
            number = device_number(self.db.get("VBD", other)["userdevice"])
            if number is not None:
                used.add(number)
        requested = values["userdevice"]
        if requested == "autodetect":
            free = [n for n in range(_MAX_DEVICE + 1) if n not in used]
            if not free:
                raise XapiFailure("INVALID_DEVICE", requested)
            values["userdevice"] = str(free[0])
        else:
            number = device_number(requested)
            if number is None or number > _MAX_DEVICE:
                raise XapiFailure("INVALID_DEVICE", requested)
            if number in used:
                raise XapiFailure("DEVICE_ALREADY_EXISTS", requested)
        return self.db.create("VBD", values)

    def _vbd_device(self, row: Dict[str, Any]) -> str:
        number = device_number(row["userdevice"])
        return device_name(number) if number is not None else row["userdevice"]

    def vbd_plug(self, ctx: Any, vbd: Any) -> None:
        row = self.db.get("VBD", vbd)
        vm_row = self.db.get("VM", row["VM"])
        if vm_row["power_state"] != "Running":
            raise bad_power(row["VM"], "running", vm_row)
        if row["currently_attached"]:
            raise XapiFailure("DEVICE_ALREADY_ATTACHED", vbd)
        self.db.set("VBD", vbd, "device", self._vbd_device(row))
        self.db.set("VBD", vbd, "currently_attached", True)

    def vbd_unplug(self, ctx: Any, vbd: Any) -> None:
        row = self.db.get("VBD", vbd)
        vm_row = self.db.get("VM", row["VM"])
        if vm_row["power_state"] != "Running":
            raise bad_power(row["VM"], "running", vm_row)
        if not row["currently_attached"]:
            raise XapiFailure("DEVICE_ALREADY_DETACHED", vbd)
        if not row["unpluggable"]:
            raise XapiFailure("VBD_NOT_UNPLUGGABLE", vbd)
        self.db.set("VBD", vbd, "currently_attached", False)

    def vbd_destroy(self, ctx: Any, vbd: Any) -> None:
        row = self.db.get("VBD", vbd)
        if row["currently_attached"]:
            vm_uuid = self.db.get("VM", row["VM"])["uuid"] if self.db.exists("VM", row["VM"]) \
                else row["VM"]
            raise XapiFailure("OPERATION_NOT_ALLOWED", "VBD '%s' still attached to '%s'"
                              % (row["uuid"], vm_uuid))
        self.db.destroy("VBD", vbd)

    def vbd_insert(self, ctx: Any, vbd: Any, vdi: Any) -> None:
        row = self.db.get("VBD", vbd)
        self.db.get("VDI", vdi)
        if row["type"] != "CD":
            raise XapiFailure("VBD_NOT_REMOVABLE_MEDIA", vbd)
        if not row["empty"]:
            raise XapiFailure("VBD_NOT_EMPTY", vbd)
        if self.db.get("VM", row["VM"])["power_state"] == "Suspended":
            raise bad_power(row["VM"], "halted, running", self.db.get("VM", row["VM"]))
        self.db.set("VBD", vbd, "VDI", vdi)
        self.db.set("VBD", vbd, "empty", False)

    def vbd_eject(self, ctx: Any, vbd: Any) -> None:
        row = self.db.get("VBD", vbd)
        if row["type"] != "CD":
            raise XapiFailure("VBD_NOT_REMOVABLE_MEDIA", vbd)
        if row["empty"]:
            raise XapiFailure("VBD_IS_EMPTY", vbd)
        if self.db.get("VM", row["VM"])["power_state"] == "Suspended":
            raise bad_power(row["VM"], "halted, running", self.db.get("VM", row["VM"]))
        self.db.set("VBD", vbd, "VDI", dm.NULL_REF)
        self.db.set("VBD", vbd, "empty", True)
