import io

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from xscontainer.poolkeys import generate_keypair, public_line_from_private


def test_new_pool_keys_are_ed25519_and_loadable_by_paramiko():
    pair = generate_keypair()
    assert pair.public_line.startswith("ssh-ed25519 ")
    assert pair.public_line.endswith(" xscontainer")
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pair.private_pem))
    assert pair.public_line.split()[1] == key.get_base64()
    assert public_line_from_private(pair.private_pem) == pair.public_line


def test_public_line_derived_from_a_legacy_rsa_pem_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    line = public_line_from_private(pem)
    assert line.startswith("ssh-rsa ")
    assert line.split()[1] == paramiko.RSAKey.from_private_key(io.StringIO(pem)).get_base64()


def _rsa_pair(bits=2048):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    return key, pem


def test_legacy_rsa_pool_key_is_loaded_without_revalidation_and_signs():
    from xscontainer.poolkeys import paramiko_key_from_text
    _, pem = _rsa_pair()
    pkey = paramiko_key_from_text(pem, public_line_from_private(pem))
    assert isinstance(pkey, paramiko.RSAKey)
    assert pkey.get_base64() == public_line_from_private(pem).split()[1]
    signature = pkey.sign_ssh_data(b"challenge", "rsa-sha2-256")
    signature.rewind()
    assert paramiko.RSAKey(data=pkey.asbytes()).verify_ssh_sig(b"challenge", signature)


def test_pool_key_loader_never_runs_the_rsa_consistency_check(monkeypatch):
    # The check costs 200+ ms for a 4096-bit key on dom0, on every plugin call without a monitor;
    # the key is ours, read from xapi's secret store.
    from cryptography.hazmat.primitives import serialization as ser
    from xscontainer import poolkeys
    _, pem = _rsa_pair()
    seen = []
    real = ser.load_pem_private_key

    def spy(data, password, *args, **kwargs):
        seen.append(kwargs.get("unsafe_skip_rsa_key_validation", False))
        return real(data, password, *args, **kwargs)
    monkeypatch.setattr(ser, "load_pem_private_key", spy)
    poolkeys.paramiko_key_from_text(pem, "ssh-rsa AAAA xscontainer")
    poolkeys.public_line_from_private(pem)
    assert seen == [True, True]


def test_ed25519_pool_key_loads_through_the_same_function():
    from xscontainer.poolkeys import paramiko_key_from_text
    pair = generate_keypair()
    pkey = paramiko_key_from_text(pair.private_pem, pair.public_line)
    assert isinstance(pkey, paramiko.Ed25519Key)
    assert pkey.get_base64() == pair.public_line.split()[1]
