"""The ``xe`` command: real xe syntax and output, as a pure XenAPI client (simulator or real host).

The upper half is pure (argument parsing, record formatting, filtering, error texts) and is tested
with literal records; the lower half talks to xapi through the official ``XenAPI`` client.
Texts and layout follow xapi's CLI server (xen-api ``ocaml/xapi-cli-server``: cli_printer.ml,
cli_operations.ml, records.ml, xapi_cli.ml, cli_util.ml) and client (``ocaml/xe-cli/newcli.ml``).
"""

import os
import sys
import xmlrpc.client
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from xscontainer.errors import XSContainerError
from xscontainer.xapi import NULL_REF  # xe is a client: it uses the client's name for the null ref

# records.ml prints this for a NULL or dangling reference ("nid").
NOT_IN_DATABASE = "<not in database>"
USAGE_HINT = "For usage run: 'xe help'"

Params = List[Tuple[str, str]]
# lookup(xapi_class, ref) -> record or None; the only way formatting reaches other objects.
Lookup = Callable[[str, str], Optional[dict]]


class XeFailure(XSContainerError):
    """A command failed; ``message`` is exactly what the real xe prints on stderr."""

    code = "XE_FAILURE"


def _cli_failure(text: str) -> XeFailure:
    # Cli_util.Cli_failure in xapi_cli.ml: "Error: <text>".
    return XeFailure("Error: " + text)


def _param_error(prefix: str, text: str) -> XeFailure:
    # xapi_cli.ml param_error: "<prefix>: <text>" then the usage hint.
    line = prefix + ": " + text if prefix else text
    return XeFailure(line + "\n" + USAGE_HINT)


# --------------------------------------------------------------------------------------------
# Record schemas (a subset of records.ml: names, order, qualifiers and value conversions)
# --------------------------------------------------------------------------------------------

# kind: str | int | bool | enum | vditype | datetime | map | set | tags | ops
#       | ref:<Class> | refname:<Class> | refs:<Class> | srhost
Field = NamedTuple("Field", [
    ("name", str),          # CLI name, e.g. "name-label"
    ("key", str),           # XenAPI record key, e.g. "name_label"
    ("kind", str),
    ("writable", bool),     # set_<key> for scalars, add_to_/remove_from_<key> for maps
    ("via", Optional[Tuple[str, str]]),  # (ref key, class): read key from that object instead
])


def _f(name: str, key: str, kind: str = "str", writable: bool = False,
       via: Optional[Tuple[str, str]] = None) -> Field:
    return Field(name, key, kind, writable, via)


ClassSpec = NamedTuple("ClassSpec", [
    ("cli", str),                     # "vm"
    ("xapi", str),                    # "VM"
    ("fields", Tuple[Field, ...]),
    ("default_params", Tuple[str, ...]),   # empty: all fields
    ("default_filters", Tuple[Tuple[str, str], ...]),
])

_GM = ("guest_metrics", "VM_guest_metrics")

VM_FIELDS = (
    _f("uuid", "uuid"),
    _f("name-label", "name_label", writable=True),
    _f("name-description", "name_description", writable=True),
    _f("user-version", "user_version", "int", writable=True),
    _f("is-a-template", "is_a_template", "bool", writable=True),
    _f("is-a-snapshot", "is_a_snapshot", "bool"),
    _f("snapshot-of", "snapshot_of", "ref:VM"),
    _f("is-control-domain", "is_control_domain", "bool"),
    _f("power-state", "power_state", "enum"),
    _f("memory-static-max", "memory_static_max", "int", writable=True),
    _f("memory-dynamic-max", "memory_dynamic_max", "int", writable=True),
    _f("memory-dynamic-min", "memory_dynamic_min", "int", writable=True),
    _f("memory-static-min", "memory_static_min", "int", writable=True),
    _f("VCPUs-max", "VCPUs_max", "int", writable=True),
    _f("VCPUs-at-startup", "VCPUs_at_startup", "int", writable=True),
    _f("allowed-operations", "allowed_operations", "set"),
    _f("current-operations", "current_operations", "ops"),
    _f("blocked-operations", "blocked_operations", "map", writable=True),
    _f("PV-args", "PV_args", writable=True),
    _f("resident-on", "resident_on", "ref:host"),
    _f("affinity", "affinity", "ref:host"),
    _f("other-config", "other_config", "map", writable=True),
    _f("dom-id", "domid", "int"),
    _f("xenstore-data", "xenstore_data", "map", writable=True),
    _f("os-version", "os_version", "map", via=_GM),
    _f("VBDs", "VBDs", "refs:VBD"),
    _f("networks", "networks", "map", via=_GM),
    _f("tags", "tags", "tags", writable=True),
)

HOST_FIELDS = (
    _f("uuid", "uuid"),
    _f("name-label", "name_label", writable=True),
    _f("name-description", "name_description", writable=True),
    _f("allowed-operations", "allowed_operations", "set"),
    _f("current-operations", "current_operations", "ops"),
    _f("enabled", "enabled", "bool"),
    _f("API-version-major", "API_version_major", "int"),
    _f("API-version-minor", "API_version_minor", "int"),
    _f("API-version-vendor", "API_version_vendor"),
    _f("software-version", "software_version", "map"),
    _f("capabilities", "capabilities", "set"),
    _f("other-config", "other_config", "map", writable=True),
    _f("hostname", "hostname"),
    _f("address", "address"),
    _f("memory-overhead", "memory_overhead", "int"),
    _f("tags", "tags", "tags", writable=True),
    _f("control-domain-uuid", "control_domain", "ref:VM"),
    _f("resident-vms", "resident_VMs", "refs:VM"),
)

POOL_FIELDS = (
    _f("uuid", "uuid"),
    _f("name-label", "name_label", writable=True),
    _f("name-description", "name_description", writable=True),
    _f("master", "master", "ref:host"),
    _f("default-SR", "default_SR", "ref:SR"),
    _f("crash-dump-SR", "crash_dump_SR", "ref:SR"),
    _f("suspend-image-SR", "suspend_image_SR", "ref:SR"),
    _f("other-config", "other_config", "map", writable=True),
    _f("allowed-operations", "allowed_operations", "set"),
    _f("current-operations", "current_operations", "ops"),
    _f("ha-enabled", "ha_enabled", "bool"),
    _f("gui-config", "gui_config", "map", writable=True),
    _f("tags", "tags", "tags", writable=True),
)

SR_FIELDS = (
    _f("uuid", "uuid"),
    _f("name-label", "name_label", writable=True),
    _f("name-description", "name_description", writable=True),
    _f("host", "PBDs", "srhost"),
    _f("allowed-operations", "allowed_operations", "set"),
    _f("current-operations", "current_operations", "ops"),
    _f("VDIs", "VDIs", "refs:VDI"),
    _f("PBDs", "PBDs", "refs:PBD"),
    _f("virtual-allocation", "virtual_allocation", "int"),
    _f("physical-utilisation", "physical_utilisation", "int"),
    _f("physical-size", "physical_size", "int"),
    _f("type", "type"),
    _f("content-type", "content_type"),
    _f("shared", "shared", "bool", writable=True),
    _f("other-config", "other_config", "map", writable=True),
    _f("sm-config", "sm_config", "map"),
    _f("tags", "tags", "tags", writable=True),
)

VDI_FIELDS = (
    _f("uuid", "uuid"),
    _f("name-label", "name_label", writable=True),
    _f("name-description", "name_description", writable=True),
    _f("is-a-snapshot", "is_a_snapshot", "bool"),
    _f("snapshot-of", "snapshot_of", "ref:VDI"),
    _f("allowed-operations", "allowed_operations", "set"),
    _f("current-operations", "current_operations", "ops"),
    _f("sr-uuid", "SR", "ref:SR"),
    _f("sr-name-label", "SR", "refname:SR"),
    _f("vbd-uuids", "VBDs", "refs:VBD"),
    _f("virtual-size", "virtual_size", "int"),
    _f("physical-utilisation", "physical_utilisation", "int"),
    _f("location", "location"),
    _f("type", "type", "vditype"),
    _f("sharable", "sharable", "bool"),
    _f("read-only", "read_only", "bool"),
    _f("managed", "managed", "bool"),
    _f("missing", "missing", "bool"),
    _f("other-config", "other_config", "map", writable=True),
    _f("xenstore-data", "xenstore_data", "map"),
    _f("sm-config", "sm_config", "map"),
    _f("tags", "tags", "tags", writable=True),
)

NETWORK_FIELDS = (
    _f("uuid", "uuid"),
    _f("name-label", "name_label", writable=True),
    _f("name-description", "name_description", writable=True),
    _f("VIF-uuids", "VIFs", "refs:VIF"),
    _f("PIF-uuids", "PIFs", "refs:PIF"),
    _f("MTU", "MTU", "int"),
    _f("bridge", "bridge"),
    _f("managed", "managed", "bool"),
    _f("other-config", "other_config", "map", writable=True),
    _f("tags", "tags", "tags", writable=True),
)

MESSAGE_FIELDS = (
    _f("uuid", "uuid"),
    _f("name", "name"),
    _f("priority", "priority", "int"),
    _f("class", "cls"),
    _f("obj-uuid", "obj_uuid"),
    _f("timestamp", "timestamp", "datetime"),
    _f("body", "body"),
)

# Default list fields and filters: cli_operations.ml gen_cmds.
CLASSES = {spec.cli: spec for spec in (
    ClassSpec("vm", "VM", VM_FIELDS, ("name-label", "uuid", "power-state"),
              (("is-a-template", "false"),)),
    ClassSpec("template", "VM", VM_FIELDS, ("name-label", "name-description", "uuid"),
              (("is-a-template", "true"), ("is-a-snapshot", "false"))),
    ClassSpec("host", "host", HOST_FIELDS, ("uuid", "name-label", "name-description"), ()),
    ClassSpec("pool", "pool", POOL_FIELDS,
              ("uuid", "name-label", "name-description", "master", "default-SR"), ()),
    ClassSpec("sr", "SR", SR_FIELDS,
              ("uuid", "name-label", "name-description", "host", "type", "content-type"), ()),
    ClassSpec("vdi", "VDI", VDI_FIELDS,
              ("uuid", "name-label", "name-description", "virtual-size", "read-only", "sharable",
               "sr-uuid"), ()),
    ClassSpec("network", "network", NETWORK_FIELDS,
              ("uuid", "name-label", "name-description", "bridge"), ()),
    ClassSpec("message", "message", MESSAGE_FIELDS, (), ()),
)}

# Parameters that are never filters (cli_operations.ml stdparams).
STD_PARAMS = ("server", "password", "port", "username", "minimal", "force", "multiple", "all",
              "message-priority", "trace")

# Datamodel error docs and parameter names (xen-api ocaml/idl/datamodel_errors.ml); xe prints
# these instead of the raw code (cli_util.ml get_server_error).
ERROR_DOCS = {
    "INTERNAL_ERROR": (
        "The server failed to handle your request, due to an internal error. The given message "
        "may give details useful for debugging the problem.", ("message",)),
    "PERMISSION_DENIED": ("Caller not allowed to perform this operation.", ("message",)),
    "UUID_INVALID": ("The uuid you supplied was invalid.", ("type", "uuid")),
    "INVALID_UPDATE": ("The uploaded update package is invalid.", ("info",)),
    "UPDATE_ALREADY_EXISTS": ("The uploaded update already exists", ("uuid",)),
    "MAP_DUPLICATE_KEY": (
        "You tried to add a key-value pair to a map, but that key is already there.",
        ("type", "param_name", "uuid", "key")),
    "MESSAGE_METHOD_UNKNOWN": (
        "You tried to call a method that does not exist. The method name that you used is "
        "echoed.", ("method",)),
    "MESSAGE_PARAMETER_COUNT_MISMATCH": (
        "You tried to call a method with the incorrect number of parameters. The fully-qualified "
        "method name that you used, and the number of received and expected parameters are "
        "returned.", ("method", "expected", "received")),
    "INVALID_VALUE": ("The value given is invalid", ("field", "value")),
    "OPERATION_NOT_ALLOWED": ("You attempted an operation that was not allowed.", ("reason",)),
    "HANDLE_INVALID": (
        "You gave an invalid object reference. The object may have recently been deleted. The "
        "class parameter gives the type of reference given, and the handle parameter echoes the "
        "bad value given.", ("class", "handle")),
    "SESSION_INVALID": (
        "You gave an invalid session reference. It may have been invalidated by a server "
        "restart, or timed out. You should get a new session handle, using one of the "
        "session.login_ calls. This error does not invalidate the current connection. The handle "
        "parameter echoes the bad value given.", ("handle",)),
    "VM_BAD_POWER_STATE": (
        "You attempted an operation on a VM that was not in an appropriate power state at the "
        "time; for example, you attempted to start a VM that was already running.  The "
        "parameters returned are the VM's handle, and the expected and actual VM state at the "
        "time of the call.", ("vm", "expected", "actual")),
    "VM_IS_TEMPLATE": ("The operation attempted is not valid for a template VM", ("vm",)),
    "XENAPI_MISSING_PLUGIN": ("The requested plugin could not be found.", ("name",)),
    "XENAPI_PLUGIN_FAILURE": (
        "There was a failure communicating with the plugin.", ("status", "stdout", "stderr")),
}


# --------------------------------------------------------------------------------------------
# Pure: command line
# --------------------------------------------------------------------------------------------

ConnOptions = NamedTuple("ConnOptions", [
    ("server", Optional[str]), ("port", Optional[int]), ("username", str), ("password", str),
    ("password_file", Optional[str]), ("nossl", bool),
])

Invocation = NamedTuple("Invocation", [
    ("conn", ConnOptions), ("command", Optional[str]), ("params", Params), ("help", bool),
])

_SWITCHES = {"-s": "server", "-h": "server", "-p": "port", "-u": "username", "-pw": "password",
             "-pwf": "passwordfile"}


def parse_argv(argv: Sequence[str]) -> Invocation:
    """Split connection options (newcli.ml parse_args) from the command and its key=value params.

    Raises XeFailure for a bad port, like newcli.ml.
    """
    conn = {"server": None, "port": None, "username": "root", "password": "",
            "passwordfile": None, "nossl": False}
    rest = []  # type: List[str]
    want_help = False
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-help", "--help"):
            want_help = True
        elif arg in _SWITCHES and i + 1 < len(args):
            conn[_SWITCHES[arg]] = args[i + 1]
            i += 1
        elif arg == "--nossl":
            conn["nossl"] = True
        elif arg.split("=", 1)[0] in ("server", "port", "username", "password", "passwordfile") \
                and "=" in arg:
            key, value = arg.split("=", 1)
            conn[key] = value
        else:
            rest.append(arg)
        i += 1
    port = None  # type: Optional[int]
    if conn["port"] is not None:
        try:
            port = int(conn["port"])
            if not 0 <= port <= 65535:
                raise ValueError(port)
        except ValueError:
            raise XeFailure("Port number must be an integer (0-65535)")
    options = ConnOptions(conn["server"], port, conn["username"], conn["password"],
                          conn["passwordfile"], bool(conn["nossl"]))
    if not rest:
        return Invocation(options, None, [], want_help)
    if "=" in rest[0]:
        # cli_frontend.ml parse_commandline: "command name is missing", re-raised as ParseError "".
        raise _param_error("Syntax error", "")
    return Invocation(options, rest[0], parse_params(rest[1:]), want_help)


def parse_params(args: Sequence[str]) -> Params:
    """cli_frontend.ml parse_params_2: ``--flag`` is ``flag=true``; ``k=v`` splits at the first '='."""
    params = []  # type: Params
    for arg in args:
        if arg.startswith("--"):
            params.append((arg[2:], "true"))
        elif "=" in arg:
            key, value = arg.split("=", 1)
            params.append((key, value))
        else:
            params.append((arg, ""))
    return params


def param(params: Params, name: str) -> Optional[str]:
    for key, value in params:
        if key == name:
            return value
    return None


def require(params: Params, names: Sequence[str]) -> None:
    for name in names:
        if param(params, name) is None:
            raise _param_error("Required parameter not found", name)


def is_true(value: Optional[str]) -> bool:
    return (value or "").lower() in ("true", "yes", "1", "on")


def read_map_params(prefix: str, params: Params) -> Params:
    """cli_operations.ml read_map_params: ``prefix:key=value`` pairs, prefix removed."""
    cut = len(prefix) + 1
    return [(k[cut:], v) for k, v in params if k.startswith(prefix) and len(k) > cut]


# --------------------------------------------------------------------------------------------
# Pure: values and records
# --------------------------------------------------------------------------------------------

VDI_TYPE_NAMES = {"system": "System", "user": "User", "ephemeral": "Ephemeral",
                  "suspend": "Suspend", "crashdump": "Crashdump", "ha_statefile": "HA statefile",
                  "metadata": "Metadata", "redo_log": "Redo log", "rrd": "rrd",
                  "pvs_cache": "PVS cache", "cbt_metadata": "CBT metadata"}


def qualifier(field: Field) -> str:
    """The ``( RO)``/``( RW)``/``(MRO)``/``(MRW)``/``(SRO)``/``(SRW)`` suffix (print_field)."""
    if field.kind in ("map",):
        return "(MRW)" if field.writable else "(MRO)"
    if field.kind in ("set", "tags", "ops") or field.kind.startswith("refs:"):
        return "(SRW)" if field.writable else "(SRO)"
    return "( RW)" if field.writable else "( RO)"


def format_map(value: Dict[str, str]) -> str:
    # Record_util.s2sm_to_string "; "
    return "; ".join("%s: %s" % (k, v) for k, v in value.items())


def _datetime_text(value) -> str:
    # xmlrpc.client.DateTime keeps the wire text in .value ("20250319T04:16:24Z").
    return getattr(value, "value", None) or str(value)


def ref_uuid(lookup: Lookup, cls: str, ref: str) -> str:
    if not ref or ref == NULL_REF:
        return NOT_IN_DATABASE
    record = lookup(cls, ref)
    return record.get("uuid", NOT_IN_DATABASE) if record else NOT_IN_DATABASE


def ref_name(lookup: Lookup, cls: str, ref: str) -> str:
    if not ref or ref == NULL_REF:
        return NOT_IN_DATABASE
    record = lookup(cls, ref)
    return record.get("name_label", NOT_IN_DATABASE) if record else NOT_IN_DATABASE


def field_source(field: Field, record: dict, lookup: Lookup) -> Optional[dict]:
    """The record a field reads from (the object itself, or e.g. its VM_guest_metrics)."""
    if field.via is None:
        return record
    ref_key, cls = field.via
    ref = record.get(ref_key, NULL_REF)
    if not ref or ref == NULL_REF:
        return None
    return lookup(cls, ref)


def format_value(field: Field, record: dict, lookup: Lookup) -> str:
    """The string xe prints for one field (records.ml ``get``)."""
    source = field_source(field, record, lookup)
    if source is None:
        return NOT_IN_DATABASE
    kind = field.kind
    if kind == "srhost":
        return _sr_host(source, lookup)
    value = source.get(field.key)
    if value is None:
        return ""
    if kind == "bool":
        return "true" if value is True or str(value).lower() == "true" else "false"
    if kind == "enum":
        return str(value).lower()
    if kind == "vditype":
        return VDI_TYPE_NAMES.get(str(value).lower(), str(value))
    if kind == "datetime":
        return _datetime_text(value)
    if kind == "map":
        return format_map(value)
    if kind == "set":
        return "; ".join(str(v) for v in value)
    if kind == "tags":
        return ", ".join(str(v) for v in value)
    if kind == "ops":
        return "; ".join(str(v) for v in value.values())
    if kind.startswith("ref:"):
        return ref_uuid(lookup, kind[4:], value)
    if kind.startswith("refname:"):
        return ref_name(lookup, kind[8:], value)
    if kind.startswith("refs:"):
        return "; ".join(ref_uuid(lookup, kind[5:], v) for v in value)
    return str(value)


def _sr_host(sr: dict, lookup: Lookup) -> str:
    # A local SR shows its host's name-label; a shared one "<shared>" (records.ml sr_record).
    pbds = sr.get("PBDs") or []
    if len(pbds) > 1 or sr.get("shared") is True:
        return "<shared>"
    if not pbds:
        return NOT_IN_DATABASE
    pbd = lookup("PBD", pbds[0])
    return ref_name(lookup, "host", pbd.get("host", NULL_REF)) if pbd else NOT_IN_DATABASE


def map_value(field: Field, record: dict, lookup: Lookup) -> Optional[Dict[str, str]]:
    """The map behind a map field, or None when the field is not a map."""
    if field.kind != "map":
        return None
    source = field_source(field, record, lookup)
    if source is None:
        return {}
    return dict(source.get(field.key) or {})


def set_value(field: Field, record: dict, lookup: Lookup) -> Optional[List[str]]:
    if field.kind == "tags" or field.kind == "set":
        return list(record.get(field.key) or [])
    if field.kind == "ops":
        return list((record.get(field.key) or {}).values())
    if field.kind.startswith("refs:"):
        return [ref_uuid(lookup, field.kind[5:], r) for r in record.get(field.key) or []]
    return None


def find_field(spec: ClassSpec, name: str) -> Field:
    for field in spec.fields:
        if field.name == name:
            return field
    # records.ml field_lookup raises CLI_failed_to_find_param, shown as a raw server error.
    raise XeFailure(format_server_error("Missing parameter", [name]))


def field_type(spec: ClassSpec, name: str) -> Tuple[str, Field]:
    """cli_operations.ml get_field_type: ('normal'|'map'|'set', field) for a filter/set name."""
    for field in spec.fields:
        if field.name == name:
            return "normal", field
    if ":" in name:
        base = name.split(":", 1)[0]
        for field in spec.fields:
            if field.name == base:
                if field.kind == "map":
                    return "map", field
                if qualifier(field).startswith("(S"):
                    return "set", field
                raise _cli_failure("Field '%s' is not a set or map" % field.name)
        raise _cli_failure("Unknown field '%s'" % name)
    # Old syntax: other-config-key=value (longest map name first, then sets).
    for group in ("map", "set"):
        candidates = [f for f in spec.fields
                      if (f.kind == "map") == (group == "map")
                      and (group == "map" or qualifier(f).startswith("(S"))]
        for field in sorted(candidates, key=lambda f: -len(f.name)):
            if name.startswith(field.name + "-"):
                return group, field
    raise _cli_failure("Unknown field '%s'" % name)


def filter_records(spec: ClassSpec, records: List[dict], filters: Params,
                   lookup: Lookup) -> List[dict]:
    """Keep records matching every ``field=value`` (cli_operations.ml filter_records_on_fields)."""
    for name, wanted in filters:
        if not records:
            return []
        kind, field = field_type(spec, name)
        key = name[len(field.name) + 1:]
        if kind == "normal":
            records = [r for r in records if format_value(field, r, lookup) == wanted]
        elif kind == "map":
            records = [r for r in records
                       if (map_value(field, r, lookup) or {}).get(key) == wanted]
        else:
            if key != "contains":
                raise _cli_failure(
                    "Invalid syntax for set filtering (should be set-param:contains=key)")
            records = [r for r in records if wanted in (set_value(field, r, lookup) or [])]
    return records


def list_filters(spec: ClassSpec, params: Params) -> Params:
    user = [(k, v) for k, v in params
            if k != "params" and k not in STD_PARAMS and not k.startswith("database:")]
    return list(spec.default_filters) + user


def chosen_fields(spec: ClassSpec, params: Params) -> List[Field]:
    """``params=a,b`` / ``params=all`` / the class default, in record order (select_fields)."""
    wanted = param(params, "params")
    if wanted is None:
        names = list(spec.default_params)
    elif wanted == "all":
        names = []
    else:
        names = wanted.split(",")
    if not names:
        return list(spec.fields)
    return [f for f in spec.fields if f.name in names]


def record_rows(fields: Sequence[Field], record: dict, lookup: Lookup) -> List[Tuple[str, str]]:
    return [("%s %s" % (f.name, qualifier(f)), format_value(f, record, lookup)) for f in fields]


def format_record(rows: Sequence[Tuple[str, str]]) -> str:
    """cli_printer.ml multi_line_record: first name left-aligned, the rest right-aligned."""
    if not rows:
        return "\n"
    width = 4 + max(len(name) for name, _ in rows)
    lines = [rows[0][0].ljust(width) + ": " + rows[0][1]]
    lines += [name.rjust(width) + ": " + value for name, value in rows[1:]]
    return "\n".join(lines) + "\n"


def format_table(tables: Sequence[Sequence[Tuple[str, str]]]) -> str:
    """A PTable as the client prints it: each record, a newline, then print_endline's newline."""
    return "".join(format_record(rows) + "\n" + "\n" for rows in tables)


def escape_commas(text: str) -> str:
    return "".join({",": "\\,", "\\": "\\\\"}.get(c, c) for c in text)


def format_minimal(values: Sequence[str]) -> str:
    """--minimal: the first field of each record, commas escaped, comma-separated, one line."""
    return ",".join(escape_commas(v) for v in values) + "\n"


def format_server_error(code: str, params: Sequence[str]) -> str:
    """A xapi failure as xe prints it (cli_util.ml server_error + newcli.ml Error)."""
    doc = ERROR_DOCS.get(code)
    if doc is None:
        return "Error code: %s\nError parameters: %s" % (code, ", ".join(params))
    text, names = doc
    lines = [text]
    for i in range(max(len(names), len(params))):
        name = names[i] if i < len(names) else "<extra>"
        value = params[i] if i < len(params) else "<unknown>"
        lines.append("%s: %s" % (name, value))
    return "\n".join(lines)


def login_failure_text(details: Sequence[str]) -> str:
    # xapi_cli.ml: SESSION_AUTHENTICATION_FAILED becomes a parameter error.
    if not details[1:] or details[1] == "":
        return "Username/password must be specified\n" + USAGE_HINT
    return "Authentication failed\n" + USAGE_HINT


# --------------------------------------------------------------------------------------------
# Commands: which exist, what they require (checked before connecting, as xapi_cli.ml does)
# --------------------------------------------------------------------------------------------

PARAM_COMMANDS = {
    "list": (),
    "param-list": ("uuid",),
    "param-get": ("uuid", "param-name"),
    "param-set": ("uuid",),
    "param-add": ("uuid", "param-name"),
    "param-remove": ("uuid", "param-name", "param-key"),
    "param-clear": ("uuid", "param-name"),
}

OTHER_COMMANDS = {
    "host-call-plugin": ("host-uuid", "plugin", "fn"),
    "update-upload": ("file-name",),
    "vm-start": (),
    "vm-shutdown": (),
    "vm-data-source-list": (),
    "vm-data-source-query": ("data-source",),
    "help": (),
}


def resolve_command(name: str) -> Tuple[str, Optional[ClassSpec], Tuple[str, ...]]:
    """(operation, class spec or None, required params); XeFailure for an unknown command."""
    if name in OTHER_COMMANDS:
        return name, None, OTHER_COMMANDS[name]
    for cli, spec in CLASSES.items():
        prefix = cli + "-"
        if name.startswith(prefix) and name[len(prefix):] in PARAM_COMMANDS:
            op = name[len(prefix):]
            if spec.cli == "message" and op not in ("list", "param-list", "param-get"):
                break
            return op, spec, PARAM_COMMANDS[op]
    raise _param_error("Unknown command", name)


def help_text() -> str:
    names = sorted(list(OTHER_COMMANDS) + [
        "%s-%s" % (cli, op) for cli in CLASSES for op in PARAM_COMMANDS
        if not (cli == "message" and op not in ("list", "param-list", "param-get"))])
    return ("Usage: xe <cmd> [-s server] [-p port] ([-u username] [-pw password] or "
            "[-pwf <password file>]) <other arguments>\n\nCommands:\n    "
            + ", ".join(names) + "\n")


# --------------------------------------------------------------------------------------------
# I/O: session, record cache, command implementations
# --------------------------------------------------------------------------------------------

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


def _object_ref(session, spec: ClassSpec, uuid: str) -> str:
    return getattr(session.xenapi, spec.xapi).get_by_uuid(uuid)


def cmd_list(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    records = list(cache.all(spec.xapi).values())
    shown = filter_records(spec, records, list_filters(spec, params), cache.lookup)
    if is_true(param(params, "all")):
        shown = records
    fields = chosen_fields(spec, params)
    out.table([record_rows(fields, r, cache.lookup) for r in shown])


def cmd_param_list(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    ref = _object_ref(session, spec, param(params, "uuid") or "")
    record = cache.all(spec.xapi)[ref]
    out.table([record_rows(spec.fields, record, cache.lookup)])


def cmd_param_get(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    ref = _object_ref(session, spec, param(params, "uuid") or "")
    record = cache.all(spec.xapi)[ref]
    field = find_field(spec, param(params, "param-name") or "")
    key = param(params, "param-key")
    values = map_value(field, record, cache.lookup)
    if key is not None and values is not None:
        if key not in values:
            raise _cli_failure("Key %s not found in map" % key)
        out.lines([values[key]])
    else:
        out.lines([format_value(field, record, cache.lookup)])


def _api(session, spec: ClassSpec):
    return getattr(session.xenapi, spec.xapi)


def _set_scalar(session, spec: ClassSpec, ref: str, field: Field, value: str) -> None:
    api = _api(session, spec)
    if field.kind == "bool":
        if value.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise _cli_failure("Parameter %s must be a boolean (true or false)" % field.name)
        getattr(api, "set_" + field.key)(ref, is_true(value))
    elif field.kind == "int":
        try:
            int(value)
        except ValueError:
            raise _cli_failure("Parameter %s must be an integer" % field.name)
        getattr(api, "set_" + field.key)(ref, value)
    else:
        getattr(api, "set_" + field.key)(ref, value)


def cmd_param_set(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    ref = _object_ref(session, spec, param(params, "uuid") or "")
    record = cache.all(spec.xapi)[ref]
    api = _api(session, spec)
    for name, value in params:
        if name == "uuid" or name in STD_PARAMS:
            continue
        kind, field = field_type(spec, name)
        if kind == "map":
            key = name[len(field.name) + 1:]
            if not field.writable:
                raise _cli_failure("Map field '%s' is read-only." % field.name)
            # Key by key, never a whole-map write: other writers keep their keys.
            if key in (map_value(field, record, cache.lookup) or {}):
                getattr(api, "remove_from_" + field.key)(ref, key)
            getattr(api, "add_to_" + field.key)(ref, key, value)
        elif kind == "set":
            raise _cli_failure("Cannot param-set on set fields")
        else:
            if not field.writable:
                raise _cli_failure("Field '%s' is read-only." % name)
            _set_scalar(session, spec, ref, field, value)


def cmd_param_add(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    ref = _object_ref(session, spec, param(params, "uuid") or "")
    cache.all(spec.xapi)
    field = find_field(spec, param(params, "param-name") or "")
    api = _api(session, spec)
    if field.kind == "tags" and field.writable:
        key = param(params, "param-key")
        if key is None:
            raise _cli_failure("When adding a key to a set, use the syntax: *-param-add "
                               "param-name=<name> param-key=<key>")
        api.add_tags(ref, key)
    elif field.kind == "map" and field.writable:
        skip = ("uuid", "param-name", "param-key") + STD_PARAMS
        for key, value in params:
            if key not in skip:
                getattr(api, "add_to_" + field.key)(ref, key, value)
    elif field.kind == "map" or qualifier(field).startswith("(S"):
        raise _cli_failure("Parameter is read-only")
    else:
        raise _cli_failure("Can only add to parameters of type Set or Map")


def cmd_param_remove(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    ref = _object_ref(session, spec, param(params, "uuid") or "")
    record = cache.all(spec.xapi)[ref]
    field = find_field(spec, param(params, "param-name") or "")
    key = param(params, "param-key") or ""
    api = _api(session, spec)
    if field.kind == "tags" and field.writable:
        if key not in record.get(field.key, []):
            raise _cli_failure("Key %s is not in the set" % key)
        api.remove_tags(ref, key)
    elif field.kind == "map" and field.writable:
        if key not in (map_value(field, record, cache.lookup) or {}):
            raise _cli_failure("Key %s is not in map" % key)
        getattr(api, "remove_from_" + field.key)(ref, key)
    elif field.kind == "map" or qualifier(field).startswith("(S"):
        raise _cli_failure("Cannot remove parameters from read-only map")
    else:
        raise _cli_failure("Can only remove from parameters of type Set or Map")


def cmd_param_clear(session, spec: ClassSpec, params: Params, out: Output) -> None:
    cache = RecordCache(session)
    ref = _object_ref(session, spec, param(params, "uuid") or "")
    record = cache.all(spec.xapi)[ref]
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
        raise _cli_failure("Can only clear RW parameters")


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
        raise _cli_failure("No matching VMs found")
    if len(refs) > 1 and not is_true(param(params, "multiple")):
        raise _cli_failure("Multiple matches VMs found. Operation can only be performed on one "
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


def read_password_file(path: str) -> Tuple[str, str]:
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except (OSError, IOError):
        raise XeFailure("Error opening password file '%s'" % path)
    if len(lines) < 2:
        raise XeFailure("Error: password file format: expecting username on the first line, "
                        "password on the second line")
    return lines[0], lines[1]


def open_session(conn: ConnOptions):
    """Local Unix socket unless ``-s`` names a server (then plain HTTP over TCP)."""
    import XenAPI
    from xscontainer.xapi import session as xsession
    username, password = conn.username, conn.password
    if conn.password_file:
        username, password = read_password_file(conn.password_file)
    unreachable = XeFailure("Unable to contact server. Please check server and port settings.")
    if conn.server is None:
        try:
            return xsession.open_local_session()
        except XSContainerError as exc:
            cause = exc.__cause__
            if isinstance(cause, XenAPI.Failure):
                raise XeFailure(format_server_error(cause.details[0], cause.details[1:]))
            raise unreachable
    host = conn.server
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host  # an IPv6 literal
    url = "http://%s:%d/" % (host, conn.port if conn.port is not None else 80)
    session = XenAPI.Session(url)
    try:
        session.xenapi.login_with_password(username, password, "1.0", "xe")
    except XenAPI.Failure as exc:
        if exc.details and exc.details[0] == "SESSION_AUTHENTICATION_FAILED":
            raise XeFailure(login_failure_text(exc.details))
        raise XeFailure(format_server_error(exc.details[0], exc.details[1:]))
    except (OSError, IOError):
        raise unreachable
    return session


def run(argv: Sequence[str], stdout, stderr, session_factory=open_session) -> int:
    """Run one xe invocation; returns the exit code (0, or 1 on any error like the real xe)."""
    import XenAPI
    try:
        inv = parse_argv(argv)
        if inv.command is None:
            # newcli.ml: a bare "xe" prints the usage on stderr and exits 0.
            stderr.write(help_text())
            return 0
        if inv.command == "help" or inv.help:
            stdout.write(help_text())
            return 0
        op, spec, required = resolve_command(inv.command)
        require(inv.params, required)
        out = Output(is_true(param(inv.params, "minimal")))
        session = session_factory(inv.conn)
        try:
            try:
                if spec is not None:
                    PARAM_IMPLS[op](session, spec, inv.params, out)
                elif op == "update-upload":
                    cmd_update_upload(session, inv.conn, inv.params, out)
                else:
                    OTHER_IMPLS[op](session, inv.params, out)
            except XenAPI.Failure as exc:
                details = [str(d) for d in exc.details] or ["INTERNAL_ERROR"]
                cache = RecordCache(session)
                raise XeFailure(format_server_error(
                    details[0], [ref_convert(cache, d) for d in details[1:]]))
        finally:
            try:
                session.xenapi.session.logout()
            except Exception:  # the session may already be gone; nothing to report
                pass
        stdout.write(out.text())
        return 0
    except XeFailure as exc:
        stderr.write(exc.message.rstrip("\n") + "\n")
        return 1
    except (OSError, IOError, EOFError, xmlrpc.client.Error):
        stderr.write("Lost connection to the server.\n")
        return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    code = run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
