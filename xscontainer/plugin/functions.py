"""The plugin's functions: names, arguments and results of the original, plus the new ones.

Each entry says which arguments it takes and where it must run; ``run_function`` checks the
arguments, forwards to the owning host when needed and calls the implementation with the
session, the arguments and ``Here`` (this host, as the plugin's dom0 tree says). Results keep the
original's ``True`` prefix; failures are ``XSContainerError`` with a stable code, which the entry
script turns into ``[XENAPI_PLUGIN_FAILURE, fn, CODE, message]``.
"""

import os
from typing import Callable, Dict, NamedTuple, Optional, Sequence

from xscontainer.errors import InvalidArgument, NotFound, XSContainerError
from xscontainer.plugin import routing, validate
from xscontainer.vmsettings import MONITOR_KEY
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.maps import set_map_key

DEVMODE_FLAG = "/opt/xensource/packages/files/xscontainer/devmode_enabled"
DEVMODE_REFUSAL = "ERROR: This call is only enabled when in dev mode."

# Where a call must run: on the VM's host, on a host that sees an SR or a VDI's SR, or here.
ROUTE_VM, ROUTE_SR, ROUTE_VDI, ROUTE_LOCAL = "vm", "sr", "vdi", "local"


class Here(NamedTuple):
    """The host the plugin runs on and its xapi socket (``xscontainer.xapi.dom0``)."""
    host_uuid: str
    xapi_socket: str


class Spec(NamedTuple):
    required: Sequence[str]
    optional: Sequence[str]
    route: str
    impl: Callable
    devmode: bool = False
    running: bool = False  # needs the VM's engine, so the VM must be running


def _vm(session, args) -> str:
    return routing.vm_ref_by_uuid(session, validate.uuid_arg(args, "vmuuid"))


def _check_guest(session, vm_ref: str, vm_uuid: str) -> None:
    """Only a guest can run containers: not dom0, a snapshot or a template. A halted guest is
    fine: registering it before it starts is what an administrator preparing a VM does."""
    api = session.xenapi
    for field, what in (("is_control_domain", "the control domain (dom0) of a host"),
                        ("is_a_snapshot", "a snapshot"), ("is_a_template", "a template")):
        if getattr(api.VM, "get_" + field)(vm_ref):
            raise InvalidArgument("VM %s is %s, not a guest VM; xscontainer monitors guest VMs "
                                  "only." % (vm_uuid, what), code="VM_NOT_SUITABLE")


def register(session, args, here: Here) -> str:
    vm_ref = _vm(session, args)
    _check_guest(session, vm_ref, validate.uuid_arg(args, "vmuuid"))
    set_map_key(session.xenapi.VM, vm_ref, MONITOR_KEY, "True")
    return "TrueNone"


def deregister(session, args, here: Here) -> str:
    set_map_key(session.xenapi.VM, _vm(session, args), MONITOR_KEY, "False")
    return "TrueNone"


def _engine(session, here: Here):
    # Imported here: most calls of a short-lived plugin process never need the engine layer.
    from xscontainer.plugin.engine_access import EngineAccess
    return EngineAccess(session, here.host_uuid)


def _lifecycle(operation: str) -> Callable:
    def run(session, args, here: Here) -> str:
        container = validate.container_arg(args, "container")
        vm_uuid = validate.uuid_arg(args, "vmuuid")
        _vm(session, args)
        return "True" + _engine(session, here).lifecycle(vm_uuid, operation, container)
    run.__name__ = operation
    return run


def get_top(session, args, here: Here) -> str:
    container = validate.container_arg(args, "object")
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    _vm(session, args)
    return "True" + _engine(session, here).top_xml(vm_uuid, container)


def get_inspect(session, args, here: Here) -> str:
    container = validate.container_arg(args, "object")
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    _vm(session, args)
    return "True" + _engine(session, here).inspect_xml(vm_uuid, container)


def get_logs(session, args, here: Here) -> str:
    container = validate.container_arg(args, "container")
    tail = validate.int_arg(args, "tail", 100, 1, validate.MAX_LOG_TAIL)
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    _vm(session, args)
    return "True" + _engine(session, here).logs(vm_uuid, container, tail)


def get_stats(session, args, here: Here) -> str:
    container = validate.container_arg(args, "container") if args.get("container") else None
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    _vm(session, args)
    return "True" + _engine(session, here).stats_xml(vm_uuid, container)


def refresh(session, args, here: Here) -> str:
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    _vm(session, args)
    _engine(session, here).refresh(vm_uuid)
    return "True"


def get_status(session, args, here: Here) -> str:
    from xscontainer import __version__
    from xscontainer.plugin import versions
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    _vm(session, args)
    note = versions.pool_note(__version__, versions.probe_hosts(session, here.host_uuid))
    return "True" + _engine(session, here).status_xml(vm_uuid, {"pool_note": note})


def passthrough(session, args, here: Here) -> str:
    """Dev mode only: a read-only Docker Engine API GET, e.g. command=/containers/json.

    The original ran ``command`` through a shell in the VM; we never hand a caller's string to a
    shell, so the dev-mode passthrough is limited to engine API paths.
    """
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    path = validate.api_path_arg(args, "command")
    _vm(session, args)
    return "True" + _engine(session, here).api_get(vm_uuid, path)


def install_vm(session, args, here: Here) -> str:
    raise InvalidArgument("install_vm (download and import of a VM image from a URL) is not "
                          "supported by this version; import the VM with xe vm-import.",
                          code="UNSUPPORTED")


def get_ps(session, args, here: Here) -> str:
    """Every container of the VM, from its engine: ``docker_ps`` may have been abridged to fit
    xapi's request limit (``xscontainer ps`` then asks here)."""
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    _vm(session, args)
    return "True" + _engine(session, here).ps_xml(vm_uuid)


def get_version(session, args, here: Here) -> str:
    """This host's xscontainer version, so that a half-upgraded pool can be told (the original
    product has no such function: it answers UNKNOWN_XENAPI_PLUGIN_FUNCTION)."""
    from xscontainer import __version__
    return "True" + __version__


def get_config_drive_default(session, args, here: Here) -> str:
    from xscontainer.configdrive import operations
    template_uuid = validate.uuid_arg(args, "templateuuid")
    try:
        session.xenapi.VM.get_by_uuid(template_uuid)
    except Failure as exc:
        raise NotFound("No template or VM has uuid %s." % template_uuid, code="TEMPLATE_NOT_FOUND") from exc
    return "True" + operations.get_config_drive_default(session, template_uuid)


def create_config_drive(session, args, here: Here) -> str:
    from xscontainer.configdrive import operations
    return "True" + operations.create_config_drive(
        session, validate.uuid_arg(args, "vmuuid"), validate.uuid_arg(args, "sruuid"), args["configuration"],
        socket_path=here.xapi_socket)


def get_config_drive_configuration(session, args, here: Here) -> str:
    from xscontainer.configdrive import operations
    return "True" + operations.get_config_drive_configuration(session, validate.uuid_arg(args, "vdiuuid"),
                                                              socket_path=here.xapi_socket)


VM_CONTAINER = ("vmuuid", "container")
FUNCTIONS = {
    "register": Spec(("vmuuid",), (), ROUTE_LOCAL, register),
    "deregister": Spec(("vmuuid",), (), ROUTE_LOCAL, deregister),
    "start": Spec(VM_CONTAINER, (), ROUTE_VM, _lifecycle("start"), running=True),
    "stop": Spec(VM_CONTAINER, (), ROUTE_VM, _lifecycle("stop"), running=True),
    "restart": Spec(VM_CONTAINER, (), ROUTE_VM, _lifecycle("restart"), running=True),
    "pause": Spec(VM_CONTAINER, (), ROUTE_VM, _lifecycle("pause"), running=True),
    "unpause": Spec(VM_CONTAINER, (), ROUTE_VM, _lifecycle("unpause"), running=True),
    "get_top": Spec(("vmuuid", "object"), (), ROUTE_VM, get_top, running=True),
    "get_inspect": Spec(("vmuuid", "object"), (), ROUTE_VM, get_inspect, running=True),
    "get_logs": Spec(VM_CONTAINER, ("tail",), ROUTE_VM, get_logs, running=True),
    "get_stats": Spec(("vmuuid",), ("container",), ROUTE_VM, get_stats, running=True),
    "refresh": Spec(("vmuuid",), (), ROUTE_VM, refresh, running=True),
    "get_status": Spec(("vmuuid",), (), ROUTE_VM, get_status),
    "get_ps": Spec(("vmuuid",), (), ROUTE_VM, get_ps, running=True),
    "get_version": Spec((), (), ROUTE_LOCAL, get_version),
    "get_config_drive_default": Spec(("templateuuid",), (), ROUTE_LOCAL, get_config_drive_default),
    "create_config_drive": Spec(("vmuuid", "sruuid", "configuration"), (), ROUTE_SR, create_config_drive),
    "get_config_drive_configuration": Spec(("vdiuuid",), (), ROUTE_VDI, get_config_drive_configuration),
    "passthrough": Spec(("vmuuid", "command"), (), ROUTE_VM, passthrough, devmode=True,
                        running=True),
    "install_vm": Spec(("url", "sruuid"), (), ROUTE_LOCAL, install_vm, devmode=True),
}


def devmode_enabled(flag_path: str = DEVMODE_FLAG) -> bool:
    return os.path.exists(flag_path)


def _vm_target(session, spec: Spec, args: Dict[str, str], here: str) -> Optional[routing.Target]:
    vm_uuid = validate.uuid_arg(args, "vmuuid")
    vm_ref = _vm(session, args)
    if spec.running:
        state = session.xenapi.VM.get_power_state(vm_ref)
        if state != "Running":
            raise XSContainerError(
                "VM %s is not running (%s): start it, then try again."
                % (routing.describe_vm(session, vm_ref, vm_uuid), state), code="VM_NOT_RUNNING")
    host = routing.host_of_vm(session, vm_ref)
    if host in (None, here):
        return None
    return routing.Target(host, "that runs VM %s" % routing.describe_vm(session, vm_ref, vm_uuid))


def _sr_target(session, sr_ref: str, sr_uuid: str, here: str) -> Optional[routing.Target]:
    host = routing.host_seeing_sr(session, sr_ref, here)
    return None if host is None else routing.Target(host, "that has SR %s attached" % sr_uuid)


def _target(session, spec: Spec, args: Dict[str, str], here: str) -> Optional[routing.Target]:
    """The host that must run the call, or None to run it here."""
    if spec.route == ROUTE_VM:
        target = _vm_target(session, spec, args, here)
    elif spec.route == ROUTE_SR:
        sr_uuid = validate.uuid_arg(args, "sruuid")
        target = _sr_target(session, routing.sr_ref_by_uuid(session, sr_uuid), sr_uuid, here)
        if target is None:
            raise NotFound("No host has SR %s attached." % args["sruuid"], code="SR_NOT_ATTACHED")
    elif spec.route == ROUTE_VDI:
        sr = routing.vdi_sr_ref(session, validate.uuid_arg(args, "vdiuuid"))
        target = _sr_target(session, sr, session.xenapi.SR.get_uuid(sr), here)
    else:
        target = None
    return None if target is None or target.host == here else target


def _wrong_host(session, target: routing.Target, here: str) -> XSContainerError:
    return XSContainerError(
        "This call reached host %s as a forwarded call, but it must run on host %s %s; call "
        "again (a VM may just have migrated)." % (routing.describe_host(session, here),
                                                  routing.describe_host(session, target.host),
                                                  target.why),
        code="WRONG_HOST")


def run_function(session: Session, fn: str, args: Dict[str, str], here: Here) -> str:
    spec = FUNCTIONS[fn]
    if spec.devmode and not devmode_enabled():
        return DEVMODE_REFUSAL
    forwarded = routing.was_forwarded(args)
    args = routing.strip_routing_keys(args)
    validate.check_sizes(args)
    validate.require(args, spec.required)
    extra = validate.unexpected_keys(args, tuple(spec.required) + tuple(spec.optional))
    if extra:
        raise InvalidArgument("Unexpected argument(s) for %s: %s." % (fn, extra))
    # Where to run is decided here even for a forwarded call: the key only forbids a second hop.
    here_ref = routing.this_host_ref(session, here.host_uuid)
    target = _target(session, spec, args, here_ref)
    if target is not None:
        if forwarded:
            raise _wrong_host(session, target, here_ref)
        return routing.forward(session, target, fn, args)
    return spec.impl(session, args, here)
