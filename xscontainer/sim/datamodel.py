"""The xapi datamodel subset the simulator serves: classes, fields, types, defaults, enums.

FIELDS is Appendix A of the xapi contract (``contract.py``): per class, the public fields as
(name, xapi type, RW|RO, datamodel default). Values are stored json-native (ints as
int, datetimes as ``YYYYMMDDTHH:MM:SSZ`` strings) and converted by ``encode``/``decode`` at the
wire, so the persistence file and the wire each get their own natural form.
"""

import datetime
import re
import xmlrpc.client
from typing import Any, Dict, List, NamedTuple, Optional

from xscontainer.sim.contract import ENUMS, FIELDS
from xscontainer.sim.failures import XapiFailure

NULL_REF = "OpaqueRef:NULL"
EPOCH = "19700101T00:00:00Z"

# Classes whose rows live in the simulated database (event is not a table).
TABLES = [c for c in FIELDS if c != "event"]
# xapi keeps these only in memory (datamodel PersistNothing): lost on restart.
VOLATILE_TABLES = ("session", "task")


class Kind(NamedTuple):
    """A parsed xapi type: kind is string|int|float|bool|datetime|ref|enum|set|map|record."""
    kind: str
    target: Optional[str] = None      # ref: the class; enum: the enum name
    elem: Optional["Kind"] = None     # set: element kind; map: value kind


class Field(NamedTuple):
    name: str
    kind: Kind
    rw: bool
    default: Any


_SCALARS = {"string": "string", "int": "int", "float": "float", "bool": "bool",
            "datetime": "datetime"}


def parse_type(text: str) -> Kind:
    text = text.strip()
    if text in _SCALARS:
        return Kind(_SCALARS[text])
    m = re.match(r"^\((.+?) -> (.+)\) map$", text)
    if m:
        return Kind("map", elem=parse_type(m.group(2)))
    if text.endswith(" set"):
        return Kind("set", elem=parse_type(text[:-4]))
    if text.endswith(" ref"):
        return Kind("ref", target=text[:-4])
    if text.startswith("enum "):
        return Kind("enum", target=text[5:])
    return Kind("record")


def _zero(kind: Kind) -> Any:
    return {"string": "", "int": 0, "float": 0.0, "bool": False, "datetime": EPOCH,
            "ref": NULL_REF, "set": [], "map": {}, "record": {}}.get(
                kind.kind, ENUMS.get(kind.target or "", [""])[0])


def parse_default(kind: Kind, text: str) -> Any:
    if text == "":
        return _zero(kind)
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if kind.kind == "bool":
        return text == "true"
    if kind.kind == "int":
        return int(text)
    if kind.kind == "float":
        return float(text)
    if kind.kind == "ref":
        return NULL_REF
    if kind.kind == "set":
        inner = text.strip("{}").strip()
        return [int(inner)] if inner else []
    if kind.kind == "map":
        return dict(re.findall(r'"([^"]*)" -> "([^"]*)"', text))
    return text


def _build_fields() -> Dict[str, Dict[str, Field]]:
    out = {}  # type: Dict[str, Dict[str, Field]]
    for cls, rows in FIELDS.items():
        table = {}
        for name, typ, rw, default in rows:
            kind = parse_type(typ)
            table[name] = Field(name, kind, rw == "RW", parse_default(kind, default))
        out[cls] = table
    return out


CLASSES = _build_fields()

# Child ref field -> parent set field kept in step (xapi's one-to-many relations).
RELATIONS = {
    ("VBD", "VM"): ("VM", "VBDs"),
    ("VBD", "VDI"): ("VDI", "VBDs"),
    ("VIF", "VM"): ("VM", "VIFs"),
    ("VIF", "network"): ("network", "VIFs"),
    ("VDI", "SR"): ("SR", "VDIs"),
    ("PBD", "SR"): ("SR", "PBDs"),
    ("PBD", "host"): ("host", "PBDs"),
    ("PIF", "host"): ("host", "PIFs"),
    ("PIF", "network"): ("network", "PIFs"),
    ("VM", "resident_on"): ("host", "resident_VMs"),
}


def format_datetime(when: datetime.datetime) -> str:
    return when.strftime("%Y%m%dT%H:%M:%SZ")


def now_string(clock: Any) -> str:
    return format_datetime(datetime.datetime.utcfromtimestamp(clock()))


def default_record(cls: str) -> Dict[str, Any]:
    return {name: _copy(f.default) for name, f in CLASSES[cls].items()}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# ---- wire conversion ---------------------------------------------------------------------

def encode(kind: Kind, value: Any) -> Any:
    """Stored value -> what goes into the XML-RPC response (int64 as strings, xapi style)."""
    k = kind.kind
    if k == "int":
        return str(int(value))
    if k == "float":
        return float(value)
    if k == "bool":
        return bool(value)
    if k == "datetime":
        return xmlrpc.client.DateTime(str(value))
    if k == "set":
        return [encode(kind.elem, v) for v in value]  # type: ignore
    if k == "map":
        return {str(key): encode(kind.elem, v) for key, v in value.items()}  # type: ignore
    if k == "record":
        return value
    return str(value)


def encode_record(cls: str, record: Dict[str, Any]) -> Dict[str, Any]:
    fields = CLASSES[cls]
    return {name: encode(fields[name].kind, value) for name, value in record.items()
            if name in fields}


def decode(kind: Kind, value: Any, name: str) -> Any:
    """A parameter from the wire -> stored form; leniency as in ocaml-rpc (§1.3)."""
    k = kind.kind
    bad = XapiFailure("FIELD_TYPE_ERROR", name)
    if k in ("string", "ref"):
        if not isinstance(value, str):
            raise bad
        return value
    if k == "int":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.match(r"^-?[0-9]+$", value.strip()):
            return int(value)
        raise bad
    if k == "float":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if k == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if k == "datetime":
        return decode_datetime(value, name)
    if k == "enum":
        if not isinstance(value, str):
            raise bad
        values = ENUMS.get(kind.target or "")
        if values is None:
            return value
        for canonical in values:
            if canonical.lower() == value.lower():
                return canonical
        raise XapiFailure("INVALID_VALUE", name, value)
    if k == "set":
        if not isinstance(value, list):
            raise bad
        return [decode(kind.elem, v, name) for v in value]  # type: ignore
    if k == "map":
        if not isinstance(value, dict):
            raise bad
        return {str(key): decode(kind.elem, v, name) for key, v in value.items()}  # type: ignore
    return value


def decode_datetime(value: Any, name: str) -> str:
    if isinstance(value, xmlrpc.client.DateTime):
        value = value.value
    if isinstance(value, datetime.datetime):
        return format_datetime(value)
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y%m%dT%H:%M:%SZ", "%Y%m%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ",
                    "%Y-%m-%dT%H:%M:%S"):
            try:
                return format_datetime(datetime.datetime.strptime(text, fmt))
            except ValueError:
                continue
    raise XapiFailure("FIELD_TYPE_ERROR", name)


def field(cls: str, name: str) -> Field:
    return CLASSES[cls][name]


def has_field(cls: str, name: str) -> bool:
    return name in CLASSES.get(cls, {})


def table_names() -> List[str]:
    return list(TABLES)
