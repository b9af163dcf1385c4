"""A pool upgraded from the original product, on the simulator: the RSA key pair its
pool.other_config names and the TLS secrets a VM's other_config names are used as they are."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from xscontainer.poolkeys import ensure_pool_keypair, paramiko_key_from_text
from xscontainer.sim.process import SimulatorProcess
from xscontainer.tlscerts import generate_tls_bundle, read_client_tls
from xscontainer.vmsettings import read_vm_settings
from xscontainer.xapi.session import lend


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    sim = SimulatorProcess(str(tmp_path_factory.mktemp("sim")))
    sim.start(30.0)
    try:
        s = sim.url_session()
        yield s
        s.xenapi.session.logout()
    finally:
        sim.stop()


def _secret(session, value):
    return session.xenapi.secret.get_uuid(session.xenapi.secret.create({"value": value, "other_config": {}}))


def _original_rsa_pair():
    """What the original stored: ssh-keygen's PEM private key and public line, stripped."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode("ascii").strip()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return private, public + " root@xcp-ng-host"


def test_the_original_pools_rsa_key_pair_is_kept(session):
    api = session.xenapi
    pool = api.pool.get_all()[0]
    private, public = _original_rsa_pair()
    api.pool.add_to_other_config(pool, "xscontainer-private-secret-uuid", _secret(session, private))
    api.pool.add_to_other_config(pool, "xscontainer-public-secret-uuid", _secret(session, public))
    api.pool.add_to_other_config(pool, "someone-else", "kept")
    before_config, before_secrets = api.pool.get_other_config(pool), sorted(api.secret.get_all())

    pair = ensure_pool_keypair(session)
    assert (pair.private_pem, pair.public_line) == (private, public)
    assert paramiko_key_from_text(pair.private_pem, pair.public_line).get_base64() == public.split()[1]
    assert api.pool.get_other_config(pool) == before_config
    assert sorted(api.secret.get_all()) == before_secrets  # no new pair was made


def test_the_original_vms_tls_secrets_are_read_as_they_are(session):
    api = session.xenapi
    bundle = generate_tls_bundle(["192.0.2.10"])
    vm = api.VM.create({"name_label": "upgraded-tls-vm"})
    vm_uuid = api.VM.get_uuid(vm)
    names = {"xscontainer-tls-ca-cert": _secret(session, bundle.ca_cert),
             "xscontainer-tls-client-cert": _secret(session, bundle.client_cert),
             "xscontainer-tls-client-key": _secret(session, bundle.client_key)}
    for key, uuid in sorted(names.items()):
        api.VM.add_to_other_config(vm, key, uuid)
    api.VM.add_to_other_config(vm, "xscontainer-mode", "tls")
    before = api.VM.get_other_config(vm)

    tls = read_client_tls(lend(session), read_vm_settings(session, vm_uuid))
    assert tuple(tls) == (bundle.ca_cert, bundle.client_cert, bundle.client_key)
    assert api.VM.get_other_config(vm) == before
