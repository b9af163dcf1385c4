"""Constructors, destructors and lifecycle calls with xapi's semantics (contract §10-§12).

VM power operations, VBD/VDI/VIF rules and error parameters follow xapi_vm, xapi_vbd,
xapi_vdi and xapi_vif_helpers; back-references (VM.VBDs, SR.VDIs, ...) follow from the
database's relations, so parents see ``mod`` events when children come and go.
"""

from typing import Any, Dict, Optional

from xscontainer.sim import datamodel as dm
from xscontainer.sim.calls import Ctor, bad_power, power_state
from xscontainer.sim.failures import XapiFailure
from xscontainer.sim.records import RecordCalls
from xscontainer.sim.storage import StorageCalls


class Devices(StorageCalls, RecordCalls):
    def __init__(self, api: Any) -> None:
        self.api = api
        self.db = api.db

    # ---- VM -------------------------------------------------------------------------------
    def vm_create(self, ctx: Any, args: Any) -> str:
        # Deviation: xapi requires ~40 constructor fields; we require only name_label.
        ctor = Ctor("VM", args)
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
            raise bad_power(vm, "halted", row)
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
            raise bad_power(vm, "halted", row)
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
            raise bad_power(vm, "running", row)
        self._halt(vm)

    def vm_hard_shutdown(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] not in ("Running", "Paused", "Suspended"):
            raise bad_power(vm, "running, paused, suspended", row)
        self._halt(vm)

    def vm_pause(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] != "Running":
            raise bad_power(vm, "running", row)
        self.db.set("VM", vm, "power_state", "Paused")

    def vm_unpause(self, ctx: Any, vm: Any) -> None:
        row = self.db.get("VM", vm)
        if row["power_state"] != "Paused":
            raise bad_power(vm, "paused", row)
        self.db.set("VM", vm, "power_state", "Running")

    def vm_pool_migrate(self, ctx: Any, vm: Any, host: Any, options: Any) -> None:
        row = self.db.get("VM", vm)
        self.db.get("host", host)
        dm.decode(dm.Kind("map", elem=dm.Kind("string")), options, "options")
        if row["power_state"] != "Running":
            raise bad_power(vm, "running", row)
        self.db.set("VM", vm, "resident_on", host)


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
