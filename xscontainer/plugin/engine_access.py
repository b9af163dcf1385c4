"""The plugin's way to a VM's engine: through the monitor's warm connection when it runs, else a
direct connection for this one call. Results are rendered in the consumers' formats here."""

from typing import Any, Dict, Optional

from xscontainer.transport.control import MonitorNotRunning, control_call, control_socket_path
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.session import lend


class EngineAccess:
    """``host_uuid``: the host this plugin runs on (its monitor's control socket is named after it)."""

    def __init__(self, session: Session, host_uuid: str, control_dir: Optional[str] = None) -> None:
        self._session = session
        self._host_uuid = host_uuid
        self._control_dir = control_dir

    def _path(self) -> str:
        host = self._host_uuid
        return control_socket_path(host, self._control_dir) if self._control_dir else control_socket_path(host)

    def call(self, vm_uuid: str, op: str, **params: Any) -> Any:
        request = dict(params, vm=vm_uuid)
        try:
            return control_call(self._path(), op, request)
        except MonitorNotRunning:
            return self._direct(vm_uuid, op, request)

    def _direct(self, vm_uuid: str, op: str, params: Dict[str, Any]) -> Any:
        from xscontainer.engine.client import LIFECYCLE
        from xscontainer.engine.connect import EngineConnections
        from xscontainer.engine.operations import run_operation
        from xscontainer.poolkeys import PoolKeyCache
        sessions = lend(self._session)
        with EngineConnections(sessions, PoolKeyCache(sessions)) as engines:
            if op == "refresh":
                self._write_state(engines, vm_uuid, None)
                return None
            result = run_operation(engines.client(vm_uuid), op, params)
            if op in LIFECYCLE:
                self._write_state(engines, vm_uuid, frozenset(["docker_ps"]))
            return result

    def _write_state(self, engines, vm_uuid: str, kinds) -> None:
        from xscontainer.consumerxml.state import ALL_KINDS, StartTimes, render_state
        from xscontainer.monitorpolicy import monitor_enabled
        from xscontainer.xapi.maps import set_map_key
        vm_ref = self._session.xenapi.VM.get_by_uuid(vm_uuid)
        if not monitor_enabled(self._session.xenapi.VM.get_other_config(vm_ref)):
            return  # nothing would ever remove docker_* from a VM that is not monitored
        values = render_state(engines.client(vm_uuid), kinds or ALL_KINDS, StartTimes())
        for key, value in values.items():
            set_map_key(self._session.xenapi.VM, vm_ref, key, value)

    # -- what the plugin functions ask for --------------------------------------------------------
    def lifecycle(self, vm_uuid: str, operation: str, container: str) -> str:
        return self.call(vm_uuid, operation, container=container) or ""

    def top_xml(self, vm_uuid: str, container: str) -> str:
        from xscontainer.consumerxml import render_docker_top
        return render_docker_top(self.call(vm_uuid, "top", container=container))

    def inspect_xml(self, vm_uuid: str, container: str) -> str:
        from xscontainer.consumerxml import render_docker_inspect
        return render_docker_inspect(self.call(vm_uuid, "inspect", container=container))

    def logs(self, vm_uuid: str, container: str, tail: int) -> str:
        return self.call(vm_uuid, "logs", container=container, tail=tail)

    def stats_xml(self, vm_uuid: str, container: Optional[str]) -> str:
        from xscontainer.consumerxml import render_document
        return render_document("docker_stats", self.call(vm_uuid, "stats", container=container))

    def ps_xml(self, vm_uuid: str) -> str:
        """Every container as a ``docker_ps`` document, whatever its size (not written to xapi)."""
        from xscontainer.consumerxml import render_docker_ps
        return render_docker_ps(self.call(vm_uuid, "ps"))

    def refresh(self, vm_uuid: str) -> None:
        self.call(vm_uuid, "refresh")

    def status_xml(self, vm_uuid: str, extra: Optional[Dict[str, Any]] = None) -> str:
        from xscontainer.consumerxml import render_document
        try:
            status = control_call(self._path(), "status", {"vm": vm_uuid})
            monitor_running = True
        except MonitorNotRunning:
            status, monitor_running = None, False
        if status is None:
            status = self._unwatched_status(vm_uuid, monitor_running)
        return render_document("xscontainer_status", dict(status, **(extra or {})))

    def _unwatched_status(self, vm_uuid: str, monitor_running: bool) -> Dict[str, Any]:
        from xscontainer.engine.diagnose import diagnose
        from xscontainer.monitorpolicy import why_not_monitored
        api = self._session.xenapi
        vm = api.VM.get_record(api.VM.get_by_uuid(vm_uuid))
        metrics = None
        if vm["guest_metrics"] != "OpaqueRef:NULL":
            try:
                metrics = api.VM_guest_metrics.get_record(vm["guest_metrics"])
            except Failure:
                metrics = None
        host = api.host.get_by_uuid(self._host_uuid)
        reason = why_not_monitored(vm, host, metrics)
        result = diagnose(lend(self._session), vm_uuid)
        if reason:
            state = "not monitored"
        elif monitor_running:
            state, reason = "starting", "the monitor has not picked this VM up yet"
        else:
            state, reason = "monitor not running", "the xscontainer-monitor service does not run on this host"
        return {"vm": vm_uuid, "host": self._host_uuid, "state": state, "reason": reason,
                "since": None, "last_error": None if result.ok else result.message,
                "last_error_code": None if result.ok else result.code,
                "diagnosis": "%s (%s)" % (result.message, result.code)}

    def api_get(self, vm_uuid: str, path: str) -> str:
        import json
        return json.dumps(self.call(vm_uuid, "api_get", path=path), sort_keys=True)
