"""prepare-vm verifies the VM's SSH host key before it sends anything: against a key already
pinned, a ``--host-key-fingerprint`` given, or the administrator's answer on the terminal. The VM
is a recording paramiko server (``fakesshd``) behind a simulated VM whose guest reports
127.0.0.1, so the tests see every authentication attempt the command made."""

import base64
import hashlib
import os
import pty
import subprocess
import sys
import time

import pytest

from xscontainer.exitcodes import EXIT_REFUSED

from tests.prepare.conftest import run_prepare
from tests.prepare.fakesshd import FakeSshd

HOSTKEY = "xscontainer-sshhostkey"


def openssh_fingerprint(b64_blob):
    """What ``ssh-keygen -l`` prints: SHA256 of the key blob, base64 without padding."""
    digest = hashlib.sha256(base64.b64decode(b64_blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@pytest.fixture
def sshd():
    server = FakeSshd()
    yield server
    server.close()


@pytest.fixture
def vm(sim_session):
    api = sim_session.xenapi
    ref = api.VM.create({"name_label": "hostkey-%s" % os.urandom(4).hex()})
    api.VM.start_on(ref, api.host.get_all()[0], False, False)
    api.sim.set_guest_networks(ref, {"0/ip": "127.0.0.1", "0/ipv4/0": "127.0.0.1"})
    return api.VM.get_uuid(ref), ref


@pytest.fixture
def password_file(tmp_path, sshd):
    path = tmp_path / "pw"
    path.write_text(sshd.password + "\n")
    return str(path)


def ssh_args(uuid, sshd, password_file, *extra):
    return ["--vm", uuid, "--mode", "ssh", "-u", "core", "--password-file", password_file,
            "--ssh-port", str(sshd.port), "--timeout", "5"] + list(extra)


def test_fingerprint_matches_ssh_keygen(tmp_path):
    from xscontainer.hostkeys import fingerprint
    from xscontainer.poolkeys import generate_keypair
    line = generate_keypair().public_line
    pub = tmp_path / "k.pub"
    pub.write_text(line + "\n")
    printed = subprocess.check_output(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
                                      universal_newlines=True).split()[1]
    assert fingerprint(line.split()[1]) == printed == openssh_fingerprint(line.split()[1])


def test_wrong_fingerprint_is_refused_before_any_password(simpool, sim_session, sshd, vm, password_file):
    uuid, ref = vm
    other = openssh_fingerprint(base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00" * 36).decode())
    run = run_prepare(ssh_args(uuid, sshd, password_file, "--yes", "--host-key-fingerprint", other),
                      simpool.info["unix_socket"])
    assert run.returncode == 4, run
    assert "HOSTKEY_FINGERPRINT_MISMATCH" in run.stderr
    assert openssh_fingerprint(sshd.host_key_b64) in run.stderr and other in run.stderr
    assert sshd.attempts() == []  # nothing was sent: no password, no key
    config = sim_session.xenapi.VM.get_other_config(ref)
    assert HOSTKEY not in config and "xscontainer-monitor" not in config


def test_unverified_key_without_terminal_is_refused_before_any_password(simpool, sim_session, sshd, vm,
                                                                         password_file):
    uuid, ref = vm
    run = run_prepare(ssh_args(uuid, sshd, password_file, "--yes"), simpool.info["unix_socket"])
    assert run.returncode == EXIT_REFUSED, run
    assert "HOSTKEY_NOT_VERIFIED" in run.stderr and "--host-key-fingerprint" in run.stderr
    assert openssh_fingerprint(sshd.host_key_b64) in run.stderr  # shown, so it can be checked
    assert sshd.attempts() == []
    assert HOSTKEY not in sim_session.xenapi.VM.get_other_config(ref)


def test_right_fingerprint_pins_then_logs_in(simpool, sim_session, sshd, vm, password_file):
    uuid, ref = vm
    run = run_prepare(ssh_args(uuid, sshd, password_file, "--yes", "--host-key-fingerprint",
                               openssh_fingerprint(sshd.host_key_b64)), simpool.info["unix_socket"])
    # The fake VM has no SFTP: the key cannot be installed (exit 7), but the login happened.
    assert run.returncode == 7, run
    assert sshd.attempts() == [("password", "core", sshd.password)]
    assert sim_session.xenapi.VM.get_other_config(ref)[HOSTKEY] == sshd.host_key_b64


def test_key_pinned_already_counts_as_verified(simpool, sim_session, sshd, vm, password_file):
    uuid, ref = vm
    sim_session.xenapi.VM.add_to_other_config(ref, HOSTKEY, sshd.host_key_b64)
    run = run_prepare(ssh_args(uuid, sshd, password_file, "--yes"), simpool.info["unix_socket"])
    assert run.returncode == 7, run
    assert sshd.attempts() == [("password", "core", sshd.password)]


def test_pinned_key_wins_over_a_given_fingerprint(simpool, sim_session, sshd, vm, password_file):
    """A changed host key is refused even when the administrator gives its fingerprint: the
    old pin must be removed on purpose (the message says how)."""
    uuid, ref = vm
    old = FakeSshd()
    try:
        sim_session.xenapi.VM.add_to_other_config(ref, HOSTKEY, old.host_key_b64)
    finally:
        old.close()
    run = run_prepare(ssh_args(uuid, sshd, password_file, "--yes", "--host-key-fingerprint",
                               openssh_fingerprint(sshd.host_key_b64)), simpool.info["unix_socket"])
    assert run.returncode == 4 and "SSH_HOSTKEY_MISMATCH" in run.stderr, run
    assert sshd.attempts() == []


def _run_on_terminal(args, socket_path, answers):
    """Run prepare-vm on a pseudo-terminal, answering each ``[y/N]`` prompt in turn."""
    master, slave = pty.openpty()
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=socket_path)
    proc = subprocess.Popen([sys.executable, "-m", "xscontainer.prepare.cli"] + args, stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if pending and seen.count(b"[y/N]") > len(answers) - len(pending):
            os.write(master, pending.pop(0))
    os.close(master)
    return proc.wait(30), seen.decode("utf-8", "replace")


def test_terminal_shows_the_fingerprint_and_no_sends_nothing(simpool, sim_session, sshd, vm, password_file):
    uuid, ref = vm
    rc, text = _run_on_terminal(ssh_args(uuid, sshd, password_file), simpool.info["unix_socket"], [b"y\n", b"n\n"])
    assert rc == EXIT_REFUSED, text
    assert openssh_fingerprint(sshd.host_key_b64) in text
    assert sshd.attempts() == []
    assert HOSTKEY not in sim_session.xenapi.VM.get_other_config(ref)


def test_terminal_yes_pins_and_logs_in(simpool, sim_session, sshd, vm, password_file):
    uuid, ref = vm
    rc, text = _run_on_terminal(ssh_args(uuid, sshd, password_file), simpool.info["unix_socket"], [b"y\n", b"y\n"])
    assert rc == 7, text
    assert sshd.attempts() == [("password", "core", sshd.password)]
    assert sim_session.xenapi.VM.get_other_config(ref)[HOSTKEY] == sshd.host_key_b64


def test_a_key_pinned_for_another_vm_is_refused_before_any_password(simpool, sim_session, sshd, vm,
                                                                   password_file):
    """The guest of the VM being prepared reports the address of another VM whose key is pinned:
    even the administrator's (mistaken) fingerprint cannot make one key vouch for two VMs."""
    uuid, ref = vm
    api = sim_session.xenapi
    other = api.VM.create({"name_label": "pinned-elsewhere"})
    api.VM.add_to_other_config(other, HOSTKEY, sshd.host_key_b64)
    api.VM.add_to_other_config(other, "xscontainer-sshhostkey-vm", api.VM.get_uuid(other))
    run = run_prepare(ssh_args(uuid, sshd, password_file, "--yes", "--host-key-fingerprint",
                               openssh_fingerprint(sshd.host_key_b64)), simpool.info["unix_socket"])
    assert run.returncode == 4 and "SSH_HOSTKEY_DUPLICATE" in run.stderr, run
    assert api.VM.get_uuid(other) in run.stderr
    assert sshd.attempts() == []
    assert HOSTKEY not in api.VM.get_other_config(ref)
    api.VM.destroy(other)
