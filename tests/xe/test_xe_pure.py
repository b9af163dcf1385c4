"""Pure parts of the xe command: argument parsing, record layout, filters and error texts."""

import io

import pytest

from xscontainer.sim import xe

HOST_REF = "OpaqueRef:h1"
VM1 = {"uuid": "8a9c0000-0000-4000-8000-000000000001", "name_label": "vm1",
       "name_description": "", "power_state": "Running", "is_a_template": False,
       "is_a_snapshot": False, "is_control_domain": False, "resident_on": HOST_REF,
       "affinity": "OpaqueRef:NULL", "other_config": {"a": "1", "b": "x,y"},
       "guest_metrics": "OpaqueRef:gm1", "VBDs": ["OpaqueRef:vbd1"], "tags": ["t1", "t2"],
       "domid": "3", "current_operations": {"OpaqueRef:task": "clean_shutdown"}}
VM2 = dict(VM1, uuid="8a9c0000-0000-4000-8000-000000000002", name_label="vm2",
           power_state="Halted", resident_on="OpaqueRef:NULL", other_config={},
           guest_metrics="OpaqueRef:NULL", tags=[], current_operations={})
DOM0 = dict(VM1, uuid="8a9c0000-0000-4000-8000-0000000000d0",
            name_label="Control domain on host: h1", is_control_domain=True)
TEMPLATE = dict(VM2, uuid="8a9c0000-0000-4000-8000-0000000000f0", name_label="tmpl",
                is_a_template=True)
OBJECTS = {
    ("host", HOST_REF): {"uuid": "c0ffee00-0000-4000-8000-000000000001", "name_label": "h1"},
    ("VM_guest_metrics", "OpaqueRef:gm1"): {"networks": {"0/ip": "10.0.0.5"}},
    ("VBD", "OpaqueRef:vbd1"): {"uuid": "0b0d0000-0000-4000-8000-000000000001"},
}


def lookup(cls, ref):
    return OBJECTS.get((cls, ref))


def field(spec, name):
    return xe.find_field(xe.CLASSES[spec], name)


# --- command line ---------------------------------------------------------------------------

def test_parse_argv_separates_connection_options_from_params():
    inv = xe.parse_argv(["vm-list", "-s", "10.0.0.1", "-p", "8080", "-u", "admin", "-pw", "pw",
                         "power-state=running", "--minimal", "name-label=a=b", "flag"])
    assert inv.command == "vm-list"
    assert inv.conn.server == "10.0.0.1" and inv.conn.port == 8080
    assert (inv.conn.username, inv.conn.password) == ("admin", "pw")
    assert inv.params == [("power-state", "running"), ("minimal", "true"),
                          ("name-label", "a=b"), ("flag", "")]


def test_parse_argv_rejects_a_bad_port_and_a_missing_command_name():
    with pytest.raises(xe.XeFailure, match=r"Port number must be an integer \(0-65535\)"):
        xe.parse_argv(["host-list", "-p", "http"])
    with pytest.raises(xe.XeFailure) as info:
        xe.parse_argv(["uuid=1"])
    assert info.value.message == "Syntax error: \nFor usage run: 'xe help'"


def test_unknown_command_and_missing_parameter_texts():
    with pytest.raises(xe.XeFailure) as info:
        xe.resolve_command("foo")
    assert info.value.message == "Unknown command: foo\nFor usage run: 'xe help'"
    op, spec, required = xe.resolve_command("host-call-plugin")
    with pytest.raises(xe.XeFailure) as info:
        xe.require([("plugin", "echo")], required)
    assert info.value.message == "Required parameter not found: host-uuid\nFor usage run: 'xe help'"
    assert xe.resolve_command("pool-param-set")[:2] == ("param-set", xe.CLASSES["pool"])
    with pytest.raises(xe.XeFailure):
        xe.resolve_command("message-param-set")


# --- values and layout ----------------------------------------------------------------------

def test_values_are_printed_like_xe():
    assert xe.format_value(field("vm", "power-state"), VM1, lookup) == "running"
    assert xe.format_value(field("vm", "resident-on"), VM1, lookup) == \
        "c0ffee00-0000-4000-8000-000000000001"
    assert xe.format_value(field("vm", "resident-on"), VM2, lookup) == "<not in database>"
    assert xe.format_value(field("vm", "other-config"), VM1, lookup) == "a: 1; b: x,y"
    assert xe.format_value(field("vm", "networks"), VM1, lookup) == "0/ip: 10.0.0.5"
    assert xe.format_value(field("vm", "networks"), VM2, lookup) == "<not in database>"
    assert xe.format_value(field("vm", "VBDs"), VM1, lookup) == \
        "0b0d0000-0000-4000-8000-000000000001"
    assert xe.format_value(field("vm", "tags"), VM1, lookup) == "t1, t2"
    assert xe.format_value(field("vm", "is-control-domain"), VM1, lookup) == "false"
    assert xe.format_value(field("vm", "current-operations"), VM1, lookup) == "clean_shutdown"
    assert xe.format_value(field("vdi", "type"), {"type": "user"}, lookup) == "User"


def test_qualifiers():
    quals = {f.name: xe.qualifier(f) for f in xe.CLASSES["vm"].fields}
    assert quals["uuid"] == "( RO)"
    assert quals["name-label"] == "( RW)"
    assert quals["other-config"] == "(MRW)"
    assert quals["networks"] == "(MRO)"
    assert quals["VBDs"] == "(SRO)"
    assert quals["tags"] == "(SRW)"


def test_record_layout_matches_the_real_xe():
    spec = xe.CLASSES["vm"]
    fields = xe.chosen_fields(spec, [])
    text = xe.format_table([xe.record_rows(fields, VM1, lookup),
                            xe.record_rows(fields, VM2, lookup)])
    assert text == (
        "uuid ( RO)           : 8a9c0000-0000-4000-8000-000000000001\n"
        "     name-label ( RW): vm1\n"
        "    power-state ( RO): running\n"
        "\n\n"
        "uuid ( RO)           : 8a9c0000-0000-4000-8000-000000000002\n"
        "     name-label ( RW): vm2\n"
        "    power-state ( RO): halted\n"
        "\n\n")
    assert xe.format_table([]) == ""


def test_params_selects_fields_in_record_order():
    spec = xe.CLASSES["vm"]
    names = [f.name for f in xe.chosen_fields(spec, [("params", "power-state,uuid,bogus")])]
    assert names == ["uuid", "power-state"]
    assert len(xe.chosen_fields(spec, [("params", "all")])) == len(spec.fields)
    host_names = [f.name for f in xe.chosen_fields(xe.CLASSES["host"], [])]
    assert host_names == ["uuid", "name-label", "name-description"]


def test_minimal_escapes_commas_and_backslashes():
    assert xe.format_minimal(["a", "b,c", "d\\e"]) == "a,b\\,c,d\\\\e\n"
    out = xe.Output(minimal=True)
    out.table([])
    assert out.text() == "\n"
    out = xe.Output(minimal=True)
    out.table([[("uuid ( RO)", "u1")], [("uuid ( RO)", "u2")]])
    assert out.text() == "u1,u2\n"


# --- filters --------------------------------------------------------------------------------

def test_filters_on_normal_map_and_set_fields():
    spec = xe.CLASSES["vm"]
    records = [VM1, VM2, DOM0, TEMPLATE]

    def names(params):
        kept = xe.filter_records(spec, records, xe.list_filters(spec, params), lookup)
        return [r["name_label"] for r in kept]

    assert names([]) == ["vm1", "vm2", "Control domain on host: h1"]
    assert names([("power-state", "running"), ("is-control-domain", "false")]) == ["vm1"]
    assert names([("other-config:a", "1")]) == ["vm1", "Control domain on host: h1"]
    assert names([("other-config-a", "1"), ("name-label", "vm1")]) == ["vm1"]
    assert names([("tags:contains", "t2"), ("is-control-domain", "false")]) == ["vm1"]
    assert names([("resident-on", "c0ffee00-0000-4000-8000-000000000001"),
                  ("params", "uuid"), ("minimal", "true")]) == \
        ["vm1", "Control domain on host: h1"]
    with pytest.raises(xe.XeFailure, match="Error: Unknown field 'colour'"):
        names([("colour", "red")])
    template_spec = xe.CLASSES["template"]
    kept = xe.filter_records(template_spec, records, xe.list_filters(template_spec, []), lookup)
    assert [r["name_label"] for r in kept] == ["tmpl"]


# --- errors ---------------------------------------------------------------------------------

def test_server_errors_with_datamodel_docs():
    assert xe.format_server_error("UUID_INVALID", ["VM", "nope"]) == (
        "The uuid you supplied was invalid.\ntype: VM\nuuid: nope")
    assert xe.format_server_error("XENAPI_PLUGIN_FAILURE", ["main", "Exception", "boom"]) == (
        "There was a failure communicating with the plugin.\n"
        "status: main\nstdout: Exception\nstderr: boom")
    text = xe.format_server_error("XENAPI_PLUGIN_FAILURE", ["a", "b", "c", "d"])
    assert text.endswith("stderr: c\n<extra>: d")
    assert xe.format_server_error("XENAPI_MISSING_PLUGIN", []) == (
        "The requested plugin could not be found.\nname: <unknown>")


def test_server_errors_without_docs_are_raw():
    assert xe.format_server_error("UNKNOWN_XENAPI_PLUGIN_FUNCTION", ["nofn"]) == (
        "Error code: UNKNOWN_XENAPI_PLUGIN_FUNCTION\nError parameters: nofn")
    assert xe.format_server_error("X", ["a", "b"]) == "Error code: X\nError parameters: a, b"


def test_login_failure_texts():
    assert xe.login_failure_text(["SESSION_AUTHENTICATION_FAILED", "root", "bad"]) == (
        "Authentication failed\nFor usage run: 'xe help'")
    assert xe.login_failure_text(["SESSION_AUTHENTICATION_FAILED", "", "bad"]).startswith(
        "Username/password must be specified")


def test_plugin_args_reads_files(tmp_path):
    path = tmp_path / "conf"
    path.write_text("line1\nline2\n")
    args = xe.plugin_args([("host-uuid", "h"), ("args:a", "1"), ("args:b:file", str(path)),
                           ("args:", "ignored")])
    assert args == {"a": "1", "b": "line1\nline2\n"}
    with pytest.raises(xe.XeFailure, match="Failed to read"):
        xe.plugin_args([("args:c:file", str(tmp_path / "absent"))])


def test_run_checks_command_and_parameters_before_connecting():
    def no_connection(conn):
        raise AssertionError("must not connect")

    for argv, expected in ((["foo"], "Unknown command: foo\n"),
                           (["vm-param-get", "uuid=x"],
                            "Required parameter not found: param-name\n")):
        out, err = io.StringIO(), io.StringIO()
        assert xe.run(argv, out, err, session_factory=no_connection) == 1
        assert err.getvalue() == expected + "For usage run: 'xe help'\n"
        assert out.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert xe.run([], out, err, session_factory=no_connection) == 0
    assert err.getvalue().startswith("Usage: xe <cmd>")
