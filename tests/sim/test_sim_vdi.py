"""VDI create/destroy and HTTP /import_raw_vdi, /export_raw_vdi (§9) with raw HTTP."""

import http.client
import os
import socket
import time

import pytest
import XenAPI


def make_vdi(session, size):
    sr = session.xenapi.pool.get_default_SR(session.xenapi.pool.get_all()[0])
    return session.xenapi.VDI.create({"SR": sr, "virtual_size": str(size), "type": "user",
                                      "sharable": False, "read_only": False,
                                      "other_config": {"config-drive": "True"}})


def conn_for(sim):
    host, port = sim.url[len("http://"):].rstrip("/").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=20)


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=20)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(self.path)


def put(conn, query, body, headers=None):
    conn.request("PUT", "/import_raw_vdi?" + query, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def get(conn, query):
    conn.request("GET", "/export_raw_vdi?" + query)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def wait_task(session, task):
    for _ in range(200):
        record = session.xenapi.task.get_record(task)
        if record["status"] != "pending":
            return record
        time.sleep(0.05)
    raise AssertionError("task still pending")


def test_upload_then_download_byte_for_byte(sim, session):
    size = 2 * 1024 * 1024
    vdi = make_vdi(session, size)
    uuid = session.xenapi.VDI.get_uuid(vdi)
    payload = os.urandom(300000)
    resp = put(conn_for(sim), "session_id=%s&vdi=%s&format=raw" % (session.handle, uuid),
               payload)
    assert resp.status == 200
    record = wait_task(session, resp.getheader("task-id"))
    assert record["status"] == "success"
    assert record["result"] == "<value>%s</value>" % vdi
    resp, data = get(conn_for(sim), "session_id=%s&vdi=%s" % (session.handle, vdi))
    assert resp.status == 200
    assert resp.getheader("content-type") == "application/octet-stream"
    assert len(data) == size
    assert data[:len(payload)] == payload and data[len(payload):] == b"\0" * (size - len(payload))
    # Over the Unix socket (pre-authenticated), by cookie-less request:
    resp, data2 = get(UnixConnection(sim.info["unix_socket"]), "vdi=%s" % uuid)
    assert resp.status == 200 and data2 == data
    session.xenapi.VDI.destroy(vdi)


def test_http_errors(sim, session):
    vdi = make_vdi(session, 1024)
    uuid = session.xenapi.VDI.get_uuid(vdi)
    assert put(conn_for(sim), "session_id=OpaqueRef:bad&vdi=%s" % uuid, b"x").status == 401
    assert put(conn_for(sim), "vdi=%s" % uuid, b"x").status == 401
    assert put(conn_for(sim), "session_id=%s&vdi=%s&format=zip" % (session.handle, uuid),
               b"x").status == 404
    resp = put(conn_for(sim), "vdi=%s" % uuid, b"x",
               {"Cookie": "session_id=%s" % session.handle})
    assert resp.status == 200
    conn = conn_for(sim)
    conn.putrequest("PUT", "/import_raw_vdi?session_id=%s&vdi=%s" % (session.handle, uuid))
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"1\r\nx\r\n0\r\n\r\n")
    assert conn.getresponse().status == 404
    conn.close()
    resp, _ = get(conn_for(sim), "session_id=%s&vdi=no-such-vdi" % session.handle)
    assert resp.status == 500
    session.xenapi.VDI.destroy(vdi)


def test_body_larger_than_the_vdi_fails_the_task(sim, session):
    vdi = make_vdi(session, 1024)
    resp = put(conn_for(sim), "session_id=%s&vdi=%s" % (session.handle, vdi), b"y" * 4096)
    assert resp.status == 200  # headers go out before the body, as in xapi
    record = wait_task(session, resp.getheader("task-id"))
    assert record["status"] == "failure"
    assert record["error_info"][0] == "VDI_IO_ERROR"
    session.xenapi.VDI.destroy(vdi)


def test_vdi_rules(session):
    sr = session.xenapi.pool.get_default_SR(session.xenapi.pool.get_all()[0])
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VDI.create({"SR": sr, "virtual_size": "1"})
    assert err.value.details[0] == "INTERNAL_ERROR"
    vdi = make_vdi(session, 4096)
    assert session.xenapi.VDI.get_virtual_size(vdi) == "4096"
    assert vdi in session.xenapi.SR.get_VDIs(sr)
    session.xenapi.VDI.destroy(vdi)
    assert vdi not in session.xenapi.SR.get_VDIs(sr)
