"""prepare-vm end to end on the shared testbed: a VM whose `core` user does not authorize the
pool key yet is prepared with an administrator's own key, twice (idempotent), and then monitored;
wrong credentials and a changed host key fail with exit code 4.

The testbed is shared: everything changed here (authorized_keys, other_config keys) is restored.
"""

import os
import pwd

import pytest

from xscontainer.engine.diagnose import diagnose
from xscontainer.hostkeys import fingerprint
from xscontainer.poolkeys import generate_keypair
from xscontainer.xapi.maps import remove_map_key, set_map_key
from xscontainer.xapi.session import close_session, lend

from tests.prepare.conftest import run_prepare

SAVED_KEYS = ("xscontainer-username", "xscontainer-mode", "xscontainer-monitor", "xscontainer-sshhostkey")


def _write_authorized_keys(path, text):
    core = pwd.getpwnam("core")
    tmp = path + ".restore"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(text)
    os.chown(tmp, core.pw_uid, core.pw_gid)
    os.replace(tmp, path)


def _read(path):
    with open(path) as handle:
        return handle.read()


class Target(object):
    """One testbed VM prepared for the test: only the admin's key authorized for core."""

    def __init__(self, testbed, session, vm, key_dir):
        self.testbed = testbed
        self.session = session
        self.vm = vm
        self.name = vm["name_label"]
        self.uuid = vm["uuid"]
        self.ref = session.xenapi.VM.get_by_uuid(self.uuid)
        self.authorized_keys = os.path.join(testbed.vm_dir(self.name), "home", "core", ".ssh", "authorized_keys")
        self.socket = testbed.info()["unix_socket"]
        self.admin = generate_keypair(comment="admin@test")
        self.admin_key = os.path.join(key_dir, "admin_ed25519")
        with open(os.open(self.admin_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(self.admin.private_pem)
        self.pool_line = testbed.pool_keypair().public_line

    def other_config(self):
        return self.session.xenapi.VM.get_other_config(self.ref)

    def prepare(self, *extra, **kwargs):
        # The administrator read the fingerprint on the VM's console (the testbed knows the key).
        args = ["--vm", kwargs.get("vm", self.name), "--mode", "ssh", "--username", "core",
                "--identity", kwargs.get("identity", self.admin_key), "--yes", "--timeout", "10",
                "--host-key-fingerprint", fingerprint(self.vm["ssh_host_key"])] + list(extra)
        return run_prepare(args, self.socket)


@pytest.fixture
def target(testbed, tmp_path):
    info = testbed.info()
    vm = info["vms"][-1]
    session = testbed.xapi_session()
    try:
        target = Target(testbed, session, vm, str(tmp_path))
        original_keys = _read(target.authorized_keys)
        config = target.other_config()
        saved = dict((key, config.get(key)) for key in SAVED_KEYS)
        # The VM starts without the pool key: only the administrator's key lets `core` in.
        _write_authorized_keys(target.authorized_keys, target.admin.public_line + "\n")
        for key in SAVED_KEYS:
            if key != "xscontainer-sshhostkey":
                remove_map_key(session.xenapi.VM, target.ref, key)
        try:
            yield target
        finally:
            _write_authorized_keys(target.authorized_keys, original_keys)
            for key, value in saved.items():
                if value is None:
                    remove_map_key(session.xenapi.VM, target.ref, key)
                else:
                    set_map_key(session.xenapi.VM, target.ref, key, value)
    finally:
        close_session(session)


def _count(text, public_line):
    blob = public_line.split()[1]
    return sum(1 for line in text.splitlines() if blob in line.split())


def test_prepare_vm_end_to_end_and_idempotent(target):
    assert _count(_read(target.authorized_keys), target.pool_line) == 0
    before = diagnose(lend(target.session), target.uuid, timeout=10)
    assert before.code == "SSH_AUTH_FAILED", before
    # A bad mode left by someone is no obstacle: preparing overwrites it.
    set_map_key(target.session.xenapi.VM, target.ref, "xscontainer-mode", "bogus")

    first = target.prepare()
    assert first.returncode == 0, first
    assert "Added the pool's SSH key" in first.stdout and "Monitoring works" in first.stdout
    text = _read(target.authorized_keys)
    assert _count(text, target.pool_line) == 1
    assert _count(text, target.admin.public_line) == 1
    config = target.other_config()
    assert config["xscontainer-username"] == "core"
    assert config["xscontainer-mode"] == "ssh"
    assert config["xscontainer-monitor"] == "True"
    assert config["xscontainer-sshhostkey"] == target.vm["ssh_host_key"]
    assert diagnose(lend(target.session), target.uuid, timeout=10).ok

    second = target.prepare()
    assert second.returncode == 0, second
    assert "already in" in second.stdout and "Monitoring works" in second.stdout
    assert _read(target.authorized_keys) == text


def test_wrong_admin_key_is_refused_with_exit_code_4(target, tmp_path):
    stranger = str(tmp_path / "stranger")
    with open(os.open(stranger, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write(generate_keypair().private_pem)
    before = _read(target.authorized_keys)
    run = target.prepare(identity=stranger)
    assert run.returncode == 4, run
    assert "refused the login of user 'core' with the key in %s" % stranger in run.stderr
    assert "ADMIN_AUTH_FAILED" in run.stderr
    assert _read(target.authorized_keys) == before
    assert "xscontainer-monitor" not in target.other_config()


def test_changed_host_key_is_refused_with_exit_code_4(target):
    other_host_key = generate_keypair().public_line.split()[1]
    set_map_key(target.session.xenapi.VM, target.ref, "xscontainer-sshhostkey", other_host_key)
    run = target.prepare()
    assert run.returncode == 4, run
    assert "SSH_HOSTKEY_MISMATCH" in run.stderr and "xe vm-param-remove" in run.stderr
    assert _count(_read(target.authorized_keys), target.pool_line) == 0


def test_unknown_vm_on_the_testbed_exits_3(target):
    run = target.prepare(vm="00000000-0000-0000-0000-000000000000")
    assert run.returncode == 3 and "no VM" in run.stderr, run


def test_tls_generate_certs_then_engine_served_with_them_is_monitored(testbed, tmp_path):
    """The whole TLS flow: --generate-certs for a VM, a real dockerd --tlsverify started with the
    written server files (in vm3's namespace, at the address the VM reports), then --verify-only
    reports that monitoring works."""
    import random
    import types
    from tlsengine import TlsEngine
    info = testbed.info()
    host_vm = [v for v in info["vms"] if v["name_label"] == "vm3"][0]
    address = host_vm["ip"]
    session = testbed.xapi_session()
    api = session.xenapi
    ref = api.VM.create({"name_label": "prepare-tls-%d" % random.randint(0, 1 << 30)})
    secrets = []
    engine = None
    try:
        api.VM.start_on(ref, api.host.get_by_uuid(info["hosts"][0]["uuid"]), False, False)
        api.sim.set_guest_networks(ref, {"0/ip": address, "0/ipv4/0": address})
        uuid = api.VM.get_uuid(ref)
        certs = str(tmp_path / "engine")
        run = run_prepare(["--vm", uuid, "--mode", "tls", "--generate-certs", "--server-cert-dir", certs, "--yes"],
                          info["unix_socket"])
        assert run.returncode == 0, run
        config = api.VM.get_other_config(ref)
        secrets = [config[k] for k in ("xscontainer-tls-ca-cert", "xscontainer-tls-client-cert",
                                       "xscontainer-tls-client-key")]
        closed = run_prepare(["--vm", uuid, "--verify-only", "--timeout", "3"], info["unix_socket"])
        assert closed.returncode == 1 and "PORT_CLOSED" in closed.stderr, closed

        def text(name):
            with open(os.path.join(certs, name)) as handle:
                return handle.read()
        bundle = types.SimpleNamespace(ca_cert=text("ca.pem"), server_cert=text("server-cert.pem"),
                                       server_key=text("server-key.pem"))
        engine_dir = tmp_path / "dockerd"
        engine_dir.mkdir(mode=0o700)
        engine = TlsEngine(testbed, host_vm, str(engine_dir), bundle)
        engine.start()
        works = run_prepare(["--vm", uuid, "--verify-only"], info["unix_socket"])
        assert works.returncode == 0, works
        assert "Monitoring works" in works.stdout
    finally:
        if engine is not None:
            engine.stop()
        api.VM.hard_shutdown(ref)
        api.VM.destroy(ref)
        for uuid in secrets:
            api.secret.destroy(api.secret.get_by_uuid(uuid))
        close_session(session)
