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
