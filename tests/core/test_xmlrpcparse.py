"""The C-built XML-RPC response parser gives what xmlrpc.client's own gives (values, faults,
errors), on generated values and on a simulator's VM record."""

import datetime
import gc
import random
import xml.parsers.expat
import xmlrpc.client

import pytest

from xscontainer.xapi.localhttp import LocalSocketTransport
from xscontainer.xapi.xmlrpcparse import parse_reply, tree_parser

TEXTS = ["", " ", "\n", "plain", "a&b", "<docker_info><Containers>1</Containers></docker_info>", "x > y < z",
         "'quoted' \"double\"", "caf\u00e9", "\u4e2d\u6587", "\U0001f433 whale", "tab\tand\r\nnewline", "]]>",
         "&amp; already escaped"]


def stock(body, **kwargs):
    parser, unmarshaller = xmlrpc.client.getparser(**kwargs)
    parser.feed(body)
    parser.close()
    return unmarshaller.close()


def ours(body, chunk=None, **kwargs):
    parser, unmarshaller = tree_parser(**kwargs)
    chunk = chunk or len(body) or 1
    for start in range(0, len(body), chunk):
        parser.feed(body[start:start + chunk])
    parser.close()
    return unmarshaller.close()


def random_value(rng, depth=0):
    kind = rng.randrange(10 if depth < 4 else 8)
    if kind == 0:
        return rng.choice(TEXTS)
    if kind == 1:
        return rng.choice([0, 1, -1, 2 ** 31 - 1, -2 ** 31])
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return rng.choice([0.0, -1.5, 1e300, 3.141592653589793])
    if kind == 4:
        return xmlrpc.client.DateTime(datetime.datetime(2026, 12, 2, rng.randrange(24), 0, rng.randrange(60)))
    if kind == 5:
        return xmlrpc.client.Binary(bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
    if kind == 6:
        return None
    if kind == 7:
        return "".join(rng.choice(TEXTS) for _ in range(rng.randrange(5)))
    if kind == 8:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return dict((rng.choice(TEXTS) + str(index), random_value(rng, depth + 1)) for index in range(rng.randrange(6)))


def response(*values):
    return xmlrpc.client.dumps(values, methodresponse=True, allow_none=True).encode("utf-8")


@pytest.mark.parametrize("seed", range(40))
def test_generated_values_parse_as_xmlrpc_client_parses_them(seed):
    rng = random.Random(seed)
    body = response(random_value(rng))
    assert ours(body) == stock(body)
    assert ours(body, chunk=rng.randrange(1, 64)) == stock(body)  # fed as a socket delivers it


@pytest.mark.parametrize("flags", [{}, {"use_datetime": True}, {"use_builtin_types": True}])
def test_dates_and_binaries_follow_the_transports_flags(flags):
    body = response({"when": xmlrpc.client.DateTime("20261202T18:00:00"), "blob": xmlrpc.client.Binary(b"\0\xff")})
    assert ours(body, **flags) == stock(body, **flags)
    assert type(ours(body, **flags)[0]["when"]) is type(stock(body, **flags)[0]["when"])
    assert type(ours(body, **flags)[0]["blob"]) is type(stock(body, **flags)[0]["blob"])


def test_untyped_and_spaced_values_are_strings():
    body = (b"<?xml version='1.0'?>\n<methodResponse>\n <params>\n  <param>\n   <value>\n    <struct>\n"
            b"     <member>\n      <name>Status</name>\n      <value>Success</value>\n     </member>\n"
            b"     <member><name>Value</name><value><array><data>\n"
            b"      <value>untyped</value><value></value><value><i8>12345678901</i8></value>\n"
            b"     </data></array></value></member>\n    </struct>\n   </value>\n  </param>\n </params>\n"
            b"</methodResponse>\n")
    assert ours(body) == stock(body) == ({"Status": "Success", "Value": ["untyped", "", 12345678901]},)


def test_a_fault_raises_the_same_fault():
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(42, "SESSION_INVALID & more"), methodresponse=True).encode()
    with pytest.raises(xmlrpc.client.Fault) as expected:
        stock(body)
    with pytest.raises(xmlrpc.client.Fault) as got:
        ours(body)
    assert (got.value.faultCode, got.value.faultString) == (expected.value.faultCode, expected.value.faultString)


@pytest.mark.parametrize("body, error", [
    (b"", xml.parsers.expat.ExpatError),
    (b"Internal Server Error", xml.parsers.expat.ExpatError),
    (b"<methodResponse><params><param><value><int>1</int></value></param></params>", xml.parsers.expat.ExpatError),
    (b"<html><body>502 Bad Gateway</body></html>", xmlrpc.client.ResponseError),
])
def test_what_is_not_xmlrpc_raises_what_xmlrpc_client_raises(body, error):
    with pytest.raises(error):
        stock(body)
    with pytest.raises(error):
        ours(body)


def test_the_local_transport_parses_with_it():
    parser, unmarshaller = LocalSocketTransport(1.0).getparser()
    body = response({"Status": "Success", "Value": "OpaqueRef:1"})
    parser.feed(body)
    parser.close()
    assert unmarshaller.close() == ({"Status": "Success", "Value": "OpaqueRef:1"},)
    assert type(parser).__module__ == "xscontainer.xapi.xmlrpcparse"


class Collections:
    """Counts the cyclic garbage collector's runs while active."""

    def __init__(self):
        self.runs = 0

    def __call__(self, phase, info):
        if phase == "start":
            self.runs += 1

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


def event_batch(records=100, fields=40):
    return response({"Status": "Success", "Value": {"token": "1", "valid_ref_counts": {}, "events": [
        {"class": "vm", "operation": "mod", "ref": "OpaqueRef:%d" % index,
         "snapshot": {"field%d" % field: {"key": "value"} for field in range(fields)}}
        for index in range(records)]}})


def test_a_big_reply_is_parsed_without_running_the_garbage_collector():
    # An event.from reply of 100 VM records is ~60,000 elements. Collections during the parse
    # found nothing to free (the tree is alive until converted) but moved the whole tree to the
    # old generations, so that every one or two replies triggered a full collection: ~0.2 s of
    # CPU holding the GIL with 1,000 VMs in the monitor.
    body = event_batch()
    assert gc.isenabled()
    with Collections() as seen:
        values = parse_reply(body)
    assert seen.runs <= 1  # the one that the values' own objects start once it resumes (60 before)
    assert values == stock(body)
    assert gc.isenabled()


@pytest.mark.parametrize("body", [b"not xml", xmlrpc.client.dumps(xmlrpc.client.Fault(1, "no"), methodresponse=True).encode()])
def test_the_garbage_collector_is_back_after_a_reply_that_fails(body):
    with pytest.raises((xml.parsers.expat.ExpatError, xmlrpc.client.Fault)):
        parse_reply(body)
    assert gc.isenabled()


def test_a_garbage_collector_disabled_by_the_application_stays_disabled():
    gc.disable()
    try:
        parse_reply(event_batch(records=2))
        assert not gc.isenabled()
    finally:
        gc.enable()
