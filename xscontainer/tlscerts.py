"""TLS material of a VM's engine: generating a throwaway CA with server and client certificates
(used by prepare-vm and the tests), and reading the client side from the xapi secrets named in
``VM.other_config``."""

import datetime
import ipaddress
from typing import List, NamedTuple

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from xscontainer.errors import ConnectionFailure
from xscontainer.vmsettings import TLS_CA_CERT_KEY, TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY, VmSettings
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.session import SessionSource


class TlsBundle(NamedTuple):
    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


class ClientTls(NamedTuple):
    ca_cert: str
    client_cert: str
    client_key: str


def _key():
    return ec.generate_private_key(ec.SECP256R1(), default_backend())


def _pem_key(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _pem_cert(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _cert(subject: str, key, issuer_name, issuer_key, days: int, ca: bool, extensions) -> x509.Certificate:
    now = datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name if issuer_name is not None else
                            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256(), default_backend())


def generate_tls_bundle(ips: List[str], dns_names: List[str] = (), days: int = 3650,
                        name: str = "xscontainer") -> TlsBundle:
    """A new CA, a server certificate valid for ``ips``/``dns_names`` (the engine's
    ``--tlscert``), and a client certificate (dom0's side), all ECDSA P-256."""
    ca_key = _key()
    ca = _cert("%s CA" % name, ca_key, None, ca_key, days, True,
               [(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)])
    server_key = _key()
    alt = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(d) for d in dns_names]
    server = _cert("%s engine" % name, server_key, ca.subject, ca_key, days, False,
                   [(x509.SubjectAlternativeName(alt), False),
                    (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    client_key = _key()
    client = _cert("%s client" % name, client_key, ca.subject, ca_key, days, False,
                   [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])
    return TlsBundle(_pem_cert(ca), _pem_key(ca_key), _pem_cert(server), _pem_key(server_key),
                     _pem_cert(client), _pem_key(client_key))


def read_client_tls(sessions: SessionSource, settings: VmSettings) -> ClientTls:
    """The VM's CA and client certificate/key, from the secrets its other_config names."""
    missing = [k for k in (TLS_CA_CERT_KEY, TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY) if k not in settings.tls_secrets]
    if missing:
        raise ConnectionFailure(
            "VM %s is in TLS mode but other-config lacks %s: run xscontainer-prepare-vm --mode tls for it."
            % (settings.vm_uuid, ", ".join(missing)), code="TLS_NOT_CONFIGURED", vm_uuid=settings.vm_uuid)
    values = {}
    with sessions() as session:
        for key in (TLS_CA_CERT_KEY, TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY):
            uuid = settings.tls_secrets[key]
            try:
                values[key] = session.xenapi.secret.get_value(session.xenapi.secret.get_by_uuid(uuid))
            except Failure as exc:
                raise ConnectionFailure(
                    "VM %s: other-config:%s names secret %s, which does not exist; run "
                    "xscontainer-prepare-vm --mode tls again." % (settings.vm_uuid, key, uuid),
                    code="TLS_NOT_CONFIGURED", vm_uuid=settings.vm_uuid) from exc
    return ClientTls(values[TLS_CA_CERT_KEY], values[TLS_CLIENT_CERT_KEY], values[TLS_CLIENT_KEY_KEY])


def store_client_tls(session: Session, vm_uuid: str, bundle: TlsBundle) -> None:
    """Store the client side of ``bundle`` as secrets and name them in the VM's other_config
    (key by key); replaced secrets are destroyed."""
    from xscontainer.xapi.maps import set_map_key
    api = session.xenapi
    vm = api.VM.get_by_uuid(vm_uuid)
    old = api.VM.get_other_config(vm)
    for key, value in ((TLS_CA_CERT_KEY, bundle.ca_cert), (TLS_CLIENT_CERT_KEY, bundle.client_cert),
                       (TLS_CLIENT_KEY_KEY, bundle.client_key)):
        ref = api.secret.create({"value": value, "other_config": {}})
        set_map_key(api.VM, vm, key, api.secret.get_uuid(ref))
        if old.get(key):
            try:
                api.secret.destroy(api.secret.get_by_uuid(old[key]))
            except Failure:
                pass
