"""Pure parts of the CLI: reading docker_ps/docker_top/generic XML, naming, tables, errors."""

import datetime
import io

import pytest

import consumer_xml as cx
from xscontainer import exitcodes
from xscontainer.cli import failures, layout, views
from xscontainer.cli.layout import Column
from xscontainer.cli.main import build_parser, main, split_prepare_vm
from xscontainer.cli.resolve import Candidate, resolve
from xscontainer.cli.xmlread import (BadDocument, Port, decode_document, parse_docker_ps,
                                     parse_docker_top, uptime_seconds)
from xscontainer.errors import ConnectionFailure, InvalidArgument, NotFound, XSContainerError
from xscontainer.monitor import render

WEB_ID = "8dfafdbc3a40ac9c4a4b0dcd6b2a3b0c6fa4e6c8f7e2d4a8b1c5e9f3a7d2b6c0"
JOB_ID = "9c2e1f0a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e"
WEB = {"Id": WEB_ID, "Names": ["/web"], "Image": "nginx:1.25", "Command": "nginx -g 'daemon off;'",
       "Created": 1700000300, "State": "running", "Status": "Up 2 hours",
       "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                 {"PrivatePort": 443, "Type": "tcp"}],
       "Labels": {"traefik.http.routers[0].rule": "Host(`a&b`)"}}
JOB = {"Id": JOB_ID, "Names": ["/job"], "Image": "busybox", "Command": "sh -c 'exit 3'",
       "Created": 1700000100, "State": "exited", "Status": "Exited (3) 5 minutes ago", "Ports": []}
NOW = datetime.datetime(2024, 1, 15, 12, 0, 5)


def docker_ps():
    return render.render_docker_ps([WEB, JOB], {WEB_ID: "2024-01-15T10:00:00.5Z"})


# -- docker_ps --------------------------------------------------------------------------------------

def test_docker_ps_rows_match_what_xencenter_reads():
    text = docker_ps()
    rows = parse_docker_ps(text)
    theirs = cx.xencenter_containers(text)
    assert [(r.id, r.name, r.status, r.container, r.image, r.command) for r in rows] == \
        [(c.id, c.name, c.status, c.container, c.image, c.command) for c in theirs]
    assert [r.state for r in rows] == [c.power_state.lower().replace("halted", "halted") for c in theirs]
    assert [(p.ip, p.public_port, p.private_port, p.type) for p in rows[0].ports] == \
        [tuple(p) for p in theirs[0].ports]


def test_docker_ps_fields_and_uptime():
    web, job = parse_docker_ps(docker_ps())
    assert (web.name, web.container, web.status, web.state) == ("web", WEB_ID[:10], "Up", "running")
    assert web.started_at == "2024-01-15T10:00:00Z"
    assert uptime_seconds(web, NOW) == 2 * 3600 + 5
    assert (job.status, job.state, job.started_at) == ("Exited (3)", "halted", None)
    assert uptime_seconds(job, NOW) is None
    assert layout.format_ports(web.ports) == "0.0.0.0:8080->80/tcp, 443/tcp"


def test_paused_and_empty_docker_ps():
    paused = dict(WEB, Status="Up 2 hours (Paused)")
    (row,) = parse_docker_ps(render.render_docker_ps([paused]))
    assert (row.status, row.state) == ("Up (Paused)", "paused")
    assert parse_docker_ps(render.render_docker_ps([])) == []


def test_malformed_docker_ps_is_a_clear_error():
    with pytest.raises(BadDocument) as info:
        parse_docker_ps("<docker_ps><item>")
    assert info.value.code == "BAD_DOCUMENT"


# -- docker_top and the generic encoding ----------------------------------------------------------------

def test_docker_top_keeps_the_engine_column_order():
    top = {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
           "Processes": [["root", "101", "1", "0", "10:00", "?", "00:01:02", "nginx: master <process>"],
                         ["nginx", "102", "101", "0", "10:00", "?", "00:00:00", "nginx: worker"]]}
    titles, rows = parse_docker_top(render.render_docker_top(top))
    assert titles == top["Titles"]
    assert rows == top["Processes"]
    assert [dict(zip(titles, r)) for r in rows] == cx.xencenter_top(render.render_docker_top(top))


def test_docker_top_with_encoded_titles_and_no_processes():
    top = {"Titles": ["Name", "Private Working Set"], "Processes": [["app.exe", "1.2MB"]]}
    assert parse_docker_top(render.render_docker_top(top)) == (["Name", "Private Working Set"], [["app.exe", "1.2MB"]])
    assert parse_docker_top(render.render_docker_top({"Titles": ["PID"], "Processes": []})) == ([], [])


def test_generic_decoding_reverses_the_encoding_with_string_scalars():
    record = {"Id": WEB_ID, "Args": ["-g", "daemon off;"], "State": {"Running": True, "Pid": 42},
              "Config": {"ExposedPorts": {"80/tcp": {}}, "Labels": {"a.b": "x<y"}}, "Empty": []}
    root, value = decode_document(render.render_docker_inspect(record))
    assert root == "docker_inspect"
    assert value == {"Id": WEB_ID, "Args": ["-g", "daemon off;"], "State": {"Running": "True", "Pid": "42"},
                     "Config": {"ExposedPorts": {"80/tcp": ""}, "Labels": {"a.b": "x<y"}}, "Empty": ""}


def test_stats_records_are_typed_and_tabled():
    text = render.render_document("docker_stats", [
        {"id": WEB_ID, "name": "web", "cpu_percent": 12.5, "memory_usage": 1048576, "memory_limit": 4194304,
         "network_rx_bytes": 2048, "network_tx_bytes": 0, "block_read_bytes": 0, "block_write_bytes": None}])
    records = views.stats_records(decode_document(text)[1])
    assert records[0]["cpu_percent"] == 12.5 and records[0]["memory_usage"] == 1048576
    assert records[0]["block_write_bytes"] is None
    table = views.stats_table(records, None)
    assert "12.50%" in table and "1.0MiB / 4.0MiB" in table and "25.00%" in table and WEB_ID[:10] in table


# -- naming ------------------------------------------------------------------------------------------------

UUIDS = ["0a1b2c3d-0000-4000-8000-000000000001", "0a1b9999-0000-4000-8000-000000000002",
         "7f000000-0000-4000-8000-000000000003"]
VMS = [Candidate(UUIDS[0], "web", "A"), Candidate(UUIDS[1], "web-2", "B"), Candidate(UUIDS[2], "db", "C")]


@pytest.mark.parametrize("query,expected", [
    (UUIDS[2], "C"), (UUIDS[2].upper(), "C"), ("web", "A"), ("web-", "B"), ("db", "C"), ("7f", "C"),
    ("0a1b2", "A"), ("d", "C")])
def test_resolve_by_uuid_name_or_unique_prefix(query, expected):
    assert resolve(query, VMS) == expected


def test_ambiguous_prefix_lists_every_candidate():
    with pytest.raises(NotFound) as info:
        resolve("0a1b", VMS)
    assert info.value.code == "VM_AMBIGUOUS"
    assert "web (%s)" % UUIDS[0] in info.value.message and "web-2 (%s)" % UUIDS[1] in info.value.message
    assert info.value.details["candidates"] == UUIDS[:2]
    assert failures.exit_code(info.value) == exitcodes.EXIT_NOT_FOUND


def test_duplicate_names_are_ambiguous_but_uuids_still_work():
    twins = [Candidate(UUIDS[0], "twin", 1), Candidate(UUIDS[1], "twin", 2)]
    with pytest.raises(NotFound) as info:
        resolve("twin", twins)
    assert info.value.code == "VM_AMBIGUOUS"
    assert resolve(UUIDS[1], twins) == 2


def test_unknown_and_empty_names():
    with pytest.raises(NotFound) as info:
        resolve("nosuch", VMS, "container", "id")
    assert info.value.code == "CONTAINER_NOT_FOUND" and "'nosuch'" in info.value.message
    with pytest.raises(InvalidArgument):
        resolve(" ", VMS)


# -- tables ------------------------------------------------------------------------------------------------

def test_table_is_aligned_without_trailing_spaces():
    text = layout.render_table([Column("A"), Column("LONGER", right=True), Column("C")],
                               [["x", "1", ""], ["yyyy", "12345678", "z"]])
    assert text.splitlines() == ["A       LONGER  C", "x            1", "yyyy  12345678  z"]


def test_table_fits_the_width_by_cutting_shrinkable_columns():
    columns = [Column("ID"), Column("CMD", shrink=True, min_width=6), Column("PORTS", shrink=True, min_width=6)]
    rows = [["abc", "x" * 100, "1.2.3.4:80->80/tcp, 1.2.3.4:443->443/tcp"]]
    for width in (80, 40, 30, 20):
        lines = layout.render_table(columns, rows, width).splitlines()
        assert all(len(line) <= width for line in lines), (width, lines)
        assert lines[1].startswith("abc  ") and "..." in lines[1]
    assert layout.render_table(columns, rows, None).splitlines()[1].endswith("443/tcp")
    # Nothing shrinks below its floor, whatever the width.
    assert len(layout.render_table(columns, rows, 5).splitlines()[1]) == 3 + 2 + 6 + 2 + 6


def test_multiline_cells_become_one_line():
    assert layout.render_table([Column("A")], [["a\nb\tc"]]) == "A\na b c\n"


@pytest.mark.parametrize("seconds,text", [(None, "-"), (0, "0s"), (59, "59s"), (61, "1m1s"), (3 * 3600 + 120, "3h2m"),
                                          (2 * 86400 + 5 * 3600, "2d5h")])
def test_durations(seconds, text):
    assert layout.format_duration(seconds) == text


def test_ports_and_bytes():
    assert layout.format_port(Port("", "", "53", "udp")) == "53/udp"
    assert layout.format_port(Port("::", "8080", "80", "tcp")) == ":::8080->80/tcp"
    assert layout.format_bytes(1536) == "1.5KiB" and layout.format_bytes(12) == "12B"
    assert layout.format_bytes("None") == "None"


def test_tree():
    assert layout.render_tree({"a": "1", "b": ["x", {"c": ""}], "d": {}}) == "a: 1\nb:\n  - x\n  -\n    c:\nd:\n"


def test_ps_table_and_json():
    from xscontainer.cli.model import VmInfo
    vm = VmInfo("OpaqueRef:1", UUIDS[0], "vm1", "Running", "OpaqueRef:h", "h-uuid", "host1",
                {"xscontainer-monitor": "True"})
    rows = parse_docker_ps(docker_ps())
    collected = [views.VmContainers(vm, rows, None)]
    table = views.ps_table(collected, NOW, None).splitlines()
    assert table[0].split() == ["VM", "CONTAINER", "NAME", "IMAGE", "STATUS", "UPTIME", "PORTS"]
    assert table[1].split()[:6] == ["vm1", WEB_ID[:10], "web", "nginx:1.25", "Up", "2h0m"]
    data = views.ps_json(collected, NOW)
    (item,) = data["vms"]
    assert item["managed"] is True and item["host"] == {"uuid": "h-uuid", "name_label": "host1"}
    assert item["containers"][0]["uptime_seconds"] == 7205
    assert item["containers"][0]["ports"][0] == {"ip": "0.0.0.0", "public_port": 8080, "private_port": 80,
                                                 "type": "tcp"}
    assert item["containers"][1]["created"] == 1700000100
    unknown = views.VmContainers(vm._replace(other_config={}), None, None)
    notes = views.ps_notes([unknown], refreshed=False)
    assert any("ps --refresh" in n for n in notes) and any("not registered" in n for n in notes)


# -- errors, doctor, command line -------------------------------------------------------------------------------

def test_plugin_failures_become_coded_errors():
    err = failures.from_xapi_failure(["XENAPI_PLUGIN_FAILURE", "get_top", "PORT_CLOSED", "Nothing listens."], "x")
    assert isinstance(err, ConnectionFailure) and err.code == "PORT_CLOSED" and err.message == "Nothing listens."
    assert failures.exit_code(err) == exitcodes.EXIT_UNREACHABLE
    err = failures.from_xapi_failure(["XENAPI_PLUGIN_FAILURE", "pause", "CONTAINER_NOT_FOUND", "No."], "x")
    assert failures.exit_code(err) == exitcodes.EXIT_NOT_FOUND
    err = failures.from_xapi_failure(["XENAPI_PLUGIN_FAILURE", "non-zero exit", "", "Traceback..."], "running top")
    assert err.code == "PLUGIN_FAILED" and "running top" in err.message
    assert failures.exit_code(err) == exitcodes.EXIT_FAILED
    err = failures.from_xapi_failure(["HANDLE_INVALID", "VM", "OpaqueRef:x"], "reading a VM")
    assert failures.exit_code(err) == exitcodes.EXIT_NOT_FOUND
    assert failures.exit_code(XSContainerError("x", code="XAPI_UNREACHABLE")) == exitcodes.EXIT_XAPI
    assert failures.exit_code(XSContainerError("x", code="ENGINE_ERROR")) == exitcodes.EXIT_FAILED


def test_doctor_report():
    report = views.doctor_report({"state": "failing", "last_error": "Nothing listens.", "last_error_code": "PORT_CLOSED",
                                  "diagnosis": "Nothing listens on port 22. (PORT_CLOSED)", "since": "None"})
    assert report.code == "PORT_CLOSED" and not report.healthy and report.since is None
    assert "sshd" in report.advice[0]
    assert views.doctor_exit_code(report) == exitcodes.EXIT_UNREACHABLE
    healthy = views.doctor_report({"state": "monitored", "last_error": "None", "diagnosis": "None"})
    assert healthy.healthy and views.doctor_exit_code(healthy) == 0
    idle = views.doctor_report({"state": "not monitored", "reason": "not registered",
                                "diagnosis": "The Docker engine answers. (OK)"})
    assert idle.healthy and idle.advice == [views.NOT_MONITORED_ADVICE]


def test_prepare_vm_arguments_pass_through_untouched():
    assert split_prepare_vm(["prepare-vm", "--help", "vm1"]) == ([], ["--help", "vm1"])
    assert split_prepare_vm(["--url", "http://x", "--username=root", "prepare-vm", "-x"]) == \
        (["--url", "http://x", "--username=root"], ["-x"])
    assert split_prepare_vm(["ps", "prepare-vm"]) is None


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    assert run_main([])[0] == 2
    assert run_main(["config-drive"])[0] == 2
    assert main(["ps", "--bogus"]) == 2
    assert main(["top", "vm1"]) == 2
    assert main(["--help"]) == 0
    assert "Exit codes:" in capsys.readouterr().out
    code, _, err = run_main(["--username", "root", "ps"])
    assert code == 2 and "[INVALID_ARGUMENT]" in err
    code, _, err = run_main(["--url", "http://127.0.0.1:9/", "--username", "root", "--password-file",
                             "/nonexistent/pw", "ps", "--json"])
    assert code == 2 and '"code": "INVALID_ARGUMENT"' in err


def test_register_takes_a_sha256_fingerprint(capsys):
    from xscontainer.hostkeys import fingerprint
    from xscontainer.poolkeys import generate_keypair
    fp = fingerprint(generate_keypair().public_line.split()[1])
    assert build_parser().parse_args(["register", "vm1", "--host-key-fingerprint", fp + "="]).host_key_fingerprint == fp
    assert main(["register", "vm1", "--host-key-fingerprint", "MD5:12:34"]) == 2
    assert "not a SHA256 fingerprint" in capsys.readouterr().err


def test_every_verb_is_in_the_parser():
    parser = build_parser()
    for argv in (["ps"], ["top", "v", "c"], ["inspect", "v", "c"], ["logs", "v", "c", "--tail", "3"],
                 ["stats", "v"], ["stats", "v", "c"], ["start", "v", "c"], ["stop", "v", "c"],
                 ["restart", "v", "c"], ["pause", "v", "c"], ["unpause", "v", "c"], ["register", "v"],
                 ["deregister", "v"], ["doctor", "v"], ["config-drive", "default", "t"],
                 ["config-drive", "create", "v", "--sr", "s", "--file", "f"], ["config-drive", "show", "d"]):
        assert parser.parse_args(argv + (["--json"])).json is True


def test_prepare_vm_gets_the_connection_options_in_its_own_spelling():
    from xscontainer.cli.main import prepare_vm_argv
    args = build_parser().parse_args(["--url", "https://h/", "--username", "root", "--password-file", "pw",
                                      "prepare-vm"])
    assert prepare_vm_argv(args, ["--vm", "vm1"]) == ["--url", "https://h/", "--username-xapi", "root",
                                                      "--password-file-xapi", "pw", "--vm", "vm1"]
    assert prepare_vm_argv(build_parser().parse_args(["prepare-vm"]), ["-h"]) == ["-h"]
    args = build_parser().parse_args(["--url", "https://h/", "--insecure", "prepare-vm"])
    assert prepare_vm_argv(args, ["--vm", "vm1"]) == ["--url", "https://h/", "--insecure-xapi", "--vm", "vm1"]
    assert split_prepare_vm(["--url", "https://h/", "--insecure", "--ca-file", "c", "prepare-vm", "-x"]) == \
        (["--url", "https://h/", "--insecure", "--ca-file", "c"], ["-x"])


def test_xapi_refusals_of_the_users_role_and_of_the_pool_have_their_exit_codes():
    err = failures.from_xapi_failure(
        ["RBAC_PERMISSION_DENIED", "host.call_plugin",
         "No permission in user session. (Roles with this permission: pool-admin)"],
        "running the plugin function register")
    assert err.code == "RBAC_PERMISSION_DENIED"
    assert failures.exit_code(err) == exitcodes.EXIT_PERMISSION == 6
    assert "host.call_plugin" in err.message and "pool-admin" in err.message
    for code, expected in (("VM_NOT_RUNNING", exitcodes.EXIT_UNREACHABLE),
                           ("ARGUMENT_TOO_LARGE", exitcodes.EXIT_USAGE),
                           ("HOST_OFFLINE", exitcodes.EXIT_FAILED),
                           ("PLUGIN_NOT_INSTALLED", exitcodes.EXIT_FAILED)):
        err = failures.from_xapi_failure(["XENAPI_PLUGIN_FAILURE", "get_logs", code, "Why."], "x")
        assert (err.code, failures.exit_code(err)) == (code, expected)
