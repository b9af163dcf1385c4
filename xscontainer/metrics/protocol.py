"""xcp-rrdd plugin protocol v2, the writer's side: pure builders of the shared file's bytes.

Layout (xen-api ocaml/xcp-rrdd/lib/transport/base/rrd_protocol_v2.ml): "DATASOURCES", CRC32 of
(timestamp + values), CRC32 of the metadata, number of data sources, timestamp (double), one
8-byte value per data source (int64 or double, in the metadata's order), metadata length,
metadata JSON. Every integer and double is big-endian.
"""

import json
import math
import struct
import zlib
from typing import Dict, NamedTuple, Sequence, Union

HEADER = b"DATASOURCES"
VALUE_TYPES = ("int64", "float")
DS_TYPES = ("gauge", "absolute", "derive")
# Offsets of the fixed part, after the header: data CRC, metadata CRC, count, timestamp.
FIXED = struct.Struct(">IIId")
# What a reading rewrites last: the header, both CRCs, the count and the timestamp.
HEADER_SIZE = len(HEADER) + FIXED.size
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class DataSource(NamedTuple):
    name: str
    value: Union[int, float]
    value_type: str            # "int64" or "float"
    ds_type: str               # "gauge", "absolute" or "derive"
    owner: str                 # "host", "vm <uuid>" or "sr <uuid>"
    units: str = ""
    description: str = ""
    minimum: float = -math.inf
    maximum: float = math.inf
    default: bool = True       # rrdd records only default sources without a record_data_source


def _bound(value: float) -> str:
    # rrdd parses min/max with OCaml's float_of_string: "inf"/"-inf" and decimals are accepted.
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def metadata_entry(ds: DataSource) -> Dict[str, str]:
    # rrdd reads every field as a JSON string (Rrd_rpc.assoc_opt ... Rpc.string_of_rpc).
    entry = {
        "owner": ds.owner,
        "value_type": ds.value_type,
        "type": ds.ds_type,
        "default": "true" if ds.default else "false",
        "units": ds.units,
        "min": _bound(ds.minimum),
        "max": _bound(ds.maximum),
    }
    if ds.description:
        entry["description"] = ds.description
    return entry


def check(ds: DataSource) -> None:
    if ds.value_type not in VALUE_TYPES:
        raise ValueError("value_type of %r must be int64 or float" % ds.name)
    if ds.ds_type not in DS_TYPES:
        raise ValueError("type of %r must be gauge, absolute or derive" % ds.name)


def metadata_json(datasources: Sequence[DataSource]) -> bytes:
    """The metadata string; its key order is the order of the values (rrdd reads them so)."""
    names = [ds.name for ds in datasources]
    if len(set(names)) != len(names):
        raise ValueError("duplicate data-source names")
    for ds in datasources:
        check(ds)
    body = {"datasources": {ds.name: metadata_entry(ds) for ds in datasources}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def encode_value(ds: DataSource) -> bytes:
    if ds.value_type == "int64":
        value = int(ds.value)
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("value of %r does not fit in an int64" % ds.name)
        return struct.pack(">q", value)
    return struct.pack(">d", float(ds.value))


def encode_payload(timestamp: float, datasources: Sequence[DataSource]) -> bytes:
    """The whole file content for one reading."""
    metadata = metadata_json(datasources)
    stamped = struct.pack(">d", timestamp) + b"".join(encode_value(ds) for ds in datasources)
    data_crc = zlib.crc32(stamped) & 0xFFFFFFFF
    metadata_crc = zlib.crc32(metadata) & 0xFFFFFFFF
    return b"".join([
        HEADER,
        struct.pack(">III", data_crc, metadata_crc, len(datasources)),
        stamped,
        struct.pack(">I", len(metadata)),
        metadata,
    ])


def payload_size(datasources: Sequence[DataSource]) -> int:
    return len(HEADER) + FIXED.size + 8 * len(datasources) + 4 + len(metadata_json(datasources))


__all__ = ["DataSource", "HEADER", "encode_payload", "metadata_json", "payload_size", "metadata_entry"]
