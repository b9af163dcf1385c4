"""Envelope, type encoding, method names, sessions and bad input, through the official client."""

import http.client
import socket
import xmlrpc.client

import pytest
import XenAPI


def raw(session, name, *args):
    return getattr(session, name)(session.handle, *args)


def test_raw_envelope_success_and_failure(session):
    vm = session.xenapi.VM.get_all()[0]
    ok = raw(session, "VM.get_record", vm)
    assert ok["Status"] == "Success" and ok["Value"]["uuid"]
    bad = raw(session, "VM.get_record", "OpaqueRef:nope")
    assert bad == {"Status": "Failure", "ErrorDescription": ["HANDLE_INVALID", "VM",
                                                              "OpaqueRef:nope"]}


def test_types_on_the_wire(session):
    pool = session.xenapi.pool.get_all()[0]
    host = session.xenapi.pool.get_master(pool)
    assert session.xenapi.host.get_API_version_major(host) == "2"  # int64 as a string
    assert session.API_version == "2.21"
    record = session.xenapi.VM.get_record(session.xenapi.VM.get_all()[0])
    assert isinstance(record["memory_static_max"], str)
    assert isinstance(record["snapshot_time"], xmlrpc.client.DateTime)
    assert str(record["snapshot_time"]) == "19700101T00:00:00Z"
    assert record["power_state"] in ("Running", "Halted")
    assert isinstance(record["HVM_shadow_multiplier"], float)


def test_underscore_wire_names(session):
    assert session.xenapi.VM_get_all() == session.xenapi.VM.get_all()
    gm = session.xenapi.VM_guest_metrics_get_all()
    assert gm == session.xenapi.VM_guest_metrics.get_all()


def test_unknown_method_and_arity(session):
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.frobnicate("x")
    assert err.value.details == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.get_record()
    assert err.value.details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.host.call_plugin("a", "b")
    assert err.value.details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "host.call_plugin",
                                 "4", "2"]


def test_bad_refs_and_uuids(session):
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.host.get_by_uuid("no-such-uuid")
    assert err.value.details == ["UUID_INVALID", "host", "no-such-uuid"]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.SR.get_name_label("OpaqueRef:NULL")
    assert err.value.details == ["HANDLE_INVALID", "SR", "OpaqueRef:NULL"]


def test_async_only_where_xapi_has_it(session):
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.Async.VM.get_all()
    assert err.value.details[0] == "Fault"
    assert "No async mode" in err.value.details[1]


def test_tcp_login_needs_the_password(sim):
    s = XenAPI.Session(sim.url)
    with pytest.raises(XenAPI.Failure) as err:
        s.xenapi.login_with_password("root", "wrong", "1.0", "tests")
    assert err.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
    good = sim.session()
    assert good.xenapi.session.get_this_host(good.handle).startswith("OpaqueRef:")
    good.xenapi.session.logout()


def test_unix_socket_is_preauthenticated(sim):
    assert "_" not in sim.info["unix_socket"]
    s = sim.unix_session(password="whatever")
    assert len(s.xenapi.pool.get_all()) == 1
    host = s.xenapi.session.get_this_host(s.handle)
    assert s.xenapi.host.get_uuid(host) == sim.info["hosts"][0]["uuid"]
    s.xenapi.session.logout()


def test_invalid_session(sim, session):
    bad = XenAPI.Session(sim.url)
    bad._session = "OpaqueRef:not-a-session"
    out = getattr(bad, "VM.get_all")("OpaqueRef:not-a-session")
    assert out == {"Status": "Failure",
                   "ErrorDescription": ["SESSION_INVALID", "OpaqueRef:not-a-session"]}


def _post(sim, body, headers=None):
    host, port = sim.url[len("http://"):].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/", body=body, headers=headers or {"Content-Type": "text/xml"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def _raw_exchange(sim, head, body=b""):
    """Send one request as raw bytes; everything the server sends until it closes."""
    host, port = sim.url[len("http://"):].rstrip("/").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(head + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def _assert_internal_error_and_closed(answer):
    # xapi: Http_svr.response_internal_error, "Connection: close", then the socket is closed
    # (_raw_exchange only returns once the server closed it).
    assert answer.startswith(b"HTTP/1.1 500 Internal Error\r\n")
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nconnection: close" in head
    assert b"Traceback" not in answer


def test_malformed_body_is_xapis_500_not_a_traceback(sim):
    for body in (b"<methodCall><methodName>x", b"\x00\xff garbage", b"",
                 b"<?xml version='1.0'?><methodResponse><params/></methodResponse>"):
        head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        _assert_internal_error_and_closed(_raw_exchange(sim, head, body))


def test_body_without_content_length_is_xapis_500(sim):
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    _assert_internal_error_and_closed(_raw_exchange(sim, head))


MAX_RPC_SIZE = 300 * 1024  # xapi Constants.http_limit_max_rpc_size


def test_body_over_300_kib_is_refused_without_reading_it(sim):
    head = (b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Content-Length: %d\r\n\r\n" % (MAX_RPC_SIZE + 1))
    _assert_internal_error_and_closed(_raw_exchange(sim, head))


def _call_body(session, vm, size):
    """A VM.get_name_label call padded with whitespace to exactly ``size`` bytes."""
    body = xmlrpc.client.dumps((session.handle, vm), "VM.get_name_label").encode()
    return body.replace(b"</methodCall>", b" " * (size - len(body)) + b"</methodCall>")


def test_body_of_exactly_300_kib_is_served(sim, session):
    vm = session.xenapi.VM.get_all()[0]
    status, data = _post(sim, _call_body(session, vm, MAX_RPC_SIZE))
    assert status == 200
    assert xmlrpc.client.loads(data)[0][0]["Status"] == "Success"


def test_official_client_cannot_send_over_300_kib(sim, session):
    vm = session.xenapi.VM.get_all()[0]
    with pytest.raises((xmlrpc.client.ProtocolError, OSError)) as err:
        session.xenapi.VM.set_name_description(vm, "x" * MAX_RPC_SIZE)
    if isinstance(err.value, xmlrpc.client.ProtocolError):
        assert err.value.errcode == 500
    assert session.xenapi.VM.get_name_description(vm) != "x" * MAX_RPC_SIZE


def test_internal_values_never_leak_python_errors(session):
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.set_name_label(session.xenapi.VM.get_all()[0], 12)
    assert err.value.details == ["FIELD_TYPE_ERROR", "value"]
