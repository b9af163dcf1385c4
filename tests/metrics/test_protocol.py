"""The protocol-v2 writer against xcp-rrdd's layout, read back by the simulator's rrdd reader
(written from rrd_protocol_v2.ml, independently of the writer), with both CRCs checked."""

import json
import math
import struct
import zlib

import pytest

from xscontainer.metrics.protocol import HEADER_SIZE, DataSource, encode_payload, metadata_json
from xscontainer.sim.rrdv2 import InvalidChecksum, InvalidHeader, InvalidPayload, NoUpdate, PayloadReader, ReadError

VM = "0b1d2c3e-0000-4000-8000-000000000001"
CPU = DataSource("container_web_cpu", 12.5, "float", "gauge", "vm " + VM, "%", "CPU", 0.0)
MEM = DataSource("container_web_memory", 1 << 40, "int64", "gauge", "vm " + VM, "B", "", 0.0)
RX = DataSource("container_web_net_rx", 7, "int64", "derive", "vm " + VM, "B/s", "", 0.0)


def test_layout_field_by_field():
    payload = encode_payload(1700000000.25, [CPU, MEM])
    assert payload[:11] == b"DATASOURCES"
    data_crc, meta_crc, count = struct.unpack(">III", payload[11:23])
    assert count == 2
    assert struct.unpack(">d", payload[23:31]) == (1700000000.25,)
    assert struct.unpack(">d", payload[31:39]) == (12.5,)
    assert struct.unpack(">q", payload[39:47]) == (1 << 40,)
    (length,) = struct.unpack(">I", payload[47:51])
    metadata = payload[51:]
    assert len(metadata) == length
    assert data_crc == zlib.crc32(payload[23:47])
    assert meta_crc == zlib.crc32(metadata)
    assert HEADER_SIZE == 31


def test_metadata_fields_are_strings_in_value_order():
    doc = json.loads(metadata_json([MEM, CPU]).decode("ascii"))
    assert list(doc["datasources"]) == ["container_web_memory", "container_web_cpu"]
    assert doc["datasources"]["container_web_cpu"] == {
        "description": "CPU", "owner": "vm " + VM, "value_type": "float", "type": "gauge",
        "default": "true", "units": "%", "min": "0.0", "max": "inf"}
    assert "description" not in doc["datasources"]["container_web_memory"]


def test_reader_reads_what_the_writer_wrote():
    reader = PayloadReader()
    payload = reader.read(encode_payload(10.0, [CPU, MEM, RX]))
    assert payload.timestamp == 10.0
    assert [(d.name, d.owner, d.value, d.ds_type, d.units, d.minimum, d.maximum, d.default)
            for d in payload.datasources] == [
        ("container_web_cpu", ("vm", VM), 12.5, "gauge", "%", 0.0, math.inf, True),
        ("container_web_memory", ("vm", VM), 1 << 40, "gauge", "B", 0.0, math.inf, True),
        ("container_web_net_rx", ("vm", VM), 7, "derive", "B/s", 0.0, math.inf, True)]


def test_same_reading_twice_is_no_update_and_new_values_reuse_the_metadata():
    reader = PayloadReader()
    first = encode_payload(10.0, [CPU])
    reader.read(first)
    with pytest.raises(NoUpdate):
        reader.read(first)
    second = encode_payload(15.0, [CPU._replace(value=50.0)])
    assert reader.read(second).datasources[0].value == 50.0


def test_a_corrupt_value_fails_the_data_checksum():
    payload = bytearray(encode_payload(10.0, [CPU, MEM]))
    payload[35] ^= 0x01
    with pytest.raises(InvalidChecksum):
        PayloadReader().read(bytes(payload))


def test_a_corrupt_metadata_fails_the_metadata_checksum():
    payload = bytearray(encode_payload(10.0, [CPU]))
    payload[-5] ^= 0x01
    with pytest.raises(InvalidChecksum):
        PayloadReader().read(bytes(payload))


def test_bad_header_and_short_file():
    with pytest.raises(InvalidHeader):
        PayloadReader().read(b"DATASOURCEX" + encode_payload(1.0, [CPU])[11:])
    with pytest.raises(ReadError):
        PayloadReader().read(encode_payload(1.0, [CPU, MEM])[:40])


def test_trailing_padding_is_ignored():
    payload = encode_payload(3.0, [CPU]) + b"\0" * 4096
    assert PayloadReader().read(payload).datasources[0].value == 12.5


def test_metadata_rrdd_rejects():
    good = json.loads(metadata_json([CPU]).decode("ascii"))
    for field, value in (("value_type", "double"), ("type", "counter"), ("owner", "vm"), ("default", "yes"),
                         ("min", 0.0)):
        doc = json.loads(json.dumps(good))
        doc["datasources"]["container_web_cpu"][field] = value
        metadata = json.dumps(doc).encode()
        stamped = struct.pack(">dd", 1.0, 12.5)
        payload = b"DATASOURCES" + struct.pack(">III", zlib.crc32(stamped), zlib.crc32(metadata), 1) + stamped + \
            struct.pack(">I", len(metadata)) + metadata
        with pytest.raises(InvalidPayload):
            PayloadReader().read(payload)


def test_writer_refuses_what_rrdd_could_not_read():
    with pytest.raises(ValueError):
        metadata_json([CPU, CPU])
    with pytest.raises(ValueError):
        encode_payload(1.0, [MEM._replace(value=1 << 63)])
    with pytest.raises(ValueError):
        metadata_json([CPU._replace(ds_type="counter")])
