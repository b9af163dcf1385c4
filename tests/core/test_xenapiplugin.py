"""The plugin dispatcher's own rules (xscontainer.xapi.xenapiplugin): UTF-8 in and out whatever the
locale, and every string of a response XML-1.0-clean, results and failures alike."""

import io
import os
import xmlrpc.client

from xscontainer.xapi import xenapiplugin
from xscontainer.xapi import dom0


def loads(text):
    return xmlrpc.client.loads(text)[0][0]


def test_results_and_failures_are_xml_clean():
    table = {"ok": lambda s, a: "a\x1bb \u00e9", "bad": lambda s, a: 1 / 0,
             "coded": lambda s, a: (_ for _ in ()).throw(xenapiplugin.Failure("MY\x07", ["p\x00"])),
             "raises": lambda s, a: (_ for _ in ()).throw(ValueError("no \x1b[1m here"))}
    assert loads(xenapiplugin.respond(table, None, "ok", {})) == {"Status": "Success", "Value": "a\\x1bb \u00e9"}
    assert loads(xenapiplugin.respond(table, None, "coded", {}))["ErrorDescription"] == ["MY\\x07", "p\\x00"]
    assert loads(xenapiplugin.respond(table, None, "raises", {}))["ErrorDescription"] == [
        "XENAPI_PLUGIN_FAILURE", "raises", "ValueError", "no \\x1b[1m here"]
    assert loads(xenapiplugin.respond(table, None, "bad", {}))["ErrorDescription"][2] == "ZeroDivisionError"
    assert loads(xenapiplugin.respond(table, None, "nope", {}))["ErrorDescription"] == [
        "UNKNOWN_XENAPI_PLUGIN_FUNCTION", "nope"]


def test_the_call_is_decoded_from_argvs_raw_bytes():
    xml = xmlrpc.client.dumps(("OpaqueRef:s", {"configuration": "# caf\u00e9 \U0001f600"}), "fn")
    raw = xml.encode("utf-8")
    # What an interpreter makes of xapi's bytes: lone surrogates in dom0's ASCII locale (3.6),
    # and whatever this one's locale gives.
    for argv1 in (raw.decode("ascii", "surrogateescape"), os.fsdecode(raw)):
        params, method = xenapiplugin.parse_call(["/etc/xapi.d/plugins/x", argv1])
        assert method == "fn" and params == ("OpaqueRef:s", {"configuration": "# caf\u00e9 \U0001f600"})


def test_the_response_is_written_as_utf8_bytes():
    out = io.BytesIO()
    xenapiplugin.write_response("<v>caf\u00e9</v>", out)
    assert out.getvalue() == "<v>caf\u00e9</v>\n".encode("utf-8")


def test_dom0_root_comes_from_the_plugin_path():
    assert dom0.of_plugin("/etc/xapi.d/plugins/xscontainer") == dom0.Dom0("/")
    assert dom0.of_plugin("/etc/xapi.d/plugins/xscontainer").xapi_socket == "/var/lib/xcp/xapi"
    assert dom0.of_plugin("/etc/xapi.d/plugins/xscontainer").inventory == "/etc/xensource-inventory"
    assert dom0.of_plugin("/tmp/s/dom0/h1/etc/xapi.d/plugins/echo").log_file == \
        "/tmp/s/dom0/h1/var/log/xscontainer.log"
    assert dom0.of_plugin("/opt/elsewhere/xscontainer").root == "/"
    assert xenapiplugin.DEFAULT_SOCKET == "/var/lib/xcp/xapi"
