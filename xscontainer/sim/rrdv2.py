"""xcp-rrdd's plugin protocol v2 as rrdd reads it (pure; rrd_protocol_v2.ml
``make_payload_reader``; the facts followed are listed in sim/rrdd.py)."""

import json
import struct
import zlib
from typing import Any, Dict, List, NamedTuple, Tuple

HEADER = b"DATASOURCES"


class InvalidHeader(Exception):
    pass


class NoUpdate(Exception):
    pass


class InvalidChecksum(Exception):
    pass


class InvalidPayload(Exception):
    pass


class ReadError(Exception):
    pass


class Ds(NamedTuple):
    name: str
    owner: Tuple[str, ...]    # ("host",), ("vm", uuid) or ("sr", uuid)
    value_type: str
    ds_type: str
    description: str
    units: str
    minimum: float
    maximum: float
    default: bool
    value: Any = None


class Payload(NamedTuple):
    timestamp: float
    datasources: List[Ds]


def _text(entry: Dict[str, Any], key: str, default: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str):  # Rpc.string_of_rpc accepts only strings
        raise InvalidPayload("%s is not a string" % key)
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidPayload("not a float: %r" % text)


def _ds_of_entry(name: str, entry: Any) -> Ds:
    if not isinstance(entry, list):
        raise InvalidPayload("data source %r is not an object" % name)
    fields = dict(entry)
    if "value_type" not in fields:
        raise InvalidPayload("data source %r has no value_type" % name)
    value_type = _text(fields, "value_type", "")
    if value_type not in ("float", "int64"):
        raise InvalidPayload("bad value_type %r" % value_type)
    ds_type = _text(fields, "type", "absolute").lower()
    if ds_type not in ("gauge", "absolute", "derive"):
        raise InvalidPayload("bad type %r" % ds_type)
    owner = tuple(_text(fields, "owner", "host").lower().split(" "))
    if not (owner == ("host",) or (len(owner) == 2 and owner[0] in ("vm", "sr"))):
        raise InvalidPayload("bad owner %r" % (owner,))
    default = _text(fields, "default", "false")
    if default not in ("true", "false"):  # OCaml's bool_of_string
        raise InvalidPayload("bad default %r" % default)
    if _text(fields, "transform", "identity") not in ("identity", "inverse"):
        raise InvalidPayload("bad transform")
    return Ds(name, owner, value_type, ds_type, _text(fields, "description", ""), _text(fields, "units", ""),
              _float(_text(fields, "min", "-infinity")), _float(_text(fields, "max", "infinity")),
              default == "true")


def parse_metadata(text: bytes) -> List[Ds]:
    # The C library counted a trailing NUL; rrdd trims NULs before parsing.
    try:
        doc = json.loads(text.strip(b"\0").decode("utf-8"), object_pairs_hook=list)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload("metadata is not JSON: %s" % exc)
    sources = dict(doc).get("datasources") if isinstance(doc, list) else None
    if not isinstance(sources, list):
        raise InvalidPayload("no datasources object")
    return [_ds_of_entry(name, entry) for name, entry in sources]


class PayloadReader:
    """One plugin's reader: remembers the last CRCs and the parsed metadata, as rrdd does."""

    def __init__(self) -> None:
        self.last_data_crc = 0
        self.last_metadata_crc = 0
        self.cached = []  # type: List[Ds]

    def read(self, buf: bytes) -> Payload:
        try:
            return self._read(buf)
        except (InvalidHeader, NoUpdate, InvalidChecksum, InvalidPayload):
            raise
        except (struct.error, IndexError, ValueError) as exc:  # Cstruct's bounds checks
            raise ReadError(str(exc))

    def _read(self, buf: bytes) -> Payload:
        if buf[:len(HEADER)] != HEADER:
            raise InvalidHeader()
        start = len(HEADER)
        data_crc, metadata_crc, count = struct.unpack_from(">III", buf, start)
        if data_crc == self.last_data_crc:
            raise NoUpdate()
        stamped_start = start + 12
        stamped = buf[stamped_start:stamped_start + 8 + 8 * count]
        if len(stamped) != 8 + 8 * count:
            raise ReadError("file shorter than its %d values" % count)
        (timestamp,) = struct.unpack_from(">d", stamped, 0)
        if zlib.crc32(stamped) & 0xFFFFFFFF != data_crc:
            raise InvalidChecksum("data")
        self.last_data_crc = data_crc
        if metadata_crc != self.last_metadata_crc:
            length_at = stamped_start + 8 + 8 * count
            (length,) = struct.unpack_from(">I", buf, length_at)
            metadata = buf[length_at + 4:length_at + 4 + length]
            if len(metadata) != length:
                raise ReadError("file shorter than its metadata")
            if zlib.crc32(metadata) & 0xFFFFFFFF != metadata_crc:
                raise InvalidChecksum("metadata")
            self.last_metadata_crc = metadata_crc
            self.cached = parse_metadata(metadata)
        values = []
        for index, ds in enumerate(self.cached):
            fmt = ">q" if ds.value_type == "int64" else ">d"
            (value,) = struct.unpack_from(fmt, buf, stamped_start + 8 + 8 * index)
            values.append(ds._replace(value=value))
        self.cached = values
        return Payload(timestamp, values)
