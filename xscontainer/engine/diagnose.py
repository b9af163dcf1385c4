""""Why can't we reach this VM's engine?": walk the path step by step (address, port, SSH
login, host key, socket, permissions, engine, API version) on a fresh connection and name the
first step that fails, with a stable code and a sentence an administrator can act on.

Codes: OK, NO_ADDRESS, PORT_CLOSED, ADDRESS_UNREACHABLE, SSH_HANDSHAKE_FAILED, SSH_AUTH_FAILED,
SSH_HOSTKEY_MISMATCH, SSH_HOSTKEY_UNVERIFIED, SSH_HOSTKEY_DUPLICATE, NO_DOCKER_SOCKET,
DOCKER_SOCKET_DENIED, ENGINE_NOT_ANSWERING, API_TOO_OLD, API_TOO_NEW, TLS_NOT_CONFIGURED,
TLS_VERIFY_FAILED, TLS_HANDSHAKE_FAILED, ENGINE_ERROR, ENGINE_PROTOCOL_ERROR,
ENGINE_RESPONSE_TOO_LARGE, ENGINE_TIMEOUT, CONNECTION_LOST.
"""

import time
from typing import Callable, NamedTuple, Optional

from xscontainer.engine.client import DockerClient
from xscontainer.engine.http import HttpPool, Limits
from xscontainer.errors import ConnectionFailure, EngineError, XSContainerError
from xscontainer.hostkeys import XapiHostKeyPin
from xscontainer.poolkeys import PoolKeyCache
from xscontainer.tlscerts import read_client_tls
from xscontainer.transport.ssh import DOCKER_SOCKET, SshTunnel
from xscontainer.transport.tls import TlsTunnel, client_context
from xscontainer.vmsettings import VmSettings, read_vm_settings
from xscontainer.xapi.session import SessionSource


class Diagnosis(NamedTuple):
    code: str
    message: str

    @property
    def ok(self) -> bool:
        return self.code == "OK"


def _quote(path: str) -> str:
    return "'%s'" % path.replace("'", "'\\''")


def diagnose(sessions: SessionSource, vm_uuid: str, pool_keys: Optional[PoolKeyCache] = None,
             timeout: float = 5.0, socket_path: str = DOCKER_SOCKET, ssh_port: int = 22,
             tls_port: int = 2376, clock: Callable[[], float] = time.monotonic) -> Diagnosis:
    """Find why VM ``vm_uuid``'s engine cannot be used (``OK`` when it can)."""
    try:
        settings = _settings(sessions, vm_uuid)
    except XSContainerError as exc:
        return Diagnosis(exc.code, exc.message)
    if not settings.addresses:
        return Diagnosis("NO_ADDRESS", "VM %s reports no IP address: check that its guest tools run and that it "
                                       "has a network." % vm_uuid)
    try:
        if settings.mode == "tls":
            return _diagnose_tls(sessions, settings, timeout, tls_port, clock)
        keys = pool_keys if pool_keys is not None else PoolKeyCache(sessions)
        return _diagnose_ssh(sessions, settings, keys, timeout, socket_path, ssh_port, clock)
    except XSContainerError as exc:
        return Diagnosis(exc.code, exc.message)


def _engine_checks(client: DockerClient, vm_uuid: str) -> Diagnosis:
    try:
        if not client.ping():
            return Diagnosis("ENGINE_NOT_ANSWERING", "The Docker engine in VM %s does not answer /_ping "
                                                     "successfully: check its state and logs in the VM." % vm_uuid)
    except EngineError as exc:
        if exc.code == "ENGINE_TIMEOUT":
            method = exc.details.get("method")
            return Diagnosis("ENGINE_NOT_ANSWERING",
                             "The Docker engine in VM %s accepts connections%s but does not answer: it is hung "
                             "or overloaded; restart it in the VM (systemctl restart docker)."
                             % (vm_uuid, " (through %s)" % method if method else ""))
        raise
    except ConnectionFailure as exc:
        if exc.code not in ("ENGINE_UNREACHABLE", "CONNECTION_LOST"):
            return Diagnosis(exc.code, exc.message)  # e.g. an engine refusing our TLS client certificate
        return Diagnosis("ENGINE_NOT_ANSWERING", "The Docker engine in VM %s does not answer: %s" % (vm_uuid, exc))
    try:
        version = client.api_version
        problem = _monitor_reads(client, vm_uuid)
    except (EngineError, ConnectionFailure) as exc:
        return Diagnosis(exc.code, exc.message)
    if problem is not None:
        return problem
    return Diagnosis("OK", "The Docker engine in VM %s answers (API %s)." % (vm_uuid, version))


def _monitor_reads(client: DockerClient, vm_uuid: str) -> Optional[Diagnosis]:
    """Make the reads the monitor makes: an engine that answers /_ping but nothing else usable
    (garbage, oversize, wrong shapes) is not OK. None when all of them are."""
    for what, read, shape in (("/version", client.version, dict), ("/info", client.info, dict),
                              ("/containers/json", client.containers, list)):
        if not isinstance(read(), shape):
            return Diagnosis("ENGINE_PROTOCOL_ERROR",
                             "The Docker engine in VM %s answers %s with something that is not %s: it does not "
                             "speak the Docker API; check what listens on the engine's socket."
                             % (vm_uuid, what, "a list" if shape is list else "an object"))
    client.events(read_timeout=1.0).close()  # refused (not 200) raises ENGINE_ERROR
    return None


def _settings(sessions: SessionSource, vm_uuid: str) -> VmSettings:
    with sessions() as session:
        return read_vm_settings(session, vm_uuid)


def _diagnose_ssh(sessions: SessionSource, settings: VmSettings, keys: PoolKeyCache, timeout: float, socket_path: str,
                  port: int, clock) -> Diagnosis:
    vm_uuid = settings.vm_uuid
    tunnel = SshTunnel(vm_uuid, lambda: _settings(sessions, vm_uuid), keys.paramiko_key,
                       XapiHostKeyPin(sessions, vm_uuid), socket_path=socket_path, port=port,
                       clock=clock, connect_timeout=timeout, keepalive=timeout)
    pool = HttpPool(tunnel.open_stream, Limits(response_timeout=timeout), max_idle=1)
    try:
        tunnel.transport()  # address, port, handshake, host key, login
        path = _quote(socket_path)
        status, out, err = tunnel.exec("if [ ! -e %s ]; then echo missing; elif [ ! -S %s ]; then echo notsocket; "
                                       "elif [ -r %s ] && [ -w %s ]; then echo ok; else echo denied; fi"
                                       % (path, path, path, path), timeout=timeout)
        verdict = out.decode("utf-8", "replace").strip()
        user = settings.username
        if verdict in ("missing", "notsocket"):
            return Diagnosis("NO_DOCKER_SOCKET",
                             "VM %s has no Docker socket at %s: the Docker engine is not installed or not "
                             "running (start it with systemctl start docker)." % (vm_uuid, socket_path))
        if verdict == "denied":
            return Diagnosis("DOCKER_SOCKET_DENIED",
                             "User '%s' in VM %s may not use the Docker socket %s: add it to the docker group "
                             "(usermod -aG docker %s) or set other-config:xscontainer-username to a user who "
                             "may." % (user, vm_uuid, socket_path, user))
        return _engine_checks(DockerClient(pool, vm_uuid), vm_uuid)
    finally:
        pool.close()
        tunnel.close()


def _diagnose_tls(sessions: SessionSource, settings: VmSettings, timeout: float, port: int, clock) -> Diagnosis:
    vm_uuid = settings.vm_uuid
    tls = read_client_tls(sessions, settings)

    def context():
        return client_context(tls.ca_cert, tls.client_cert, tls.client_key)

    tunnel = TlsTunnel(vm_uuid, lambda: settings, context, port=port, clock=clock, connect_timeout=timeout)
    pool = HttpPool(tunnel.open_stream, Limits(response_timeout=timeout), max_idle=1)
    try:
        pool.warm()  # connect and handshake first: their errors are precise
        return _engine_checks(DockerClient(pool, vm_uuid), vm_uuid)
    finally:
        pool.close()
        tunnel.close()
