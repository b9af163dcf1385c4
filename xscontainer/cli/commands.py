"""The verbs: look things up through ``PoolClient``, call the plugin, hand the results to the pure
views, write them out. Each verb returns its exit code; failures are raised as XSContainerError."""

import datetime
import json
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, TextIO

from xscontainer.cli import layout, recorded, views, watch
from xscontainer.cli.failures import exit_code
from xscontainer.cli.model import VmInfo
from xscontainer.cli.resolve import Candidate, resolve
from xscontainer.cli.xapiclient import PoolClient
from xscontainer.cli.xmlread import (ContainerRow, decode_document, docker_ps_is_abridged, parse_docker_ps,
                                     parse_docker_top)
from xscontainer.engine.client import LIFECYCLE
from xscontainer.errors import InvalidArgument, NotFound, XSContainerError
from xscontainer.exitcodes import EXIT_OK
from xscontainer.plugin import validate

DOCKER_PS_KEY = "docker_ps"
PAST = {"start": "started", "stop": "stopped", "restart": "restarted", "pause": "paused",
        "unpause": "unpaused"}


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Context(NamedTuple):
    client: PoolClient
    out: TextIO
    err: TextIO
    json: bool = False
    width: Optional[int] = None  # None: do not truncate (output is not a terminal)
    this_host: Optional[str] = None  # host uuid for ps without --all-hosts; None: the whole pool
    now: Callable[[], datetime.datetime] = utc_now


def emit_json(ctx: Context, value: Any) -> None:
    ctx.out.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def note(ctx: Context, text: str) -> None:
    ctx.err.write("xscontainer: %s\n" % text)


# -- naming ----------------------------------------------------------------------------------------

def find_vm(ctx: Context, query: str) -> VmInfo:
    vms = ctx.client.vms()
    return resolve(query, [Candidate(vm.uuid, vm.name_label, vm) for vm in vms], "VM")


def find_template(ctx: Context, query: str) -> VmInfo:
    templates = ctx.client.vms(templates=True)
    return resolve(query, [Candidate(t.uuid, t.name_label, t) for t in templates], "template")


def _plugin(ctx: Context, vm: Optional[VmInfo], fn: str, args: Dict[str, str]) -> str:
    try:
        return ctx.client.call_plugin(ctx.client.plugin_host(vm), fn, args)
    except XSContainerError as exc:
        if vm is not None and not exc.message.startswith(vm.name_label + ":"):
            exc.message = "%s: %s" % (vm.name_label, exc.message)
            exc.args = (exc.message,)
        raise


def refresh(ctx: Context, vm: VmInfo) -> None:
    _plugin(ctx, vm, "refresh", {"vmuuid": vm.uuid})


def containers_of(ctx: Context, vm: VmInfo) -> Optional[List[ContainerRow]]:
    """What the monitor wrote; every container from the engine when that had to be abridged to
    fit xapi's request limit."""
    text = ctx.client.other_config_value(vm.ref, DOCKER_PS_KEY)
    if text is None:
        return None
    if docker_ps_is_abridged(text) and vm.power_state == "Running":
        text = _plugin(ctx, vm, "get_ps", {"vmuuid": vm.uuid})
    return parse_docker_ps(text)


def find_container(ctx: Context, vm: VmInfo, query: str) -> ContainerRow:
    """Resolve against the VM's docker_ps; when that is missing or does not know the name, ask the
    engine for a fresh list once (a container may have been created since the last update)."""
    if not query:
        raise InvalidArgument("An empty container name was given.")
    rows = containers_of(ctx, vm)
    if rows is not None:
        try:
            return _resolve_container(vm, query, rows)
        except NotFound as exc:
            if exc.code != "CONTAINER_NOT_FOUND":
                raise
    refresh(ctx, vm)
    return _resolve_container(vm, query, containers_of(ctx, vm) or [])


def _resolve_container(vm: VmInfo, query: str, rows: List[ContainerRow]) -> ContainerRow:
    try:
        return resolve(query, [Candidate(r.id, r.name, r) for r in rows], "container", "id")
    except NotFound as exc:
        exc.message = "%s: %s" % (vm.name_label, exc.message)
        exc.args = (exc.message,)
        raise


# -- ps --------------------------------------------------------------------------------------------

def ps_targets(ctx: Context, vm_query: Optional[str], all_hosts: bool) -> List[VmInfo]:
    if vm_query:
        return [find_vm(ctx, vm_query)]
    managed = [vm for vm in ctx.client.vms() if vm.managed]
    if all_hosts or ctx.this_host is None:
        return managed
    return [vm for vm in managed if vm.host_uuid == ctx.this_host]


def cmd_ps(ctx: Context, vm_query: Optional[str] = None, all_hosts: bool = False, refresh_first: bool = False) -> int:
    result = EXIT_OK
    collected = []
    targets = ps_targets(ctx, vm_query, all_hosts)
    if not targets and not ctx.json:
        note(ctx, "no VM registered for container management %s (xscontainer register VM)."
             % ("in the pool" if all_hosts or ctx.this_host is None else "runs on this host; --all-hosts shows the pool"))
    for vm in targets:
        error = None  # type: Optional[XSContainerError]
        if refresh_first and vm.power_state == "Running":
            try:
                refresh(ctx, vm)
            except XSContainerError as exc:
                error = exc
                result = result or exit_code(exc)
        rows = None
        try:
            rows = containers_of(ctx, vm)
        except XSContainerError as exc:
            error = error or exc
            result = result or exit_code(exc)
        collected.append(views.VmContainers(vm, rows, error))
    if ctx.json:
        emit_json(ctx, views.ps_json(collected, ctx.now()))
    else:
        ctx.out.write(views.ps_table(collected, ctx.now(), ctx.width))
        for line in views.ps_notes(collected, refresh_first):
            note(ctx, line)
    return result


# -- one container ------------------------------------------------------------------------------------

def cmd_top(ctx: Context, vm_query: str, container_query: str) -> int:
    vm = find_vm(ctx, vm_query)
    row = find_container(ctx, vm, container_query)
    titles, rows = parse_docker_top(_plugin(ctx, vm, "get_top", {"vmuuid": vm.uuid, "object": row.id}))
    if ctx.json:
        emit_json(ctx, dict(views.top_json(titles, rows), vm=views.vm_json(vm), container=_ident(row)))
    else:
        ctx.out.write(views.top_table(titles, rows, ctx.width))
    return EXIT_OK


def cmd_inspect(ctx: Context, vm_query: str, container_query: str) -> int:
    vm = find_vm(ctx, vm_query)
    row = find_container(ctx, vm, container_query)
    _, value = decode_document(_plugin(ctx, vm, "get_inspect", {"vmuuid": vm.uuid, "object": row.id}),
                               "docker_inspect")
    if ctx.json:
        emit_json(ctx, value)
    else:
        ctx.out.write(layout.render_tree(value))
    return EXIT_OK


def cmd_logs(ctx: Context, vm_query: str, container_query: str, tail: Optional[int] = None) -> int:
    vm = find_vm(ctx, vm_query)
    row = find_container(ctx, vm, container_query)
    args = {"vmuuid": vm.uuid, "container": row.id}
    if tail is not None:
        args["tail"] = str(tail)
    text = _plugin(ctx, vm, "get_logs", args)
    if ctx.json:
        emit_json(ctx, {"vm": views.vm_json(vm), "container": _ident(row), "logs": text})
    else:
        ctx.out.write(text if not text or text.endswith("\n") else text + "\n")
    return EXIT_OK


def cmd_stats(ctx: Context, vm_query: str, container_query: Optional[str] = None, from_rrdd: bool = False) -> int:
    vm = find_vm(ctx, vm_query)
    if from_rrdd:
        return _recorded_stats(ctx, vm, container_query)
    args = {"vmuuid": vm.uuid}
    if container_query:
        args["container"] = find_container(ctx, vm, container_query).id
    _, value = decode_document(_plugin(ctx, vm, "get_stats", args), "docker_stats")
    records = views.stats_records(value)
    if ctx.json:
        emit_json(ctx, {"vm": views.vm_json(vm), "containers": records})
    else:
        ctx.out.write(views.stats_table(records, ctx.width))
    return EXIT_OK


def _recorded_stats(ctx: Context, vm: VmInfo, container_query: Optional[str]) -> int:
    """What xcp-rrdd recorded (the monitor's metrics reporter), instead of asking the engine."""
    rows = recorded.records(ctx.client.data_source_values(vm.ref, recorded.wanted)) \
        if vm.power_state in ("Running", "Paused") else []
    if container_query:
        rows = [r for r in rows if r["name"] == container_query]
    if ctx.json:
        emit_json(ctx, {"vm": views.vm_json(vm), "containers": rows})
    else:
        ctx.out.write(recorded.table(rows, ctx.width))
    return EXIT_OK


def cmd_stats_watch(ctx: Context, vm_query: Optional[str], count: Optional[int] = None,
                    sleep: Callable[[float], None] = time.sleep) -> int:
    """Every managed VM of the pool (or ``vm_query``), redrawn at each rrdd reading."""

    def read():
        readings = []
        targets = [find_vm(ctx, vm_query)] if vm_query else [vm for vm in ctx.client.vms() if vm.managed]
        for vm in targets:
            if vm.power_state not in ("Running", "Paused"):
                continue
            try:
                readings.append((vm, ctx.client.data_source_values(vm.ref, watch.wanted)))
            except XSContainerError as exc:  # one VM (migrating, say) must not end the view
                note(ctx, "%s: %s" % (vm.name_label, exc.message))
        return readings

    terminal = bool(getattr(ctx.out, "isatty", lambda: False)())
    try:
        watch.watch_loop(read, ctx.out, terminal, ctx.width, sleep, ctx.now, count)
    except KeyboardInterrupt:
        ctx.out.write("\n")
    return EXIT_OK


def cmd_lifecycle(ctx: Context, action: str, vm_query: str, container_query: str) -> int:
    if action not in LIFECYCLE:
        raise InvalidArgument("Unknown container action %r." % action)
    vm = find_vm(ctx, vm_query)
    row = find_container(ctx, vm, container_query)
    # The 10-character short id, as XenCenter passes it; resolved above, so it is unambiguous here.
    output = _plugin(ctx, vm, action, {"vmuuid": vm.uuid, "container": row.container})
    if ctx.json:
        emit_json(ctx, {"vm": views.vm_json(vm), "container": _ident(row), "action": action, "result": output})
    else:
        ctx.out.write("%s: %s %s (%s)\n" % (vm.name_label, PAST[action], row.name or row.container, row.container))
    return EXIT_OK


def _ident(row: ContainerRow) -> Dict[str, str]:
    return {"id": row.id, "container": row.container, "name": row.name}


# -- VM level --------------------------------------------------------------------------------------------

def cmd_register(ctx: Context, vm_query: str, register: bool = True,
                 host_key_fingerprint: Optional[str] = None) -> int:
    vm = find_vm(ctx, vm_query)
    fn = "register" if register else "deregister"
    pinned = None
    if host_key_fingerprint:  # before registering, so the first connection already checks it
        pinned = ctx.client.expect_host_key(vm, host_key_fingerprint)
    _plugin(ctx, None, fn, {"vmuuid": vm.uuid})
    if ctx.json:
        document = {"vm": views.vm_json(vm), "managed": register}
        if host_key_fingerprint:
            document["host_key_fingerprint"] = host_key_fingerprint
        emit_json(ctx, document)
    elif register:
        if host_key_fingerprint:
            ctx.out.write("%s: SSH host key %s %s.\n" % (
                vm.name_label, host_key_fingerprint,
                "is the one pinned already" if pinned else "recorded; the first connection accepts only it"))
        ctx.out.write("%s: registered; the monitor on its host will show its containers.\n" % vm.name_label)
        if not host_key_fingerprint and not ctx.client.host_key_vouched(vm):
            ctx.err.write("%s: no SSH host key is pinned for it, so it will not be connected to until "
                          "you check the key on its console (ssh-keygen -lf "
                          "/etc/ssh/ssh_host_ed25519_key.pub) and run: xscontainer register %s "
                          "--host-key-fingerprint SHA256:... (xscontainer doctor %s shows the key that "
                          "answers).\n" % (vm.name_label, vm.uuid, vm.uuid))
    else:
        ctx.out.write("%s: deregistered; its containers are no longer monitored.\n" % vm.name_label)
    return EXIT_OK


def cmd_doctor(ctx: Context, vm_query: str) -> int:
    vm = find_vm(ctx, vm_query)
    _, status = decode_document(_plugin(ctx, vm, "get_status", {"vmuuid": vm.uuid}), "xscontainer_status")
    report = views.doctor_report(status)
    if ctx.json:
        emit_json(ctx, views.doctor_json(vm, report))
    else:
        ctx.out.write(views.doctor_text(vm, report))
    return views.doctor_exit_code(report)


# -- config drives -----------------------------------------------------------------------------------------

def cmd_config_drive_default(ctx: Context, template_query: str) -> int:
    template = find_template(ctx, template_query)
    text = _plugin(ctx, None, "get_config_drive_default", {"templateuuid": template.uuid})
    if ctx.json:
        emit_json(ctx, {"template": {"uuid": template.uuid, "name_label": template.name_label},
                        "configuration": text})
    else:
        ctx.out.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def check_configuration_size(session_ref: str, args: Dict[str, str]) -> None:
    """Refuse, before calling, a configuration xapi could not hand to the plugin: the whole call,
    XML-escaped (``&`` is 5 bytes), must fit one command-line argument, forwarded or not."""
    size = validate.forwarded_call_bytes("create_config_drive", session_ref, args)
    if size > validate.MAX_CALL_BYTES:
        raise InvalidArgument(
            "The configuration is too large for xapi: the plugin call would be %d bytes once "
            "XML-escaped (characters & < > \" count 4 to 6 bytes each), and xapi can pass at most "
            "%d bytes to a plugin: shorten it by at least %d escaped bytes." % (
                size, validate.MAX_CALL_BYTES, size - validate.MAX_CALL_BYTES),
            code="ARGUMENT_TOO_LARGE")


def cmd_config_drive_create(ctx: Context, vm_query: str, sr_query: str, configuration: str) -> int:
    vm = find_vm(ctx, vm_query)
    sr = resolve(sr_query, [Candidate(s.uuid, s.name_label, s) for s in ctx.client.srs()], "SR")
    args = {"vmuuid": vm.uuid, "sruuid": sr.uuid, "configuration": configuration}
    check_configuration_size(ctx.client.session_ref(), args)
    vdi_uuid = _plugin(ctx, None, "create_config_drive", args).strip()
    if ctx.json:
        emit_json(ctx, {"vm": views.vm_json(vm), "sr": {"uuid": sr.uuid, "name_label": sr.name_label},
                        "vdi": vdi_uuid})
    else:
        ctx.out.write("%s: config drive created: VDI %s on SR %s.\n" % (vm.name_label, vdi_uuid, sr.name_label))
    return EXIT_OK


def cmd_config_drive_show(ctx: Context, vdi_query: str) -> int:
    vdi = resolve(vdi_query, [Candidate(v.uuid, v.name_label, v) for v in ctx.client.vdis()], "VDI")
    text = _plugin(ctx, None, "get_config_drive_configuration", {"vdiuuid": vdi.uuid})
    if ctx.json:
        emit_json(ctx, {"vdi": {"uuid": vdi.uuid, "name_label": vdi.name_label}, "configuration": text})
    else:
        ctx.out.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK

