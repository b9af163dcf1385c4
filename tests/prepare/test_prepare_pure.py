"""Pure parts of prepare-vm: authorized_keys merging, options, VM choice, TLS files and flags,
consent; literal inputs, no xapi and no VM."""

import io
import os
import stat

import pytest

from xscontainer.errors import ConnectionFailure, InvalidArgument, NotFound, XapiError, XSContainerError
from xscontainer.exitcodes import EXIT_REFUSED, EXIT_USAGE
from xscontainer.prepare import authkeys, steps, tls, vm
from xscontainer.prepare.options import Refused, WriteFailed, exit_code_for, parse_args
from xscontainer.tlscerts import generate_tls_bundle

POOL = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPoolPoolPoolPoolPoolPoolPoolPoolPoolPoolPool xscontainer"
OTHER = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQOther admin@laptop"


# ---------------------------------------------------------------- authorized_keys

@pytest.mark.parametrize("line,blob", [
    (POOL, POOL.split()[1]),
    ("  " + POOL + "  ", POOL.split()[1]),
    ('command="/bin/echo hi there",no-pty ' + POOL, POOL.split()[1]),
    ('restrict,from="10.0.0.1" ecdsa-sha2-nistp256 AAAAE2Vj x', "AAAAE2Vj"),
    ("sk-ssh-ed25519@openssh.com AAAAGnNr key", "AAAAGnNr"),
    ("# " + POOL, None),
    ("", None),
    ("   ", None),
    ("not a key at all", None),
    ('command="unterminated ' + POOL, None),
    ("ssh-ed25519", None),
])
def test_key_blob(line, blob):
    assert authkeys.key_blob(line) == blob


def test_append_to_empty_file_writes_the_line_once():
    assert authkeys.text_to_append("", POOL) == POOL + "\n"
    assert authkeys.merged("", POOL) == POOL + "\n"


def test_append_adds_a_missing_final_line_break():
    assert authkeys.text_to_append(OTHER, POOL) == "\n" + POOL + "\n"
    assert authkeys.merged(OTHER, POOL) == OTHER + "\n" + POOL + "\n"


def test_nothing_written_when_the_key_is_there():
    assert authkeys.text_to_append(OTHER + "\n" + POOL + "\n", POOL) is None


def test_key_there_with_another_comment_or_options_counts_as_there():
    blob = POOL.split()[1]
    assert authkeys.text_to_append("ssh-ed25519 %s old-comment\n" % blob, POOL) is None
    assert authkeys.text_to_append('no-pty ssh-ed25519 %s\n' % blob, POOL) is None


def test_commented_out_key_does_not_count():
    existing = "# " + POOL + "\n"
    assert authkeys.merged(existing, POOL) == existing + POOL + "\n"


def test_merging_is_idempotent():
    once = authkeys.merged(OTHER + "\n", POOL)
    assert authkeys.merged(once, POOL) == once
    assert authkeys.blobs(once) == [OTHER.split()[1], POOL.split()[1]]


def test_crlf_file_is_understood():
    assert authkeys.text_to_append(OTHER + "\r\n" + POOL + "\r\n", POOL) is None


@pytest.mark.parametrize("bad", ["", "garbage", POOL + "\n" + OTHER, "ssh-ed25519"])
def test_bad_public_lines_are_refused(bad):
    with pytest.raises(ValueError):
        authkeys.text_to_append("", bad)


# ---------------------------------------------------------------- options

def test_ssh_options():
    opts = parse_args(["--vm", "web", "--mode", "ssh", "--username", "core", "--yes", "-i", "/k"])
    assert (opts.vm, opts.mode, opts.username, opts.assume_yes, opts.identity) == ("web", "ssh", "core", True, "/k")
    assert opts.url is None and opts.username_xapi == "root" and opts.ssh_port == 22


@pytest.mark.parametrize("argv,fragment", [
    ([], "--vm"),
    (["--vm", "x"], "--mode"),
    (["--vm", "x", "--mode", "bogus"], "invalid choice"),
    (["--vm", "x", "--mode", "ssh"], "--username"),
    (["--vm", "x", "--mode", "ssh", "-u", "core", "-i", "k", "--password-file", "p"], "not both"),
    (["--vm", "x", "--mode", "ssh", "-u", "core", "--generate-certs"], "only apply to --mode tls"),
    (["--vm", "x", "--mode", "tls"], "--generate-certs"),
    (["--vm", "x", "--mode", "tls", "--ca-cert", "a", "--client-cert", "b"], "together"),
    (["--vm", "x", "--mode", "tls", "--generate-certs"], "--server-cert-dir"),
    (["--vm", "x", "--mode", "tls", "--generate-certs", "--server-cert-dir", "d", "--ca-cert", "a"], "not both"),
    (["--vm", "x", "--mode", "tls", "--ca-cert", "a", "--client-cert", "b", "--client-key", "c",
      "--server-cert-dir", "d"], "only apply with --generate-certs"),
    (["--vm", "x", "--mode", "tls", "--generate-certs", "--server-cert-dir", "d", "--cert-ip", "nope"],
     "not an IP"),
    (["--vm", "x", "--mode", "tls", "--generate-certs", "--server-cert-dir", "d", "-i", "k"], "not supported"),
    (["--vm", "x", "--mode", "ssh", "-u", "core", "--username-xapi", "root"], "only apply with --url"),
    (["--vm", "x", "--verify-only", "--mode", "ssh"], "changes nothing"),
    (["--vm", " ", "--mode", "ssh", "-u", "core"], "--vm"),
    (["--vm", "x", "--mode", "ssh", "-u", "core", "--timeout", "0"], "--timeout"),
])
def test_usage_errors(argv, fragment):
    with pytest.raises(InvalidArgument) as info:
        parse_args(argv)
    assert fragment in info.value.message
    assert exit_code_for(info.value) == EXIT_USAGE


def test_tls_options():
    opts = parse_args(["--vm", "x", "--mode", "tls", "--generate-certs", "--server-cert-dir", "/d",
                       "--cert-ip", "10.0.0.5", "--cert-dns", "vm.example"])
    assert opts.generate_certs and opts.server_cert_dir == "/d"
    assert opts.cert_ips == ["10.0.0.5"] and opts.cert_dns == ["vm.example"]
    assert opts.remote_cert_dir == "/etc/docker/tls"


def test_main_reports_usage_errors_with_code_2_and_help_with_0(capsys):
    from xscontainer.prepare.cli import main
    assert main(["--vm", "x", "--mode", "ssh"]) == 2
    assert "--username" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


@pytest.mark.parametrize("exc,code", [
    (Refused("no"), 9), (WriteFailed("w"), 7), (InvalidArgument("u"), 2), (NotFound("n"), 3),
    (ConnectionFailure("c", code="SSH_HOSTKEY_MISMATCH"), 4), (XapiError("x"), 5), (XSContainerError("?"), 8),
])
def test_exit_codes(exc, code):
    assert exit_code_for(exc) == code


# ---------------------------------------------------------------- choosing the VM

def _rec(uuid, name, **extra):
    record = {"uuid": uuid, "name_label": name, "power_state": "Running", "is_a_template": False,
              "is_control_domain": False, "is_a_snapshot": False}
    record.update(extra)
    return record


def test_choose_vm_by_uuid_and_by_name():
    candidates = [("r1", _rec("u1", "web")), ("r2", _rec("u2", "db"))]
    assert vm.choose_vm("u2", candidates) == vm.VmChoice("u2", "r2", "db", "Running")
    assert vm.choose_vm("web", candidates).uuid == "u1"


def test_choose_vm_ignores_templates_by_name_and_reports_ambiguity():
    candidates = [("r1", _rec("u1", "web")), ("r2", _rec("u2", "web", is_a_template=True))]
    assert vm.choose_vm("web", candidates).uuid == "u1"
    with pytest.raises(NotFound) as info:
        vm.choose_vm("web", candidates + [("r3", _rec("u3", "web"))])
    assert info.value.code == "VM_AMBIGUOUS" and "u1" in info.value.message and "u3" in info.value.message


def test_choose_vm_not_found_and_not_a_guest():
    with pytest.raises(NotFound) as info:
        vm.choose_vm("nope", [])
    assert info.value.code == "VM_NOT_FOUND" and exit_code_for(info.value) == 3
    with pytest.raises(NotFound):
        vm.choose_vm("u0", [("r0", _rec("u0", "Control domain", is_control_domain=True))])


def test_settings_written_per_mode():
    assert vm.ssh_settings("ubuntu") == {"xscontainer-username": "ubuntu", "xscontainer-mode": "ssh",
                                         "xscontainer-monitor": "True"}
    assert vm.tls_settings() == {"xscontainer-mode": "tls", "xscontainer-monitor": "True"}


# ---------------------------------------------------------------- TLS material

def test_dockerd_flags_and_daemon_json():
    assert tls.dockerd_flags("/etc/docker/tls/") == [
        "--tlsverify", "--tlscacert=/etc/docker/tls/ca.pem", "--tlscert=/etc/docker/tls/server-cert.pem",
        "--tlskey=/etc/docker/tls/server-key.pem", "-H", "tcp://0.0.0.0:2376", "-H", "unix:///var/run/docker.sock"]
    import json
    doc = json.loads(tls.daemon_json("/d"))
    assert doc["tlsverify"] is True and doc["tlscacert"] == "/d/ca.pem" and "tcp://0.0.0.0:2376" in doc["hosts"]


@pytest.fixture(scope="module")
def bundle():
    return generate_tls_bundle(["127.0.0.1"])


def test_client_material_checks(bundle):
    names = ("ca", "cert", "key")
    tls.check_client_material(bundle.ca_cert, bundle.client_cert, bundle.client_key, names)
    with pytest.raises(InvalidArgument, match="does not belong"):
        tls.check_client_material(bundle.ca_cert, bundle.client_cert, bundle.server_key, names)
    with pytest.raises(InvalidArgument, match="ca is not a PEM certificate"):
        tls.check_client_material("junk", bundle.client_cert, bundle.client_key, names)
    with pytest.raises(InvalidArgument, match="key is not"):
        tls.check_client_material(bundle.ca_cert, bundle.client_cert, bundle.client_cert, names)


def test_server_files_written_with_modes_and_never_overwritten(bundle, tmp_path):
    target = str(tmp_path / "new" / "certs")
    tls.check_server_dir(target)
    paths = tls.write_server_files(target, bundle)
    assert [os.path.basename(p) for p in paths] == ["ca.pem", "server-cert.pem", "server-key.pem"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths[2]).st_mode) == 0o600
    with open(paths[1]) as handle:
        assert handle.read() == bundle.server_cert
    assert not any("ca-key" in name or name.endswith("ca.key") for name in os.listdir(target))
    with pytest.raises(InvalidArgument, match="already holds"):
        tls.check_server_dir(target)
    with pytest.raises(WriteFailed):
        tls.write_server_files(target, bundle)


# ---------------------------------------------------------------- consent

def _console(answer, interactive=True):
    out, err = io.StringIO(), io.StringIO()
    return steps.Console(stdin=io.StringIO(answer), stdout=out, stderr=err, interactive=interactive), out


@pytest.mark.parametrize("answer", ["y\n", "YES\n", " yes \n"])
def test_consent_given(answer):
    console, out = _console(answer)
    steps.confirm(console, ["plan line"], assume_yes=False)
    assert "plan line" in out.getvalue() and "[y/N]" in out.getvalue()


@pytest.mark.parametrize("answer", ["n\n", "\n", "", "maybe\n"])
def test_consent_refused(answer):
    console, _ = _console(answer)
    with pytest.raises(Refused) as info:
        steps.confirm(console, ["plan"], assume_yes=False)
    assert exit_code_for(info.value) == EXIT_REFUSED == 9


def test_no_terminal_without_yes_is_refused_with_advice():
    console, out = _console("y\n", interactive=False)
    with pytest.raises(Refused) as info:
        steps.confirm(console, ["plan"], assume_yes=False)
    assert "--yes" in info.value.message and "[y/N]" not in out.getvalue()
    steps.confirm(console, ["plan"], assume_yes=True)


def test_credentials_from_files(tmp_path):
    from xscontainer.poolkeys import generate_keypair
    key = tmp_path / "id"
    key.write_text(generate_keypair().private_pem)
    password = tmp_path / "pw"
    password.write_text("s3cret with spaces\nignored\n")
    console, _ = _console("", interactive=False)
    base = ["--vm", "x", "--mode", "ssh", "-u", "core"]
    creds = steps.file_credentials(parse_args(base + ["-i", str(key)]), console)
    assert creds.pkey is not None and creds.password is None and str(key) in creds.description
    creds = steps.file_credentials(parse_args(base + ["--password-file", str(password)]), console)
    assert creds.password == "s3cret with spaces" and creds.pkey is None
    for bad in (["-i", str(tmp_path / "missing")], ["-i", str(password)], ["--password-file", str(tmp_path / "none")], []):
        with pytest.raises(InvalidArgument):
            steps.file_credentials(parse_args(base + bad), console)
