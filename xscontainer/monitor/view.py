"""The monitor's picture of xapi, kept current from ``event.from`` batches (pure: no I/O).

It answers one question: which VMs must this host watch, and how to reach each of them.
"""

from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from xscontainer.engine.connect import VmRecords
from xscontainer.monitorpolicy import should_monitor
from xscontainer.vmsettings import (DEFAULT_USERNAME, MODE_KEY, TLS_CA_CERT_KEY, TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY,
                                    USERNAME_KEY, choose_addresses)
from xscontainer.xapi import NULL_REF

CLASSES = ["vm", "vm_guest_metrics", "pool"]
TLS_SECRET_KEYS = (TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY, TLS_CA_CERT_KEY)


class Target(NamedTuple):
    """What a watcher needs; a change of any field means the watcher must reconnect."""

    vm_ref: str
    vm_uuid: str
    addresses: Tuple[str, ...]
    username: str
    mode: str


class _Decision(NamedTuple):
    """Whether (and how) a VM is watched, and the records it was decided from: it holds as long
    as both are the same objects (records are replaced, never changed in place)."""

    vm: Dict
    metrics_ref: str
    metrics: Optional[Dict]
    target: Optional[Target]


class Changes(NamedTuple):
    pool_changed: bool
    deleted_vms: List[Dict]  # the last records of VMs that were destroyed
    changed_vms: List[str]  # refs of VMs added or modified


class XapiView:
    def __init__(self) -> None:
        self.vms = {}  # type: Dict[str, Dict]
        self.metrics = {}  # type: Dict[str, Dict]
        self._refs = {}  # type: Dict[str, str]  # VM uuid -> ref
        # VM ref -> its last decision for ``_decided_for``: each batch (every write of the
        # monitor's comes back as one) decides again only the VMs whose records it replaced, not
        # all thousand (55 % of the monitor's interpreter time in a 300-VM start-up).
        self._decided = {}  # type: Dict[str, _Decision]
        self._decided_for = None  # type: Optional[str]

    def reset(self) -> None:
        self.vms.clear()
        self.metrics.clear()
        self._refs.clear()
        self._decided = {}

    def vm_records(self, vm_uuid: str) -> Optional[VmRecords]:
        """The VM's ref, other_config and guest networks as the last events showed them (None
        when unknown). Safe from any thread: records are replaced, never changed in place."""
        ref = self._refs.get(vm_uuid)
        vm = self.vms.get(ref) if ref is not None else None
        if vm is None:
            return None
        metrics = self.metrics_of(vm) or {}
        return VmRecords(ref, dict(vm.get("other_config", {})), dict(metrics.get("networks", {})))

    def apply(self, events: Iterable[Dict]) -> Changes:
        pool_changed = False
        deleted = []  # type: List[Dict]
        changed = []  # type: List[str]
        for event in events:
            cls, ref, op = event.get("class"), event.get("ref"), event.get("operation")
            table = {"vm": self.vms, "vm_guest_metrics": self.metrics}.get(cls)
            if cls == "pool":
                pool_changed = True
            if table is None:
                continue
            if op == "del":
                record = table.pop(ref, None)
                if cls == "vm" and record is not None:
                    deleted.append(record)
                    if self._refs.get(record.get("uuid")) == ref:
                        del self._refs[record["uuid"]]
            elif "snapshot" in event:
                table[ref] = event["snapshot"]
                if cls == "vm":
                    changed.append(ref)
                    if isinstance(event["snapshot"], dict) and event["snapshot"].get("uuid"):
                        self._refs[event["snapshot"]["uuid"]] = ref
        return Changes(pool_changed, deleted, changed)

    def metrics_of(self, vm: Dict) -> Optional[Dict]:
        ref = vm.get("guest_metrics", NULL_REF)
        return None if ref == NULL_REF else self.metrics.get(ref)

    def targets(self, host_ref: str) -> Dict[str, Target]:
        if host_ref != self._decided_for:
            self._decided = {}
        result = {}
        decided = {}
        for ref, vm in self.vms.items():
            known = self._decided.get(ref)
            same_vm = known is not None and known.vm is vm
            metrics_ref = known.metrics_ref if same_vm else vm.get("guest_metrics", NULL_REF)
            metrics = None if metrics_ref == NULL_REF else self.metrics.get(metrics_ref)
            if same_vm and known.metrics is metrics:
                target = known.target
            else:
                target = _target(ref, vm, metrics, host_ref)
            decided[ref] = _Decision(vm, metrics_ref, metrics, target)
            if target is not None:
                result[target.vm_uuid] = target
        self._decided, self._decided_for = decided, host_ref
        return result

    def unwatched_with_keys(self, host_ref: str, refs: Iterable[str], keys: Tuple[str, ...]) -> Dict[str, List[str]]:
        """Of ``refs``, the VMs resident on ``host_ref`` that its last ``targets`` did not choose,
        each with those of ``keys`` its other_config holds: nobody keeps them current (a monitor
        that stopped before the VM was deregistered, a late write after a migration)."""
        result = {}
        for ref in refs:
            vm = self.vms.get(ref)
            decision = self._decided.get(ref) if host_ref == self._decided_for else None
            if vm is None or decision is None or decision.target is not None \
                    or vm.get("resident_on") != host_ref:
                continue
            config = vm.get("other_config") or {}
            present = [key for key in keys if key in config]
            if present:
                result[ref] = present
        return result

    def tls_secrets_in_use(self) -> set:
        used = set()
        for vm in self.vms.values():
            config = vm.get("other_config", {})
            used.update(config[key] for key in TLS_SECRET_KEYS if config.get(key))
        return used


def _target(ref: str, vm: Dict, metrics: Optional[Dict], host_ref: str) -> Optional[Target]:
    """The VM's Target when this host must watch it, else None."""
    if not should_monitor(vm, host_ref, metrics):
        return None
    config = vm.get("other_config", {})
    addresses = tuple(choose_addresses((metrics or {}).get("networks", {})))
    return Target(ref, vm["uuid"], addresses, config.get(USERNAME_KEY) or DEFAULT_USERNAME,
                  (config.get(MODE_KEY) or "ssh").lower())


def orphaned_tls_secrets(deleted_vms: Iterable[Dict], in_use: set) -> List[str]:
    """Secret uuids that a destroyed VM referenced and no remaining VM does."""
    orphans = []
    for vm in deleted_vms:
        config = vm.get("other_config", {})
        for key in TLS_SECRET_KEYS:
            uuid = config.get(key)
            if uuid and uuid not in in_use and uuid not in orphans:
                orphans.append(uuid)
    return orphans
