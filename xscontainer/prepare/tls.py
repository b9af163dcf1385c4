"""TLS material for --mode tls: checking given PEM files, writing the engine's server files, and
the dockerd flags the administrator needs (pure renderers)."""

import os
from typing import List, Tuple

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization

from xscontainer.errors import InvalidArgument
from xscontainer.prepare.options import WriteFailed
from xscontainer.tlscerts import TlsBundle

CA_FILE = "ca.pem"
SERVER_CERT_FILE = "server-cert.pem"
SERVER_KEY_FILE = "server-key.pem"
SERVER_FILES = (CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE)
ENGINE_PORT = 2376


def _read(path: str, what: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 20).decode("ascii")
    except OSError as exc:
        raise InvalidArgument("Cannot read the %s %s: %s." % (what, path, exc.strerror or exc),
                              code="USAGE") from exc
    except UnicodeError as exc:
        raise InvalidArgument("The %s %s is not PEM text." % (what, path), code="USAGE") from exc


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def check_client_material(ca_pem: str, cert_pem: str, key_pem: str, names: Tuple[str, str, str]) -> None:
    """Pure: the three texts are a CA certificate, a certificate and the private key of that
    certificate; ``names`` (file names) are for the messages."""
    ca_name, cert_name, key_name = names
    try:
        x509.load_pem_x509_certificate(ca_pem.encode("ascii"), default_backend())
    except ValueError as exc:
        raise InvalidArgument("%s is not a PEM certificate." % ca_name, code="USAGE") from exc
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"), default_backend())
    except ValueError as exc:
        raise InvalidArgument("%s is not a PEM certificate." % cert_name, code="USAGE") from exc
    try:
        key = serialization.load_pem_private_key(key_pem.encode("ascii"), None, default_backend())
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("%s is not an unencrypted PEM private key." % key_name, code="USAGE") from exc
    if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
        raise InvalidArgument("The key in %s does not belong to the certificate in %s." % (key_name, cert_name),
                              code="USAGE")


def read_client_material(ca_path: str, cert_path: str, key_path: str) -> TlsBundle:
    """The client side given on the command line, checked, as a bundle without server parts."""
    ca = _read(ca_path, "CA certificate")
    cert = _read(cert_path, "client certificate")
    key = _read(key_path, "client key")
    check_client_material(ca, cert, key, (ca_path, cert_path, key_path))
    return TlsBundle(ca_cert=ca, ca_key="", server_cert="", server_key="", client_cert=cert, client_key=key)


def check_server_dir(directory: str) -> None:
    """Fail early (before anything changes) when the server files could not be written."""
    existing = [name for name in SERVER_FILES if os.path.lexists(os.path.join(directory, name))]
    if existing:
        raise InvalidArgument("%s already holds %s: choose a new or empty directory, so that no "
                              "certificate is overwritten." % (directory, ", ".join(existing)), code="USAGE")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InvalidArgument("%s exists and is not a directory." % directory, code="USAGE")


def write_server_files(directory: str, bundle: TlsBundle) -> List[str]:
    """Write ca.pem, server-cert.pem (0644) and server-key.pem (0600) into ``directory``
    (created 0700); existing files are never overwritten. The CA's key is not written: it is
    thrown away, so nobody can issue more certificates for this engine."""
    contents = ((CA_FILE, bundle.ca_cert, 0o644), (SERVER_CERT_FILE, bundle.server_cert, 0o644),
                (SERVER_KEY_FILE, bundle.server_key, 0o600))
    written = []  # type: List[str]
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for name, text, mode in contents:
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            written.append(path)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(path, mode)
    except OSError as exc:
        for path in written:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise WriteFailed("Cannot write the engine's certificate files into %s: %s."
                          % (directory, exc.strerror or exc), code="SERVER_FILES_FAILED") from exc
    return [os.path.join(directory, name) for name in SERVER_FILES]


def dockerd_flags(remote_dir: str, port: int = ENGINE_PORT) -> List[str]:
    """Pure: the dockerd arguments that serve the API with mutual TLS using the server files
    installed in ``remote_dir`` inside the VM."""
    base = remote_dir.rstrip("/") or "/"
    return ["--tlsverify",
            "--tlscacert=%s/%s" % (base, CA_FILE),
            "--tlscert=%s/%s" % (base, SERVER_CERT_FILE),
            "--tlskey=%s/%s" % (base, SERVER_KEY_FILE),
            "-H", "tcp://0.0.0.0:%d" % port,
            "-H", "unix:///var/run/docker.sock"]


def daemon_json(remote_dir: str, port: int = ENGINE_PORT) -> str:
    """Pure: the same settings as an ``/etc/docker/daemon.json`` document."""
    import json
    base = remote_dir.rstrip("/") or "/"
    return json.dumps({"tlsverify": True, "tlscacert": "%s/%s" % (base, CA_FILE),
                       "tlscert": "%s/%s" % (base, SERVER_CERT_FILE), "tlskey": "%s/%s" % (base, SERVER_KEY_FILE),
                       "hosts": ["tcp://0.0.0.0:%d" % port, "unix:///var/run/docker.sock"]},
                      indent=2, sort_keys=True)
