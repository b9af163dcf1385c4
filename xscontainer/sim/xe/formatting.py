"""Values, records, filters and error texts as xe prints them (pure: literal records in, text out)."""

from typing import Dict, List, Optional, Sequence, Tuple

from xscontainer.sim.xe.argv import param
from xscontainer.sim.xe.specs import (ERROR_DOCS, NOT_IN_DATABASE, STD_PARAMS, USAGE_HINT, ClassSpec, Field,
                                      Lookup, Params, XeFailure, cli_failure)
from xscontainer.xapi import NULL_REF  # xe is a client: it uses the client's name for the null ref


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
                raise cli_failure("Field '%s' is not a set or map" % field.name)
        raise cli_failure("Unknown field '%s'" % name)
    # Old syntax: other-config-key=value (longest map name first, then sets).
    for group in ("map", "set"):
        candidates = [f for f in spec.fields
                      if (f.kind == "map") == (group == "map")
                      and (group == "map" or qualifier(f).startswith("(S"))]
        for field in sorted(candidates, key=lambda f: -len(f.name)):
            if name.startswith(field.name + "-"):
                return group, field
    raise cli_failure("Unknown field '%s'" % name)


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
                raise cli_failure(
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
