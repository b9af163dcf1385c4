"""prepare-vm against the simulator alone (no VM behind it): TLS secrets, refusals, lookups,
remote xapi. The SSH path end to end is on the testbed (test_prepare_testbed.py)."""

import os
import random
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.asymmetric import ec

from xscontainer.exitcodes import EXIT_REFUSED, EXIT_XAPI
from xscontainer.tlscerts import generate_tls_bundle

from tests.prepare.conftest import run_prepare

TLS_KEYS = ("xscontainer-tls-ca-cert", "xscontainer-tls-client-cert", "xscontainer-tls-client-key")


def closed_loopback_address():
    # A loopback address nothing listens on: connections are refused at once.
    return "127.%d.%d.%d" % (random.randint(1, 254), random.randint(1, 254), random.randint(2, 254))


def make_vm(session, name, address=None, running=True):
    api = session.xenapi
    ref = api.VM.create({"name_label": name})
    if running:
        api.VM.start_on(ref, api.host.get_all()[0], False, False)
    if address:
        api.sim.set_guest_networks(ref, {"0/ip": address, "0/ipv4/0": address})
    return api.VM.get_uuid(ref), ref


def secret_value(session, uuid):
    return session.xenapi.secret.get_value(session.xenapi.secret.get_by_uuid(uuid))


def load_cert(pem):
    return x509.load_pem_x509_certificate(pem.encode("ascii"), default_backend())


def issued_by(cert, ca):
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    return cert.issuer == ca.subject


def test_generate_certs_stores_three_secrets_and_writes_server_files(simpool, sim_session, tmp_path):
    address = closed_loopback_address()
    uuid, ref = make_vm(sim_session, "tls-gen", address)
    target = str(tmp_path / "engine-certs")
    run = run_prepare(["--vm", "tls-gen", "--mode", "tls", "--generate-certs", "--server-cert-dir", target,
                       "--cert-dns", "tls-gen.example", "--yes"], simpool.info["unix_socket"])
    assert run.returncode == 0, run
    config = sim_session.xenapi.VM.get_other_config(ref)
    assert config["xscontainer-mode"] == "tls" and config["xscontainer-monitor"] == "True"
    values = dict((key, secret_value(sim_session, config[key])) for key in TLS_KEYS)
    with open(os.path.join(target, "ca.pem")) as handle:
        assert values["xscontainer-tls-ca-cert"] == handle.read()
    ca = load_cert(values["xscontainer-tls-ca-cert"])
    assert issued_by(load_cert(values["xscontainer-tls-client-cert"]), ca)
    with open(os.path.join(target, "server-cert.pem")) as handle:
        server = load_cert(handle.read())
    assert issued_by(server, ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address(address) in san.get_values_for_type(x509.IPAddress)
    assert "tls-gen.example" in san.get_values_for_type(x509.DNSName)
    assert "BEGIN" in values["xscontainer-tls-client-key"]
    assert sorted(os.listdir(target)) == ["ca.pem", "server-cert.pem", "server-key.pem"]
    assert "--tlsverify" in run.stdout and "tcp://0.0.0.0:2376" in run.stdout
    assert values["xscontainer-tls-client-key"] not in run.stdout + run.stderr

    # Again into a new directory: new secrets referenced, the old ones destroyed.
    again = run_prepare(["--vm", uuid, "--mode", "tls", "--generate-certs", "--server-cert-dir",
                         str(tmp_path / "second"), "--yes"], simpool.info["unix_socket"])
    assert again.returncode == 0, again
    new_config = sim_session.xenapi.VM.get_other_config(ref)
    for key in TLS_KEYS:
        assert new_config[key] != config[key]
        secret_value(sim_session, new_config[key])
        with pytest.raises(Exception):
            secret_value(sim_session, config[key])

    # The same directory twice: refused before anything changes.
    third = run_prepare(["--vm", uuid, "--mode", "tls", "--generate-certs", "--server-cert-dir", target, "--yes"],
                        simpool.info["unix_socket"])
    assert third.returncode == 2 and "already holds" in third.stderr, third
    assert sim_session.xenapi.VM.get_other_config(ref) == new_config


def test_given_certs_are_stored_and_a_closed_engine_port_is_diagnosed(simpool, sim_session, tmp_path):
    uuid, ref = make_vm(sim_session, "tls-given", closed_loopback_address())
    bundle = generate_tls_bundle(["127.0.0.1"])
    paths = []
    for name, text in (("ca.pem", bundle.ca_cert), ("cert.pem", bundle.client_cert), ("key.pem", bundle.client_key)):
        path = tmp_path / name
        path.write_text(text)
        paths.append(str(path))
    run = run_prepare(["--vm", uuid, "--mode", "tls", "--ca-cert", paths[0], "--client-cert", paths[1],
                       "--client-key", paths[2], "--yes", "--timeout", "2"], simpool.info["unix_socket"])
    assert run.returncode == 1, run
    assert "PORT_CLOSED" in run.stderr
    config = sim_session.xenapi.VM.get_other_config(ref)
    assert secret_value(sim_session, config["xscontainer-tls-client-cert"]) == bundle.client_cert
    assert secret_value(sim_session, config["xscontainer-tls-ca-cert"]) == bundle.ca_cert
    assert config["xscontainer-mode"] == "tls"

    mismatched = run_prepare(["--vm", uuid, "--mode", "tls", "--ca-cert", paths[0], "--client-cert", paths[1],
                              "--client-key", paths[0], "--yes"], simpool.info["unix_socket"])
    assert mismatched.returncode == 2 and "not an unencrypted PEM private key" in mismatched.stderr


def test_generate_certs_needs_an_address(simpool, sim_session, tmp_path):
    make_vm(sim_session, "tls-noaddr")
    run = run_prepare(["--vm", "tls-noaddr", "--mode", "tls", "--generate-certs", "--server-cert-dir",
                       str(tmp_path / "c"), "--yes"], simpool.info["unix_socket"])
    assert run.returncode == 2 and "--cert-ip" in run.stderr, run
    assert not os.path.exists(str(tmp_path / "c"))


def test_no_terminal_and_no_yes_is_refused_and_changes_nothing(simpool, sim_session, tmp_path):
    uuid, ref = make_vm(sim_session, "consent", closed_loopback_address())
    before = sim_session.xenapi.VM.get_other_config(ref)
    run = run_prepare(["--vm", uuid, "--mode", "tls", "--generate-certs", "--server-cert-dir",
                       str(tmp_path / "c")], simpool.info["unix_socket"], stdin_text="y\n")
    assert run.returncode == EXIT_REFUSED, run
    assert "--yes" in run.stderr and "Nothing was changed" in run.stderr
    assert sim_session.xenapi.VM.get_other_config(ref) == before
    assert not os.path.exists(str(tmp_path / "c"))


def test_unknown_and_ambiguous_vms(simpool, sim_session, tmp_path):
    key = tmp_path / "id"
    from xscontainer.poolkeys import generate_keypair
    key.write_text(generate_keypair().private_pem)
    ssh = ["--mode", "ssh", "-u", "core", "-i", str(key), "--yes"]
    run = run_prepare(["--vm", "no-such-vm"] + ssh, simpool.info["unix_socket"])
    assert run.returncode == 3 and "no VM with uuid or name-label 'no-such-vm'" in run.stderr, run
    make_vm(sim_session, "twin")
    make_vm(sim_session, "twin")
    run = run_prepare(["--vm", "twin"] + ssh, simpool.info["unix_socket"])
    assert run.returncode == 3 and "2 VMs are called 'twin'" in run.stderr, run


def test_halted_vm_cannot_be_prepared_over_ssh(simpool, sim_session, tmp_path):
    key = tmp_path / "id"
    from xscontainer.poolkeys import generate_keypair
    key.write_text(generate_keypair().private_pem)
    uuid, ref = make_vm(sim_session, "halted", running=False)
    run = run_prepare(["--vm", uuid, "--mode", "ssh", "-u", "core", "-i", str(key), "--yes"],
                      simpool.info["unix_socket"])
    assert run.returncode == 4 and "Halted" in run.stderr and "VM_NOT_RUNNING" in run.stderr, run
    assert "xscontainer-monitor" not in sim_session.xenapi.VM.get_other_config(ref)


def test_remote_xapi_and_verify_only(simpool, sim_session, tmp_path):
    uuid, _ = make_vm(sim_session, "remote")
    password = tmp_path / "xapi-pw"
    password.write_text(simpool.info["password"] + "\n")
    run = run_prepare(["--vm", uuid, "--verify-only", "--url", simpool.info["xapi_url"],
                       "--password-file-xapi", str(password)], "/nonexistent/socket")
    assert run.returncode == 1 and "NO_ADDRESS" in run.stderr, run
    password.write_text("wrong\n")
    run = run_prepare(["--vm", uuid, "--verify-only", "--url", simpool.info["xapi_url"],
                       "--password-file-xapi", str(password)])
    assert run.returncode == EXIT_XAPI and "refused the login" in run.stderr, run


def test_unreachable_local_xapi():
    run = run_prepare(["--vm", "x", "--verify-only"], "/nonexistent/xapi")
    assert run.returncode == EXIT_XAPI and "Cannot log in to xapi" in run.stderr, run


def _run_on_terminal(args, socket_path, answer):
    """Run prepare-vm with a pseudo-terminal as stdin/stdout, answer the prompt, return (rc, text)."""
    import os
    import pty
    import subprocess
    import sys
    import time
    master, slave = pty.openpty()
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=socket_path)
    proc = subprocess.Popen([sys.executable, "-m", "xscontainer.prepare.cli"] + args, stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(master, answer)
            answered = True
    os.close(master)
    return proc.wait(30), seen.decode("utf-8", "replace")


def test_interactive_no_changes_nothing(simpool, sim_session, tmp_path):
    uuid, ref = make_vm(sim_session, "asked", closed_loopback_address())
    before = sim_session.xenapi.VM.get_other_config(ref)
    rc, text = _run_on_terminal(["--vm", uuid, "--mode", "tls", "--generate-certs", "--server-cert-dir",
                                 str(tmp_path / "c")], simpool.info["unix_socket"], b"n\n")
    assert rc == EXIT_REFUSED, text
    assert "Proceed? [y/N]" in text and "you did not confirm" in text
    assert sim_session.xenapi.VM.get_other_config(ref) == before


def test_interactive_yes_proceeds(simpool, sim_session, tmp_path):
    uuid, ref = make_vm(sim_session, "asked-yes", closed_loopback_address())
    rc, text = _run_on_terminal(["--vm", uuid, "--mode", "tls", "--generate-certs", "--server-cert-dir",
                                 str(tmp_path / "c")], simpool.info["unix_socket"], b"y\n")
    assert rc == 0, text
    assert sim_session.xenapi.VM.get_other_config(ref)["xscontainer-mode"] == "tls"
