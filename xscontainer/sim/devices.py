"""Constructors, destructors and lifecycle calls with xapi's semantics (contract §10-§12).

VM power operations, VBD/VDI/VIF rules and error parameters follow xapi_vm, xapi_vbd,
xapi_vdi and xapi_vif_helpers; back-references (VM.VBDs, SR.VDIs, ...) follow from the
database's relations, so parents see ``mod`` events when children come and go.
"""

import os
import random
import re
import uuid as uuidlib
from typing import Any, Dict, List, Optional

from xscontainer.sim import datamodel as dm
from xscontainer.sim.failures import XapiFailure

_VBD_VDI_TYPES = ("system", "user", "ephemeral", "suspend", "crashdump", "metadata", "rrd",
                  "pvs_cache")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_MAX_DEVICE = 254


class _Ctor:
    """Reads a constructor struct: required fields raise as xapi's dispatcher does."""

    def __init__(self, cls: str, args: Any) -> None:
        if not isinstance(args, dict):
            raise XapiFailure("FIELD_TYPE_ERROR", "args")
        self.cls = cls
        self.args = args

    def get(self, name: str, default: Any = None, required: bool = True) -> Any:
        if name not in self.args:
            if required:
                raise XapiFailure("INTERNAL_ERROR",
                                  'Server_helpers.Dispatcher_FieldNotFound("%s")' % name)
            return default
        return dm.decode(dm.field(self.cls, name).kind, self.args[name], name)


def _state(row: Dict[str, Any]) -> str:
    return row["power_state"].lower()


def _bad_power(vm: str, expected: str, row: Dict[str, Any]) -> XapiFailure:
    return XapiFailure("VM_BAD_POWER_STATE", vm, expected, _state(row))


def device_number(name: str) -> Optional[int]:
    if re.match(r"^[0-9]+$", name):
        return int(name)
    m = re.match(r"^(xvd|hd|sd)([a-z])$", name)
    if m:
        return ord(m.group(2)) - ord("a")
    return None


def device_name(number: int) -> str:
    return "xvd" + chr(ord("a") + number) if number < 26 else "xvd%d" % number


class Devices:
    def __init__(self, api: Any) -> None:
        self.api = api
        self.db = api.db

    # ---- VM -------------------------------------------------------------------------------
    def vm_create(self, ctx: Any, args: Any) -> str:
        # Deviation: xapi requires ~40 constructor fields; we require only name_label.
        ctor = _Ctor("VM", args)
        values = {"name_label": ctor.get("name_label")}
        for name, f in dm.CLASSES["VM"].items():
            if name in args and name not in ("uuid", "power_state", "resident_on",
                                             "VBDs", "VIFs", "guest_metrics"):
                values[name] = ctor.get(name)
        values.setdefault("actions_after_shutdown", "destroy")
        values.setdefault("actions_after_reboot", "restart")
        values.setdefault("actions_after_crash", "restart")
        values.setdefault("domid", -1)
        return self.db.create("VM", values)

    def vm_destroy(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] not in ("Halted",) and not row["is_a_template"]:
            raise _bad_power(vm, "halted", row)
        if row["is_control_domain"]:
            raise XapiFailure("OPERATION_NOT_ALLOWED", "cannot destroy a control domain")
        for vbd in list(row["VBDs"]):
            self.db.destroy("VBD", vbd)
        for vif in list(row["VIFs"]):
            self.db.destroy("VIF", vif)
        self._drop_guest_metrics(vm)
        self.db.destroy("VM", vm)

    def _host_or_default(self, vm_row: Dict[str, Any]) -> str:
        affinity = vm_row.get("affinity")
        if affinity and self.db.exists("host", affinity):
            return affinity
        return self.api.master()

    def vm_start(self, ctx: Any, vm: Any, start_paused: Any, force: Any,
                 host: Optional[str] = None) -> None:
        row = self.db.get("VM", vm)
        dm.decode(dm.Kind("bool"), start_paused, "start_paused")
        dm.decode(dm.Kind("bool"), force, "force")
        if row["is_a_template"]:
            raise XapiFailure("VM_IS_TEMPLATE", vm, "start")
        if row["power_state"] != "Halted":
            raise _bad_power(vm, "halted", row)
        target = host or self._host_or_default(row)
        self.db.set("VM", vm, "resident_on", target)
        self.db.set("VM", vm, "domid", self._next_domid())
        self.db.set("VM", vm, "power_state", "Paused" if start_paused else "Running")
        for vbd in row["VBDs"]:
            vrow = self.db.get("VBD", vbd)
            if not vrow["empty"] or vrow["type"] == "CD":
                self.db.set("VBD", vbd, "device", self._vbd_device(vrow))
                self.db.set("VBD", vbd, "currently_attached", True)
        for vif in row["VIFs"]:
            self.db.set("VIF", vif, "currently_attached", True)

    def vm_start_on(self, ctx: Any, vm: Any, host: Any, start_paused: Any, force: Any) -> None:
        self.db.get("host", host)
        self.vm_start(ctx, vm, start_paused, force, host=host)

    def _next_domid(self) -> int:
        used = [r["domid"] for r in self.db.tables["VM"].values()]
        return max([0] + [d for d in used if isinstance(d, int)]) + 1

    def _halt(self, vm: str) -> None:
        row = self.db.get("VM", vm)
        self.db.set("VM", vm, "power_state", "Halted")
        self.db.set("VM", vm, "resident_on", dm.NULL_REF)
        self.db.set("VM", vm, "domid", -1)
        self._drop_guest_metrics(vm)
        for vbd in row["VBDs"]:
            if self.db.get("VBD", vbd)["currently_attached"]:
                self.db.set("VBD", vbd, "currently_attached", False)
        for vif in row["VIFs"]:
            if self.db.get("VIF", vif)["currently_attached"]:
                self.db.set("VIF", vif, "currently_attached", False)

    def _drop_guest_metrics(self, vm: str) -> None:
        gm = self.db.get("VM", vm)["guest_metrics"]
        if gm != dm.NULL_REF:
            self.db.set("VM", vm, "guest_metrics", dm.NULL_REF)
            if self.db.exists("VM_guest_metrics", gm):
                self.db.destroy("VM_guest_metrics", gm)

    def vm_clean_shutdown(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] != "Running":
            raise _bad_power(vm, "running", row)
        self._halt(vm)

    def vm_hard_shutdown(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] not in ("Running", "Paused", "Suspended"):
            raise _bad_power(vm, "running, paused, suspended", row)
        self._halt(vm)

    def vm_pause(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] != "Running":
            raise _bad_power(vm, "running", row)
        self.db.set("VM", vm, "power_state", "Paused")

    def vm_unpause(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] != "Paused":
            raise _bad_power(vm, "paused", row)
        self.db.set("VM", vm, "power_state", "Running")

    def vm_pool_migrate(self, ctx: Any, vm: Any, host: Any, options: Any) -> None:
        row = self.db.get("VM", vm)
        self.db.get("host", host)
        dm.decode(dm.Kind("map", elem=dm.Kind("string")), options, "options")
        if row["power_state"] != "Running":
            raise _bad_power(vm, "running", row)
        self.db.set("VM", vm, "resident_on", host)

    # ---- VDI ------------------------------------------------------------------------------
    def vdi_create(self, ctx: Any, args: Any) -> str:
        ctor = _Ctor("VDI", args)
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
        ctor = _Ctor("VBD", args)
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
            raise _bad_power(row["VM"], "running", vm_row)
        if row["currently_attached"]:
            raise XapiFailure("DEVICE_ALREADY_ATTACHED", vbd)
        self.db.set("VBD", vbd, "device", self._vbd_device(row))
        self.db.set("VBD", vbd, "currently_attached", True)

    def vbd_unplug(self, ctx: Any, vbd: Any) -> None:
        row = self.db.get("VBD", vbd)
        vm_row = self.db.get("VM", row["VM"])
        if vm_row["power_state"] != "Running":
            raise _bad_power(row["VM"], "running", vm_row)
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
            raise _bad_power(row["VM"], "halted, running", self.db.get("VM", row["VM"]))
        self.db.set("VBD", vbd, "VDI", vdi)
        self.db.set("VBD", vbd, "empty", False)

    def vbd_eject(self, ctx: Any, vbd: Any) -> None:
        row = self.db.get("VBD", vbd)
        if row["type"] != "CD":
            raise XapiFailure("VBD_NOT_REMOVABLE_MEDIA", vbd)
        if row["empty"]:
            raise XapiFailure("VBD_IS_EMPTY", vbd)
        if self.db.get("VM", row["VM"])["power_state"] == "Suspended":
            raise _bad_power(row["VM"], "halted, running", self.db.get("VM", row["VM"]))
        self.db.set("VBD", vbd, "VDI", dm.NULL_REF)
        self.db.set("VBD", vbd, "empty", True)

    # ---- VIF ------------------------------------------------------------------------------
    def vif_create(self, ctx: Any, args: Any) -> str:
        ctor = _Ctor("VIF", args)
        vm = ctor.get("VM")
        vm_row = self.db.get("VM", vm)
        network = ctor.get("network")
        self.db.get("network", network)
        values = {
            "device": ctor.get("device"), "network": network, "VM": vm,
            "MAC": ctor.get("MAC"), "MTU": ctor.get("MTU"),
            "other_config": ctor.get("other_config"),
            "qos_algorithm_type": ctor.get("qos_algorithm_type"),
            "qos_algorithm_params": ctor.get("qos_algorithm_params"),
            "currently_attached": ctor.get("currently_attached", False, False),
            "locking_mode": ctor.get("locking_mode", "network_default", False),
            "ipv4_allowed": ctor.get("ipv4_allowed", [], False),
            "ipv6_allowed": ctor.get("ipv6_allowed", [], False),
        }
        device = values["device"]
        if not re.match(r"^[0-9]+$", device):
            raise XapiFailure("INVALID_DEVICE", device)
        if any(int(self.db.get("VIF", v)["device"]) == int(device) for v in vm_row["VIFs"]):
            raise XapiFailure("DEVICE_ALREADY_EXISTS", device)
        if values["MAC"] == "" and "mac_seed" in vm_row["other_config"]:
            values["MAC"] = "02:%s" % ":".join("%02x" % random.randint(0, 255)
                                               for _ in range(5))
            values["MAC_autogenerated"] = True
        if not _MAC.match(values["MAC"]):
            raise XapiFailure("MAC_INVALID", values["MAC"])
        return self.db.create("VIF", values)

    def vif_destroy(self, ctx: Any, vif: Any) -> None:
        row = self.db.get("VIF", vif)
        if row["currently_attached"] and self.db.exists("VM", row["VM"]) and \
                self.db.get("VM", row["VM"])["power_state"] == "Running":
            raise XapiFailure("OPERATION_NOT_ALLOWED", "VIF is currently attached")
        self.db.destroy("VIF", vif)

    # ---- secret ---------------------------------------------------------------------------
    def secret_create(self, ctx: Any, args: Any) -> str:
        ctor = _Ctor("secret", args)
        return self.db.create("secret", {"value": ctor.get("value"),
                                         "other_config": ctor.get("other_config", {}, False)})

    def secret_introduce(self, ctx: Any, uuid: Any, value: Any, other_config: Any) -> str:
        uuid = dm.decode(dm.Kind("string"), uuid, "uuid")
        if uuid in self.db.by_uuid["secret"]:
            raise XapiFailure("UUID_INVALID", "secret", uuid)  # xapi: a duplicate uuid
        return self.db.create("secret", {
            "uuid": uuid, "value": dm.decode(dm.Kind("string"), value, "value"),
            "other_config": dm.decode(dm.Kind("map", elem=dm.Kind("string")), other_config,
                                      "other_config")})

    # ---- message --------------------------------------------------------------------------
    _CLS_TABLES = {"VM": "VM", "Host": "host", "SR": "SR", "Pool": "pool", "VDI": "VDI"}

    def message_create(self, ctx: Any, name: Any, priority: Any, cls: Any, obj_uuid: Any,
                       body: Any) -> str:
        name = dm.decode(dm.Kind("string"), name, "name")
        priority = dm.decode(dm.Kind("int"), priority, "priority")
        cls = dm.decode(dm.Kind("enum", target="cls"), cls, "cls")
        obj_uuid = dm.decode(dm.Kind("string"), obj_uuid, "obj_uuid")
        body = dm.decode(dm.Kind("string"), body, "body")
        table = self._CLS_TABLES.get(cls)
        if table is None or obj_uuid not in self.db.by_uuid[table]:
            raise XapiFailure("UUID_INVALID", cls, obj_uuid)
        return self.db.create("message", {
            "name": name, "priority": priority, "cls": cls, "obj_uuid": obj_uuid,
            "body": body, "timestamp": dm.now_string(self.api.clock)})

    def message_get_since(self, ctx: Any, since: Any) -> Dict[str, Any]:
        since = dm.decode_datetime(since, "since")
        return {ref: self.api.record("message", ref)
                for ref, row in self.db.tables["message"].items() if row["timestamp"] > since}

    # ---- task -----------------------------------------------------------------------------
    def task_create(self, ctx: Any, label: Any, description: Any) -> str:
        ref = self.api.create_task(dm.decode(dm.Kind("string"), label, "label"))
        self.db.get("task", ref)["name_description"] = description if isinstance(
            description, str) else ""
        return ref

    # ---- sim (documented deviation: test control, not xapi) -------------------------------
    def sim_set_guest_networks(self, ctx: Any, vm: Any, networks: Any) -> str:
        self.db.get("VM", vm)
        networks = dm.decode(dm.Kind("map", elem=dm.Kind("string")), networks, "networks")
        gm = self.db.get("VM", vm)["guest_metrics"]
        now = dm.now_string(self.api.clock)
        if gm != dm.NULL_REF and self.db.exists("VM_guest_metrics", gm):
            row = self.db.get("VM_guest_metrics", gm)
            row["networks"] = networks
            row["last_updated"] = now
            self.db.touch("VM_guest_metrics", gm)
            return gm
        gm = self.db.create("VM_guest_metrics", {
            "networks": networks, "last_updated": now, "live": True,
            "os_version": {"name": "Simulated Linux"},
            "PV_drivers_version": {"major": "9", "minor": "0"}, "PV_drivers_up_to_date": True,
            "PV_drivers_detected": True})
        self.db.set("VM", vm, "guest_metrics", gm)
        return gm

    def sim_clear_guest_metrics(self, ctx: Any, vm: Any) -> None:
        self.db.get("VM", vm)
        self._drop_guest_metrics(vm)


def register(api: Any) -> None:
    d = Devices(api)
    api.devices = d
    add = api.add
    add("VM", "create", d.vm_create, 1, has_async=True)
    add("VM", "destroy", d.vm_destroy, 1, has_async=True)
    add("VM", "start", d.vm_start, 3, has_async=True)
    add("VM", "start_on", d.vm_start_on, 4, has_async=True)
    add("VM", "clean_shutdown", d.vm_clean_shutdown, 1, has_async=True)
    add("VM", "hard_shutdown", d.vm_hard_shutdown, 1, has_async=True)
    add("VM", "pause", d.vm_pause, 1, has_async=True)
    add("VM", "unpause", d.vm_unpause, 1, has_async=True)
    add("VM", "pool_migrate", d.vm_pool_migrate, 3, has_async=True)
    add("VDI", "create", d.vdi_create, 1, has_async=True)
    add("VDI", "destroy", d.vdi_destroy, 1, has_async=True)
    add("VBD", "create", d.vbd_create, 1, has_async=True)
    add("VBD", "destroy", d.vbd_destroy, 1, has_async=True)
    add("VBD", "plug", d.vbd_plug, 1, has_async=True)
    add("VBD", "unplug", d.vbd_unplug, 1, has_async=True)
    add("VBD", "insert", d.vbd_insert, 2, has_async=True)
    add("VBD", "eject", d.vbd_eject, 1, has_async=True)
    add("VIF", "create", d.vif_create, 1, has_async=True)
    add("VIF", "destroy", d.vif_destroy, 1, has_async=True)
    add("secret", "create", d.secret_create, 1, has_async=True)
    add("secret", "introduce", d.secret_introduce, 3, has_async=True)
    add("secret", "destroy", lambda ctx, ref: (api.db.get("secret", ref),
                                                api.db.destroy("secret", ref))[1], 1,
        has_async=True)
    add("message", "create", d.message_create, 5)
    add("message", "destroy", lambda ctx, ref: (api.db.get("message", ref),
                                                 api.db.destroy("message", ref))[1], 1)
    add("message", "get_since", d.message_get_since, 1)
    add("task", "create", d.task_create, 2)
    add("task", "destroy", lambda ctx, ref: (api.db.get("task", ref),
                                              api.db.destroy("task", ref))[1], 1)
    add("sim", "set_guest_networks", d.sim_set_guest_networks, 2)
    add("sim", "clear_guest_metrics", d.sim_clear_guest_metrics, 1)
