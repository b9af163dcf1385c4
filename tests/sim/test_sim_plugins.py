"""host.call_plugin as xapi runs it (§6.1) and our XenAPIPlugin-compatible dispatcher (§6.2)."""

import os
import sys
import threading
import xmlrpc.client

import pytest
import XenAPI


@pytest.fixture(scope="module")
def host(session):
    return session.xenapi.host.get_all()[0]


def call(session, host, plugin, fn, args=None):
    return session.xenapi.host.call_plugin(host, plugin, fn, args or {})


def test_echo_returns_its_args(session, host):
    assert call(session, host, "echo", "main", {"a": "b", "empty": ""}) == \
        repr({"a": "b", "empty": ""})


def test_plugin_reuses_the_callers_session(sim, session, host):
    assert call(session, host, "echo", "pool_uuid") == sim.info["pool_uuid"]


def test_missing_plugin(session, host):
    for name in ("nope", "../echo", "ECHO"):
        with pytest.raises(XenAPI.Failure) as err:
            call(session, host, name, "main")
        assert err.value.details == ["XENAPI_MISSING_PLUGIN", name]


def test_non_zero_exit(session, host):
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "exit3", "main")
    assert err.value.details == ["XENAPI_PLUGIN_FAILURE", "non-zero exit",
                                 "partial output\n", "something broke\n"]


def test_killed_by_a_signal(session, host):
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "killself", "main")
    assert err.value.details[:3] == ["XENAPI_PLUGIN_FAILURE", "signal: SIGKILL",
                                     "about to die\n"]


def test_fault(session, host):
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "fault", "main")
    assert err.value.details == ["XENAPI_PLUGIN_FAILURE", "fault", "42", "it went wrong"]


def test_unparsable_output(session, host):
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "garbage", "main")
    assert err.value.details[:3] == ["XENAPI_PLUGIN_FAILURE", "failed to parse plugin output",
                                     "this is not XML\n"]
    assert len(err.value.details) == 4


def test_unexpected_result(session, host):
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "unexpected", "main")
    assert err.value.details[:2] == ["XENAPI_PLUGIN_FAILURE", "unexpected XMLRPC result"]


def test_plugin_side_failures(session, host):
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "failing", "coded", {"x": "y"})
    assert err.value.details == ["MY_ERROR", "one", "y"]
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "failing", "crash")
    assert err.value.details == ["XENAPI_PLUGIN_FAILURE", "crash", "ValueError", "bad value"]
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "failing", "nosuchfn")
    assert err.value.details == ["UNKNOWN_XENAPI_PLUGIN_FUNCTION", "nosuchfn"]


def test_plugin_environment_is_exactly_xapis(session, host):
    assert call(session, host, "failing", "environ") == "PATH=/sbin:/usr/sbin:/bin:/usr/bin\n"


def test_python_36_plugins_run_in_dom0s_ascii_locale(session, host):
    """With xapi's environment, 3.6 decodes argv and encodes stdout as ASCII (3.7+ coerce the
    C locale to UTF-8): the 3.6 run of the suite is dom0's situation."""
    expected = "ascii" if sys.version_info < (3, 7) else "utf-8"
    assert call(session, host, "failing", "encoding") == expected


def test_non_ascii_arguments_and_results_round_trip(session, host):
    args = {"caf\u00e9": "\u00e9t\u00e9 \u20ac \U0001f600 \u4e2d", "plain": "x"}
    assert call(session, host, "echo", "main", args) == repr(args)


def test_each_host_runs_its_plugins_from_its_own_dom0_tree(make_sim):
    sim = make_sim(extra=("--hosts", "2"))
    s = sim.session()
    try:
        for summary in sim.info["hosts"]:
            host = s.xenapi.host.get_by_uuid(summary["uuid"])
            root = summary["dom0_root"]
            assert call(s, host, "failing", "argv0") == os.path.join(root, "etc/xapi.d/plugins/failing")
            assert call(s, host, "failing", "here") == summary["uuid"]
            assert call(s, host, "echo", "pool_uuid") == sim.info["pool_uuid"]
        # One host without the plugin (hosts are upgraded one by one).
        first, second = [s.xenapi.host.get_by_uuid(h["uuid"]) for h in sim.info["hosts"]]
        os.unlink(os.path.join(sim.info["hosts"][1]["dom0_root"], "etc/xapi.d/plugins/echo"))
        with pytest.raises(XenAPI.Failure) as err:
            call(s, second, "echo", "main")
        assert err.value.details == ["XENAPI_MISSING_PLUGIN", "echo"]
        assert call(s, first, "echo", "main") == repr({})
    finally:
        s.xenapi.session.logout()


def test_async_call_plugin_and_concurrency(sim, session, host):
    task = session.xenapi.Async.host.call_plugin(host, "echo", "pool_uuid", {})
    results = []

    def worker():
        s = sim.session()
        results.append(call(s, host, "echo", "pool_uuid"))
        s.xenapi.session.logout()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [sim.info["pool_uuid"]] * 4
    for _ in range(200):
        record = session.xenapi.task.get_record(task)
        if record["status"] != "pending":
            break
        threading.Event().wait(0.05)
    assert record["status"] == "success"
    assert record["result"] == "<value>%s</value>" % sim.info["pool_uuid"]
    session.xenapi.task.destroy(task)


def test_bad_host(session):
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.host.call_plugin("OpaqueRef:x", "echo", "main", {})
    assert err.value.details == ["HANDLE_INVALID", "host", "OpaqueRef:x"]


def test_dom0_trees_of_a_directory_xenapi_cannot_address_live_in_a_short_one(make_sim, tmp_path):
    sim = make_sim(directory=str(tmp_path / "with_underscore"))
    root = sim.info["hosts"][0]["dom0_root"]
    assert "_" not in root and root.startswith("/tmp/xsc-")
    s = sim.session()
    try:
        host = s.xenapi.host.get_all()[0]
        assert call(s, host, "echo", "pool_uuid") == sim.info["pool_uuid"]
    finally:
        s.xenapi.session.logout()
    assert sim.stop() == 0
    assert not os.path.lexists(root)
    assert os.path.isdir(os.path.join(sim.directory, "hosts", sim.info["hosts"][0]["uuid"], "log"))


def _badxml_output(value):
    return ("<?xml version='1.0'?>\n<methodResponse><params><param><value><struct>\n"
            "<member><name>Status</name><value>Success</value></member>\n"
            "<member><name>Value</name><value>%s</value></member>\n"
            "</struct></value></param></params></methodResponse>\n" % value)


def test_output_with_a_raw_control_character_does_not_parse(session, host):
    # xapi parses stdout with xmlm (XML 1.0): a raw ESC is "malformed character stream"; the
    # output goes back as the second parameter, and xapi's XML-RPC writer drops the ESC.
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "badxml", "esc")
    assert err.value.details == ["XENAPI_PLUGIN_FAILURE", "failed to parse plugin output",
                                 _badxml_output("a[31mred"),
                                 "malformed character stream line 4"]


def test_output_with_an_illegal_character_reference_does_not_parse(session, host):
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "badxml", "charref")
    assert err.value.details == ["XENAPI_PLUGIN_FAILURE", "failed to parse plugin output",
                                 _badxml_output("a&#27;b"),
                                 "illegal character reference (#27) line 4"]


def test_output_that_is_not_utf8_fails_and_is_returned_byte_for_byte(sim, session, host):
    # xapi returns the output bytes unchanged, so its answer is not UTF-8 either: the official
    # client cannot parse it; the raw answer still carries xapi's failure.
    import xml.parsers.expat
    with pytest.raises(xml.parsers.expat.ExpatError):
        call(session, host, "badxml", "latin1")
    body = xmlrpc.client.dumps((session.handle, host, "badxml", "latin1", {}),
                               "host.call_plugin").encode()
    status, data = _post(sim, body)
    assert status == 200
    assert b"<value>failed to parse plugin output</value>" in data
    assert b"&lt;value&gt;caf\xe9&lt;/value&gt;" in data
    assert b"<value>malformed character stream line 4</value>" in data


def test_tab_and_newline_references_are_legal_output(session, host):
    assert call(session, host, "badxml", "tab") == "a\tb\nc"


def _post(sim, body):
    import http.client
    hostport = sim.url[len("http://"):].rstrip("/")
    conn = http.client.HTTPConnection(hostport, timeout=30)
    conn.request("POST", "/", body=body, headers={"Content-Type": "text/xml"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


MAX_ARG_STRLEN = 131072  # Linux: one argv element, its NUL included


def _argv_overhead(session, fn, key):
    """Bytes of xapi's plugin call (Xml.to_string of XMLRPC.To.methodCall) around one value."""
    return len("<methodCall><methodName>%s</methodName><params><param><value>%s</value></param>"
               "<param><value><struct><member><name>%s</name><value></value></member></struct>"
               "</value></param></params></methodCall>" % (fn, session.handle, key))


def test_the_call_is_one_argv_element_of_at_most_128_kib(session, host):
    # xapi execs the plugin with the whole call as argv[1]; the kernel refuses a longer element
    # (E2BIG), forkexecd's child exits 126 with nothing written.
    fits = MAX_ARG_STRLEN - 1 - _argv_overhead(session, "main", "a")
    assert call(session, host, "echo", "main", {"a": "x" * fits}) == repr({"a": "x" * fits})
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "echo", "main", {"a": "x" * (fits + 1)})
    assert err.value.details == ["XENAPI_PLUGIN_FAILURE", "non-zero exit", "", ""]


def test_the_argv_limit_counts_escaped_bytes(session, host):
    fits = MAX_ARG_STRLEN - 1 - _argv_overhead(session, "main", "a")
    value = "&" * (fits // len("&amp;")) + "x" * (fits % len("&amp;"))
    assert call(session, host, "echo", "main", {"a": value}) == repr({"a": value})
    with pytest.raises(XenAPI.Failure) as err:
        call(session, host, "echo", "main", {"a": value + "x"})
    assert err.value.details == ["XENAPI_PLUGIN_FAILURE", "non-zero exit", "", ""]
