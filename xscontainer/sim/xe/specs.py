"""What xe knows about xapi's classes: the record schemas (a subset of records.ml), the default
list fields and filters, the error texts, and ``XeFailure``."""

from typing import Callable, List, NamedTuple, Optional, Tuple

from xscontainer.errors import XSContainerError


# records.ml prints this for a NULL or dangling reference ("nid").
NOT_IN_DATABASE = "<not in database>"
USAGE_HINT = "For usage run: 'xe help'"

Params = List[Tuple[str, str]]
# lookup(xapi_class, ref) -> record or None; the only way formatting reaches other objects.
Lookup = Callable[[str, str], Optional[dict]]


class XeFailure(XSContainerError):
    """A command failed; ``message`` is exactly what the real xe prints on stderr."""

    code = "XE_FAILURE"


def cli_failure(text: str) -> XeFailure:
    # Cli_util.Cli_failure in xapi_cli.ml: "Error: <text>".
    return XeFailure("Error: " + text)


def param_error(prefix: str, text: str) -> XeFailure:
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
