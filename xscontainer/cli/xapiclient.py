"""The command line's only way to xapi: VM, host, SR and VDI records, ``other_config`` values and
``host.call_plugin`` on the right host, with xapi failures translated into ``XSContainerError``."""

from typing import Dict, List, Optional

from xscontainer.cli.failures import from_xapi_failure
from xscontainer.cli.model import Named, VmInfo
from xscontainer.errors import XapiError, XSContainerError
from xscontainer.hostkeys import fingerprint, pin_state
from xscontainer.plugincall import PLUGIN_NAME, forwarding_error
from xscontainer.vmsettings import HOSTKEY_FINGERPRINT_KEY, HOSTKEY_KEY, HOSTKEY_VM_KEY, MODE_KEY
from xscontainer.xapi import Failure, NULL_REF, Session
from xscontainer.xapi.maps import remove_map_key, set_map_key


class PoolClient:
    """One logged-in session's view of the pool. Not thread-safe (one session, one connection)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._api = session.xenapi
        self._hosts = None  # type: Optional[Dict[str, Dict[str, str]]]

    @property
    def session(self) -> Session:
        return self._session

    def _xapi(self, doing: str, call, *args):
        try:
            return call(*args)
        except Failure as exc:
            raise from_xapi_failure(exc.details, doing) from exc
        except OSError as exc:
            raise XapiError("The connection to xapi broke while %s: %s" % (doing, exc),
                            code="XAPI_UNREACHABLE") from exc

    def session_ref(self) -> str:
        """Our session's ref: xapi hands it to the plugin inside the call, so it counts."""
        return self._session.handle

    def hosts(self) -> Dict[str, Dict[str, str]]:
        """host ref -> {"uuid", "name_label"}."""
        if self._hosts is None:
            records = self._xapi("listing the hosts", self._api.host.get_all_records)
            self._hosts = {ref: {"uuid": r["uuid"], "name_label": r["name_label"]} for ref, r in records.items()}
        return self._hosts

    def host_ref_by_uuid(self, uuid: str) -> Optional[str]:
        for ref, host in self.hosts().items():
            if host["uuid"] == uuid:
                return ref
        return None

    def master(self) -> str:
        pools = self._xapi("finding the pool", self._api.pool.get_all)
        if not pools:
            raise XapiError("xapi reports no pool.", code="XAPI_ERROR")
        return self._xapi("finding the pool coordinator", self._api.pool.get_master, pools[0])

    def _vm_info(self, ref: str, record: Dict) -> VmInfo:
        host_ref = record.get("resident_on")
        host = self.hosts().get(host_ref) if host_ref and host_ref != NULL_REF else None
        return VmInfo(ref, record["uuid"], record["name_label"], record["power_state"],
                      host_ref if host else None, host["uuid"] if host else None,
                      host["name_label"] if host else None, dict(record.get("other_config") or {}))

    def vms(self, templates: bool = False) -> List[VmInfo]:
        """Every guest (templates=False) or every template, sorted by name label then uuid."""
        records = self._xapi("listing the VMs", self._api.VM.get_all_records)
        result = []
        for ref, record in records.items():
            if record.get("is_control_domain") or record.get("is_a_snapshot"):
                continue
            if bool(record.get("is_a_template")) != templates:
                continue
            result.append(self._vm_info(ref, record))
        return sorted(result, key=lambda vm: (vm.name_label, vm.uuid))

    def vm(self, ref: str) -> VmInfo:
        """A fresh record of one VM."""
        return self._vm_info(ref, self._xapi("reading a VM", self._api.VM.get_record, ref))

    def other_config_value(self, vm_ref: str, key: str) -> Optional[str]:
        return self._xapi("reading a VM's other-config", self._api.VM.get_other_config, vm_ref).get(key)

    def expect_host_key(self, vm: VmInfo, host_key_fingerprint: str) -> bool:
        """Record, as the administrator's verified word, that the VM's SSH host key has this
        fingerprint (bound to the VM, see ``xscontainer.hostkeys``); a pinned key with another
        fingerprint is removed. True when the pinned key already is that one."""
        api = self._api.VM
        config = self._xapi("reading a VM's other-config", api.get_other_config, vm.ref)
        state = pin_state(vm.uuid, config)
        if state.pinned is not None and fingerprint(state.pinned) == host_key_fingerprint:
            if not state.bound:
                self._xapi("pinning a VM's host key", set_map_key, api, vm.ref, HOSTKEY_VM_KEY, vm.uuid)
            return True
        self._xapi("recording a VM's host key", set_map_key, api, vm.ref, HOSTKEY_FINGERPRINT_KEY,
                   host_key_fingerprint)
        self._xapi("recording a VM's host key", set_map_key, api, vm.ref, HOSTKEY_VM_KEY, vm.uuid)
        if HOSTKEY_KEY in config:
            self._xapi("removing a VM's old host key", remove_map_key, api, vm.ref, HOSTKEY_KEY)
        return False

    def host_key_vouched(self, vm: VmInfo) -> bool:
        """Will the VM's engine be connected to: TLS mode, or an SSH host key that vouches for it."""
        config = self._xapi("reading a VM's other-config", self._api.VM.get_other_config, vm.ref)
        if (config.get(MODE_KEY) or "ssh").strip().lower() == "tls":
            return True
        state = pin_state(vm.uuid, config)
        return state.pinned is not None or state.expected is not None

    def srs(self) -> List[Named]:
        records = self._xapi("listing the SRs", self._api.SR.get_all_records)
        return sorted((Named(ref, r["uuid"], r["name_label"]) for ref, r in records.items()),
                      key=lambda n: (n.name_label, n.uuid))

    def vdis(self) -> List[Named]:
        records = self._xapi("listing the VDIs", self._api.VDI.get_all_records)
        return sorted((Named(ref, r["uuid"], r["name_label"]) for ref, r in records.items()
                       if not r.get("is_a_snapshot")), key=lambda n: (n.name_label, n.uuid))

    def data_source_values(self, vm_ref: str, wanted) -> Dict[str, float]:
        """name -> value of the VM's enabled data sources whose name ``wanted(name)`` accepts
        (xcp-rrdd's latest reading; NaN when unknown)."""
        listed = self._xapi("listing the VM's data sources", self._api.VM.get_data_sources, vm_ref)
        return {d["name_label"]: float(self._xapi("reading a data source", self._api.VM.query_data_source,
                                                  vm_ref, d["name_label"]))
                for d in listed if d.get("enabled") and wanted(d["name_label"])}

    def plugin_host(self, vm: Optional[VmInfo]) -> str:
        """Where to call the plugin for ``vm``: its resident host, else the pool coordinator (the
        plugin forwards to the right host either way)."""
        if vm is not None and vm.host_ref:
            return vm.host_ref
        return self.master()

    def _describe_host(self, host_ref: str) -> str:
        host = self.hosts().get(host_ref)
        return "%s (%s)" % (host["name_label"], host["uuid"]) if host else host_ref

    def call_plugin(self, host_ref: str, fn: str, args: Dict[str, str]) -> str:
        """The plugin's output after its ``True`` prefix. xapi's failures to run it on that host
        (offline, unreachable, xscontainer not installed) are worded as the plugin words them."""
        try:
            result = self._xapi("running the plugin function %s" % fn,
                                self._api.host.call_plugin, host_ref, PLUGIN_NAME, fn, args)
        except XSContainerError as exc:
            details = exc.details.get("xapi_error") or []
            error = forwarding_error(details, self._describe_host(host_ref))
            if error is None:
                raise
            raise error from exc
        if not result.startswith("True"):
            raise XapiError("The plugin function %s did not succeed: %s" % (fn, result[:300]),
                            code="PLUGIN_REFUSED")
        return result[len("True"):]
