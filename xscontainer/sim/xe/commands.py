"""The xe commands: each reads and writes through a XenAPI session and prints to an ``Output``."""

import os
import xmlrpc.client
from typing import Dict, List, Optional, Tuple

from xscontainer.sim.xe.argv import ConnOptions, is_true, param, read_map_params
from xscontainer.sim.xe.formatting import (chosen_fields, escape_commas, field_type, filter_records,
                                           find_field, format_server_error, format_table, format_value,
                                           list_filters, map_value, qualifier, record_rows)
from xscontainer.sim.xe.specs import CLASSES, STD_PARAMS, ClassSpec, Field, Params, XeFailure, cli_failure
from xscontainer.xapi import NULL_REF  # xe is a client: it uses the client's name for the null ref


class Output(object):
    """Collects what a command prints; PList/PTable semantics of cli_printer.ml."""

    def __init__(self, minimal: bool) -> None:
        self.minimal = minimal
        self.parts = []  # type: List[str]
        self.minimal_values = []  # type: List[str]

    def table(self, tables: List[List[Tuple[str, str]]]) -> None:
        if self.minimal:
            if tables and tables[0]:
                self.minimal_values.append(",".join(escape_commas(t[0][1]) for t in tables))
        else:
            self.parts.append(format_table(tables))

    def lines(self, values: List[str]) -> None:
        if self.minimal:
            self.minimal_values.append(",".join(escape_commas(v) for v in values))
        else:
            self.parts.extend(v + "\n" for v in values)

    def text(self) -> str:
        if self.minimal:
            return ",".join(self.minimal_values) + "\n"
        return "".join(self.parts)


class RecordCache(object):
    """Records fetched once per class per command (the ``lookup`` the formatters use)."""

    def __init__(self, session) -> None:
        self._session = session
        self._by_class = {}  # type: Dict[str, Dict[str, dict]]

    def all(self, cls: str) -> Dict[str, dict]:
        if cls not in self._by_class:
            self._by_class[cls] = getattr(self._session.xenapi, cls).get_all_records()
        return self._by_class[cls]

    def lookup(self, cls: str, ref: str) -> Optional[dict]:
        import XenAPI
        try:
            return self.all(cls).get(ref)
        except XenAPI.Failure:
            return None

    def forget(self, cls: str) -> None:
        self._by_class.pop(cls, None)


def ref_convert(cache: RecordCache, value: str) -> str:
    """cli_util.ml ref_convert: a ref in an error becomes ``uuid (name-label)`` when known."""
    if not value.startswith("OpaqueRef:") or value == NULL_REF:
        return value
    for cls in ("VM", "host", "SR", "VDI", "VBD", "VIF", "network", "PBD", "PIF", "pool"):
        record = cache.lookup(cls, value)
        if record is not None:
            label = record.get("name_label")
            return record["uuid"] + (" (%s)" % label if label is not None else "")
    return value


def _object(session, spec: ClassSpec, params: Params) -> Tuple[RecordCache, str, dict]:
    """The object ``uuid=`` names: the command's record cache, its ref and its record."""
    cache = RecordCache(session)
    ref = getattr(session.xenapi, spec.xapi).get_by_uuid(param(params, "uuid") or "")
    return cache, ref, cache.all(spec.xapi)[ref]


def _writable_collection(field: Field, read_only: str, other: str) -> str:
    """``"tags"`` or ``"map"`` for a writable set or map field; otherwise the command's xe error,
    ``read_only`` for a read-only map or set, ``other`` for any other field."""
    if field.writable and field.kind in ("tags", "map"):
        return field.kind
    if field.kind == "map" or qualifier(field).startswith("(S"):
        raise cli_failure(read_only)
    raise cli_failure(other)


def cmd_list(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    records = list(cache.all(spec.xapi).values())
    shown = filter_records(spec, records, list_filters(spec, params), cache.lookup)
    if is_true(param(params, "all")):
        shown = records
    fields = chosen_fields(spec, params)
    out.table([record_rows(fields, r, cache.lookup) for r in shown])


def cmd_param_list(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache, _ref, record = _object(session, spec, params)
    out.table([record_rows(spec.fields, record, cache.lookup)])


def cmd_param_get(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache, _ref, record = _object(session, spec, params)
    field = find_field(spec, param(params, "param-name") or "")
    key = param(params, "param-key")
    values = map_value(field, record, cache.lookup)
    if key is not None and values is not None:
        if key not in values:
            raise cli_failure("Key %s not found in map" % key)
        out.lines([values[key]])
    else:
        out.lines([format_value(field, record, cache.lookup)])


def _api(session, spec: ClassSpec):
    return getattr(session.xenapi, spec.xapi)


def _set_scalar(session, spec: ClassSpec, ref: str, field: Field, value: str) -> None:
    api = _api(session, spec)
    if field.kind == "bool":
        if value.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise cli_failure("Parameter %s must be a boolean (true or false)" % field.name)
        getattr(api, "set_" + field.key)(ref, is_true(value))
    elif field.kind == "int":
        try:
            int(value)
        except ValueError:
            raise cli_failure("Parameter %s must be an integer" % field.name)
        getattr(api, "set_" + field.key)(ref, value)
    else:
        getattr(api, "set_" + field.key)(ref, value)


def cmd_param_set(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache, ref, record = _object(session, spec, params)
    api = _api(session, spec)
    for name, value in params:
        if name == "uuid" or name in STD_PARAMS:
            continue
        kind, field = field_type(spec, name)
        if kind == "map":
            key = name[len(field.name) + 1:]
            if not field.writable:
                raise cli_failure("Map field '%s' is read-only." % field.name)
            # Key by key, never a whole-map write: other writers keep their keys.
            if key in (map_value(field, record, cache.lookup) or {}):
                getattr(api, "remove_from_" + field.key)(ref, key)
            getattr(api, "add_to_" + field.key)(ref, key, value)
        elif kind == "set":
            raise cli_failure("Cannot param-set on set fields")
        else:
            if not field.writable:
                raise cli_failure("Field '%s' is read-only." % name)
            _set_scalar(session, spec, ref, field, value)


def cmd_param_add(session, spec: ClassSpec, params: Params, out: Output) -> None:
    _cache, ref, _record = _object(session, spec, params)
    field = find_field(spec, param(params, "param-name") or "")
    api = _api(session, spec)
    if _writable_collection(field, "Parameter is read-only",
                            "Can only add to parameters of type Set or Map") == "tags":
        key = param(params, "param-key")
        if key is None:
            raise cli_failure("When adding a key to a set, use the syntax: *-param-add "
                               "param-name=<name> param-key=<key>")
        api.add_tags(ref, key)
    else:
        skip = ("uuid", "param-name", "param-key") + STD_PARAMS
        for key, value in params:
            if key not in skip:
                getattr(api, "add_to_" + field.key)(ref, key, value)


def cmd_param_remove(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache, ref, record = _object(session, spec, params)
    field = find_field(spec, param(params, "param-name") or "")
    key = param(params, "param-key") or ""
    api = _api(session, spec)
    if _writable_collection(field, "Cannot remove parameters from read-only map",
                            "Can only remove from parameters of type Set or Map") == "tags":
        if key not in record.get(field.key, []):
            raise cli_failure("Key %s is not in the set" % key)
        api.remove_tags(ref, key)
    else:
        if key not in (map_value(field, record, cache.lookup) or {}):
            raise cli_failure("Key %s is not in map" % key)
        getattr(api, "remove_from_" + field.key)(ref, key)


def cmd_param_clear(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache, ref, record = _object(session, spec, params)
    field = find_field(spec, param(params, "param-name") or "")
    api = _api(session, spec)
    if field.kind == "tags" and field.writable:
        for tag in record.get(field.key, []):
            api.remove_tags(ref, tag)
    elif field.kind == "map" and field.writable:
        for key in map_value(field, record, cache.lookup) or {}:
            getattr(api, "remove_from_" + field.key)(ref, key)
    elif field.writable and field.kind == "str":
        _set_scalar(session, spec, ref, field, "")
    else:
        raise cli_failure("Can only clear RW parameters")


def plugin_args(params: Params) -> Dict[str, str]:
    """``args:k=v`` and ``args:k:file=/path`` (the file's contents under ``k``)."""
    args = {}  # type: Dict[str, str]
    for key, value in read_map_params("args", params):
        if key.endswith(":file"):
            try:
                with open(value, "r") as handle:
                    args[key[:-len(":file")]] = handle.read()
            except (OSError, IOError, UnicodeDecodeError):
                raise XeFailure("Failed to read %s" % value)
        else:
            args[key] = value
    return args


def cmd_host_call_plugin(session, params: Params, out: Output) -> None:
    args = plugin_args(params)
    host = session.xenapi.host.get_by_uuid(param(params, "host-uuid"))
    result = session.xenapi.host.call_plugin(host, param(params, "plugin"), param(params, "fn"),
                                             args)
    out.lines([result])


def _select_vms(session, params: Params) -> List[str]:
    # Selectors (cli_operations.ml do_vm_op): vm=<name or uuid>, uuid=, or any vm-list filter.
    spec = CLASSES["vm"]
    cache = RecordCache(session)
    records = cache.all("VM")
    by_uuid = {r["uuid"]: ref for ref, r in records.items()}
    selector = param(params, "vm")
    filters = [(k, v) for k, v in params
               if k not in STD_PARAMS and k not in ("vm", "params")]
    refs = list(records)
    if selector is not None:
        refs = [ref for ref in refs
                if records[ref]["uuid"] == selector or records[ref]["name_label"] == selector]
    if filters:
        kept = filter_records(spec, [records[r] for r in refs], filters, cache.lookup)
        refs = [by_uuid[r["uuid"]] for r in kept]
    refs = [r for r in refs if not records[r].get("is_control_domain")
            and not records[r].get("is_a_template")]
    if not refs:
        raise cli_failure("No matching VMs found")
    if len(refs) > 1 and not is_true(param(params, "multiple")):
        raise cli_failure("Multiple matches VMs found. Operation can only be performed on one "
                           "VM at a time")
    return refs


def cmd_vm_start(session, params: Params, out: Output) -> None:
    for ref in _select_vms(session, params):
        session.xenapi.VM.start(ref, is_true(param(params, "paused")),
                                is_true(param(params, "force")))


def cmd_vm_shutdown(session, params: Params, out: Output) -> None:
    for ref in _select_vms(session, params):
        if is_true(param(params, "force")):
            session.xenapi.VM.hard_shutdown(ref)
        else:
            session.xenapi.VM.clean_shutdown(ref)


def _put_file(conn: ConnOptions, path: str, filename: str) -> None:
    """The client half of the CLI's HttpPut: the file as the request body (newcli.ml)."""
    import http.client
    from xscontainer.xapi.session import local_socket_path
    if conn.server is None:
        from xscontainer.transport.unixhttp import UnixHTTPConnection
        connection = UnixHTTPConnection(local_socket_path())  # type: http.client.HTTPConnection
    else:
        connection = http.client.HTTPConnection(conn.server, conn.port if conn.port is not None else 80)
    try:
        with open(filename, "rb") as body:
            connection.putrequest("PUT", path, skip_accept_encoding=True)
            connection.putheader("Content-Length", str(os.fstat(body.fileno()).st_size))
            connection.endheaders()
            try:
                for block in iter(lambda: body.read(1 << 20), b""):
                    connection.send(block)
            except (BrokenPipeError, ConnectionResetError):
                pass  # xapi answered early: the task says why
        connection.getresponse().read()
    finally:
        connection.close()


def _task_result(session, task: str) -> str:
    """track_http_operation (cli_util.ml): wait for the task, its result or its error."""
    import time
    import XenAPI
    api = session.xenapi
    while api.task.get_status(task) == "pending":
        time.sleep(0.05)
    if api.task.get_status(task) == "success":
        return api.task.get_result(task)
    error = api.task.get_error_info(task) or ["INTERNAL_ERROR"]
    raise XenAPI.Failure(error)


def cmd_update_upload(session, conn: ConnOptions, params: Params, out: Output) -> None:
    """cli_operations.ml update_upload: PUT the ISO into a new VDI of the SR (sr-uuid, else the
    pool's default SR), pool_update.introduce it (the VDI is destroyed if that fails), print the
    update's uuid. Unlike xe, the VDI keeps the name the import gave it: the simulator has no
    VDI.set_name_label for the "Update: <name>" rename."""
    from urllib.parse import urlencode
    import XenAPI
    filename = param(params, "file-name") or ""
    if not os.path.exists(filename):
        raise XeFailure("Operation failed. Error: file '%s' does not exist" % filename)
    api = session.xenapi
    sr_uuid = param(params, "sr-uuid")
    if sr_uuid is not None:
        sr = api.SR.get_by_uuid(sr_uuid)
    else:
        try:
            sr = api.pool.get_default_SR(api.pool.get_all()[0])
            api.SR.get_uuid(sr)  # get_default_sr_uuid: a NULL or dangling default SR fails here
        except XenAPI.Failure:
            raise XeFailure(format_server_error("INTERNAL_ERROR", [
                "Failure: No sr-uuid parameter was given, and the pool's default SR is unspecified "
                "or invalid. Please explicitly specify the SR to use in the sr-uuid parameter, or "
                "set the pool's default SR."]))
    task = api.task.create("host patch upload", "")
    try:
        _put_file(conn, "/import_raw_vdi?" + urlencode(
            [("session_id", session._session), ("sr_id", sr), ("task_id", task)]), filename)
        result = _task_result(session, task)
    finally:
        api.task.destroy(task)
    vdi = xmlrpc.client.loads("<methodResponse><params><param>%s</param></params></methodResponse>"
                              % result)[0][0]
    try:
        update = api.pool_update.introduce(vdi)
    except XenAPI.Failure:
        api.VDI.destroy(vdi)
        raise
    out.lines([api.pool_update.get_uuid(update)])


def ocaml_string_of_float(value: float) -> str:
    """OCaml's string_of_float: %.12g, with a '.' when that looks like an integer."""
    text = "%.12g" % value
    return text + "." if text.lstrip("-").isdigit() else text


def cmd_vm_data_source_list(session, params: Params, out: Output) -> None:
    # cli_operations.ml vm_data_source_list / data_source_to_kvs
    for ref in _select_vms(session, params):
        out.table([[("name_label", d["name_label"]), ("name_description", d["name_description"]),
                    ("enabled", str(d["enabled"]).lower()), ("standard", str(d["standard"]).lower()),
                    ("min", ocaml_string_of_float(float(d["min"]))),
                    ("max", ocaml_string_of_float(float(d["max"]))), ("units", d["units"])]
                   for d in session.xenapi.VM.get_data_sources(ref)])


def cmd_vm_data_source_query(session, params: Params, out: Output) -> None:
    selectors = [(k, v) for k, v in params if k != "data-source"]
    for ref in _select_vms(session, selectors):
        out.lines(["%f" % float(session.xenapi.VM.query_data_source(ref, param(params, "data-source")))])


PARAM_IMPLS = {
    "list": cmd_list, "param-list": cmd_param_list, "param-get": cmd_param_get,
    "param-set": cmd_param_set, "param-add": cmd_param_add, "param-remove": cmd_param_remove,
    "param-clear": cmd_param_clear,
}
OTHER_IMPLS = {
    "host-call-plugin": cmd_host_call_plugin, "vm-start": cmd_vm_start,
    "vm-shutdown": cmd_vm_shutdown, "vm-data-source-list": cmd_vm_data_source_list,
    "vm-data-source-query": cmd_vm_data_source_query,
}
