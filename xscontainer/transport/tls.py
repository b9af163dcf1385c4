"""The TLS tunnel to a VM's engine on port 2376: mutual TLS (1.2 or newer), the engine's
certificate verified against the VM's CA, streams reused by the HTTP pool's keep-alive."""

import socket
import ssl
import threading
import time
from typing import Callable, Optional

from xscontainer.backoff import BackoffGate
from xscontainer.errors import ConnectionFailure
from xscontainer.transport.stream import SocketStream, Stream
from xscontainer.transport.tcp import tcp_connect
from xscontainer.vmsettings import VmSettings

TLS_PORT = 2376


def client_context(ca_pem: str, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A client context from PEM texts. ``load_cert_chain`` only reads files, so the cert and key
    go through a private temporary directory removed at once (never left in /tmp)."""
    import os
    import tempfile
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if hasattr(ssl, "TLSVersion"):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    else:  # Python 3.6
        context.options |= ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.load_verify_locations(cadata=ca_pem)
    directory = tempfile.mkdtemp(prefix="xscontainer-tls-")
    try:
        path = os.path.join(directory, "client.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key_pem.strip() + "\n" + cert_pem.strip() + "\n")
        context.load_cert_chain(path)
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)
    return context


# Alerts an engine sends when it does not accept our client certificate. With TLS 1.3 they
# arrive after our side of the handshake is done, so they surface at the first read.
_CLIENT_REJECTED_ALERTS = ("ALERT_BAD_CERTIFICATE", "ALERT_UNKNOWN_CA", "ALERT_CERTIFICATE_REQUIRED",
                           "ALERT_CERTIFICATE_UNKNOWN", "ALERT_UNSUPPORTED_CERTIFICATE",
                           "ALERT_CERTIFICATE_EXPIRED", "ALERT_CERTIFICATE_REVOKED", "ALERT_ACCESS_DENIED",
                           "ALERT_DECRYPT_ERROR")


class TlsStream(SocketStream):
    """A TLS socket as a Stream: an engine's alert refusing our client certificate becomes a
    ``TLS_HANDSHAKE_FAILED`` that says so, not a bare "connection broke"."""

    def __init__(self, sock: ssl.SSLSocket, description: str, vm_uuid: str, address: str, port: int) -> None:
        super().__init__(sock, description)
        self._vm_uuid = vm_uuid
        self._where = "%s:%d" % (address, port)

    def _translate(self, exc: ssl.SSLError) -> Exception:
        text = "%s %s" % (getattr(exc, "reason", None) or "", exc)
        if not any(alert in text.upper() for alert in _CLIENT_REJECTED_ALERTS):
            return exc
        self.close()
        return ConnectionFailure(
            "The Docker engine of VM %s at %s refused xscontainer's client certificate (%s): the engine's "
            "--tlscacert is not the CA that signed the client certificate kept in xapi. Redo the TLS setup "
            "(xscontainer-prepare-vm --mode tls) so both come from one CA." % (self._vm_uuid, self._where,
                                                                               getattr(exc, "reason", exc)),
            code="TLS_HANDSHAKE_FAILED", vm_uuid=self._vm_uuid)

    def close_write(self) -> None:
        """TLS has no half-close that keeps reading (Python's shutdown drops the TLS layer): the
        command's stdin simply gets no more data."""

    def recv(self, size: int) -> bytes:
        try:
            return super().recv(size)
        except ssl.SSLError as exc:
            raise self._translate(exc) from exc

    def sendall(self, data: bytes) -> None:
        try:
            super().sendall(data)
        except ssl.SSLError as exc:
            raise self._translate(exc) from exc


class TlsTunnel(object):
    """Opens TLS connections to one VM's engine; ``context`` is built once (from xapi secrets)."""

    def __init__(self, vm_uuid: str, settings: Callable[[], VmSettings],
                 context: Callable[[], ssl.SSLContext], port: int = TLS_PORT,
                 clock: Callable[[], float] = time.monotonic, connect_timeout: float = 10.0) -> None:
        self.vm_uuid = vm_uuid
        self._settings = settings
        self._context_factory = context
        self._context = None  # type: Optional[ssl.SSLContext]
        self.port = port
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self.backoff = BackoffGate(clock)
        self.address = None  # type: Optional[str]
        self.tls_version = None  # type: Optional[str]  # of the last handshake, e.g. "TLSv1.3"
        self.connects = 0

    def open_stream(self) -> Stream:
        with self._lock:
            stream = self.backoff.attempt(self._connect)
            self.backoff.succeeded()
            self.connects += 1
            return stream

    def _connect(self) -> Stream:
        if self._context is None:
            self._context = self._context_factory()
        settings = self._settings()
        sock, address = tcp_connect(settings.addresses, self.port, self._connect_timeout, self.vm_uuid,
                                    "the Docker engine's TLS listener")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            wrapped = self._context.wrap_socket(sock, server_hostname=address)
        except ssl.SSLError as exc:
            sock.close()
            verify = isinstance(exc, getattr(ssl, "SSLCertVerificationError", ())) or \
                "CERTIFICATE_VERIFY_FAILED" in str(exc)
            raise ConnectionFailure(
                "The TLS handshake with VM %s at %s:%d failed: %s. %s" % (
                    self.vm_uuid, address, self.port, exc,
                    "The engine's certificate is not signed by the CA kept for this VM in xapi, or not for "
                    "this address: redo the TLS setup (xscontainer-prepare-vm --mode tls)."
                    if verify else "Check the engine's --tlsverify settings and the VM's certificates."),
                code="TLS_VERIFY_FAILED" if verify else "TLS_HANDSHAKE_FAILED", vm_uuid=self.vm_uuid) from exc
        except (OSError, socket.timeout) as exc:
            sock.close()
            raise ConnectionFailure("The TLS connection to VM %s at %s broke during the handshake: %s"
                                    % (self.vm_uuid, address, exc), code="TLS_HANDSHAKE_FAILED",
                                    vm_uuid=self.vm_uuid) from exc
        self.address = address
        self.tls_version = wrapped.version()
        return TlsStream(wrapped, "%s:%s:%d via tls" % (self.vm_uuid, address, self.port), self.vm_uuid,
                         address, self.port)

    def close(self) -> None:
        """Nothing persistent besides the pooled streams, which the pool closes."""
