"""TLS mode end to end on the shared testbed: certificates made by the product
(``generate_tls_bundle``), stored by the product (``store_client_tls``), a real
``dockerd --tlsverify`` on the VM's port 2376, and ``EngineConnections`` reaching it in
``xscontainer-mode=tls``; a wrong CA is refused with a clear code; TLS older than 1.2 is refused.

The testbed is shared: the VM's own dockerd is stopped for this module and started again
afterwards, and every other_config key and secret written here is removed.
"""

import os
import shutil
import socket
import ssl
import tempfile
import threading

import pytest
import XenAPI

from tlsengine import TlsEngine, write_private as _write

from xscontainer.engine.client import DockerClient
from xscontainer.engine.connect import EngineConnections
from xscontainer.engine.diagnose import diagnose
from xscontainer.engine.http import HttpPool
from xscontainer.errors import ConnectionFailure
from xscontainer.poolkeys import PoolKeyCache
from xscontainer.tlscerts import generate_tls_bundle, store_client_tls
from xscontainer.transport.tls import TlsTunnel, client_context
from xscontainer.vmsettings import (MODE_KEY, TLS_CA_CERT_KEY, TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY,
                                    VmSettings)
from xscontainer.xapi.maps import remove_map_key, set_map_key
from xscontainer.xapi.session import close_session
from xscontainer.xapi.session import lend

TLS_KEYS = (TLS_CA_CERT_KEY, TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY)
SAMPLES = ["burner", "exited", "sleeper", "web"]
@pytest.fixture(scope="module")
def tls_vm(testbed):
    """(session, vm, bundle): vm2 served by a TLS-enabled dockerd, with the product's client
    material in xapi and xscontainer-mode=tls; everything undone afterwards."""
    info = testbed.info()
    vm = [v for v in info["vms"] if v["name_label"] == "vm2"][0]
    session = testbed.xapi_session()
    api = session.xenapi
    ref = api.VM.get_by_uuid(vm["uuid"])
    before = dict((k, v) for k, v in api.VM.get_other_config(ref).items() if k in TLS_KEYS + (MODE_KEY,))
    assert not before, "vm2 is already configured for TLS: %r" % before
    secrets_before = set(api.secret.get_all())
    directory = tempfile.mkdtemp(prefix="xsc-tls-")
    os.chmod(directory, 0o700)
    bundle = generate_tls_bundle([vm["ip"]])
    engine = TlsEngine(testbed, vm, directory, bundle)
    left = set()
    try:
        engine.start()
        store_client_tls(session, vm["uuid"], bundle)
        set_map_key(api.VM, ref, MODE_KEY, "tls")
        yield session, vm, bundle
    finally:
        try:
            _forget_tls(session, ref)
            left = set(api.secret.get_all()) - secrets_before
            engine.stop()
        finally:
            close_session(session)
            shutil.rmtree(directory, ignore_errors=True)
    assert not left, "secrets left behind: %r" % sorted(left)
    assert testbed.dockerd_running(vm["name_label"])


def _forget_tls(session, ref):
    """Remove the mode and TLS keys (key by key) and destroy the secrets they name."""
    api = session.xenapi
    other = api.VM.get_other_config(ref)
    remove_map_key(api.VM, ref, MODE_KEY)
    for key in TLS_KEYS:
        if key in other:
            remove_map_key(api.VM, ref, key)
            try:
                api.secret.destroy(api.secret.get_by_uuid(other[key]))
            except XenAPI.Failure:  # already gone (replaced by store_client_tls)
                pass


def _engines(session, **kwargs):
    return EngineConnections(lend(session), PoolKeyCache(lend(session)), connect_timeout=5, **kwargs)


def test_tls_mode_lists_containers_streams_events_and_diagnoses_ok(tls_vm):
    session, vm, _ = tls_vm
    with _engines(session) as engines:
        client = engines.client(vm["uuid"])
        names = sorted(c["Names"][0].lstrip("/") for c in client.containers())
        assert names == SAMPLES
        tunnel = engines.tunnel(vm["uuid"])
        assert isinstance(tunnel, TlsTunnel)
        assert tunnel.address == vm["ip"]
        assert tunnel.tls_version in ("TLSv1.2", "TLSv1.3")
        # keep-alive: more calls, still one TLS connection
        client.info()
        client.inspect("web")
        assert tunnel.connects == 1

        stream = client.events()
        seen = []

        def read():
            for event in stream:
                seen.append((event.action, event.name))
                if event.action == "unpause" and event.name == "web":
                    return
        reader = threading.Thread(target=read)
        reader.start()
        try:
            client.pause("web")
            client.unpause("web")
            reader.join(30)
        finally:
            stream.close()
            reader.join(10)
        assert not reader.is_alive()
        assert ("pause", "web") in seen and ("unpause", "web") in seen
        assert client.inspect("web")["State"]["Status"] == "running"

    result = diagnose(lend(session), vm["uuid"], timeout=5)
    assert result.code == "OK", result


def test_a_wrong_ca_is_refused_with_a_clear_code(tls_vm):
    session, vm, right = tls_vm
    api = session.xenapi
    ref = api.VM.get_by_uuid(vm["uuid"])
    wrong = generate_tls_bundle([vm["ip"]], name="impostor")
    store_client_tls(session, vm["uuid"], wrong)  # destroys the right secrets it replaces
    try:
        with _engines(session) as engines:
            with pytest.raises(ConnectionFailure) as info:
                engines.client(vm["uuid"]).containers()
        assert info.value.code == "TLS_VERIFY_FAILED"
        assert vm["uuid"] in info.value.message and "CA" in info.value.message
        result = diagnose(lend(session), vm["uuid"], timeout=5)
        assert result.code == "TLS_VERIFY_FAILED"
        assert "CA" in result.message and "xscontainer-prepare-vm" in result.message
        assert result.message.rstrip().endswith(".")
    finally:
        store_client_tls(session, vm["uuid"], right)
    assert api.VM.get_other_config(ref).get(MODE_KEY) == "tls"
    with _engines(session) as engines:
        assert len(engines.client(vm["uuid"]).containers()) == len(SAMPLES)


def test_the_engine_refuses_a_client_certificate_of_another_ca(tls_vm):
    """Our CA is right (the engine's certificate verifies) but the engine does not trust our
    client certificate: refused with a TLS code, nothing answered."""
    session, vm, right = tls_vm
    stranger = generate_tls_bundle([vm["ip"]], name="stranger")
    context = client_context(right.ca_cert, stranger.client_cert, stranger.client_key)
    settings = VmSettings(vm["uuid"], "", [vm["ip"]], "core", "tls", None, {})
    tunnel = TlsTunnel(vm["uuid"], lambda: settings, lambda: context, connect_timeout=5)
    client = DockerClient(HttpPool(tunnel.open_stream), vm["uuid"])
    try:
        with pytest.raises(ConnectionFailure) as info:
            client.containers()
        assert info.value.code == "TLS_HANDSHAKE_FAILED", info.value
        assert "client certificate" in info.value.message
        assert vm["uuid"] in info.value.message
    finally:
        client.close()

    # The same through xapi and diagnose: the stored client pair is the stranger's.
    api = session.xenapi
    mixed = right._replace(client_cert=stranger.client_cert, client_key=stranger.client_key)
    store_client_tls(session, vm["uuid"], mixed)
    try:
        result = diagnose(lend(session), vm["uuid"], timeout=5)
        assert result.code == "TLS_HANDSHAKE_FAILED", result
        assert "client certificate" in result.message and "xscontainer-prepare-vm" in result.message
    finally:
        store_client_tls(session, vm["uuid"], right)
    assert api.VM.get_other_config(api.VM.get_by_uuid(vm["uuid"])).get(MODE_KEY) == "tls"


# -- TLS 1.2 or newer ----------------------------------------------------------------------------

class _OldTlsServer(object):
    """A TLS server that speaks TLS 1.0/1.1 at most (with OpenSSL's security level lowered so
    that it can): one thread, accepting until closed."""

    def __init__(self, bundle, directory):
        cert, key = os.path.join(directory, "old-cert.pem"), os.path.join(directory, "old-key.pem")
        _write(cert, bundle.server_cert)
        _write(key, bundle.server_key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if hasattr(ssl, "TLSVersion"):
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        else:
            context.options |= ssl.OP_NO_TLSv1_2 | getattr(ssl, "OP_NO_TLSv1_3", 0)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.load_cert_chain(cert, key)
        self._context = context
        self.handshakes = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                tls = self._context.wrap_socket(conn, server_side=True)
                self.handshakes.append(tls.version())
                tls.close()
            except (ssl.SSLError, OSError) as exc:
                self.handshakes.append("failed: %s" % exc)
                conn.close()

    def close(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_older_than_1_2_is_refused(tmp_path):
    bundle = generate_tls_bundle(["127.0.0.1"])
    server = _OldTlsServer(bundle, str(tmp_path))
    try:
        # Control: this machine's OpenSSL can speak TLS 1.1 at all (else the test proves nothing).
        permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        permissive.check_hostname = False
        permissive.verify_mode = ssl.CERT_NONE
        if hasattr(ssl, "TLSVersion"):
            permissive.minimum_version = ssl.TLSVersion.TLSv1
        permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            with permissive.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=5)) as probe:
                old_version = probe.version()
        except (ssl.SSLError, OSError) as exc:
            pytest.skip("this machine's OpenSSL cannot speak TLS 1.1 at all (%s)" % exc)
        assert old_version in ("TLSv1", "TLSv1.1")

        settings = VmSettings("old-tls-vm", "", ["127.0.0.1"], "core", "tls", None, {})
        context = client_context(bundle.ca_cert, bundle.client_cert, bundle.client_key)
        tunnel = TlsTunnel("old-tls-vm", lambda: settings, lambda: context, port=server.port, connect_timeout=5)
        with pytest.raises(ConnectionFailure) as info:
            tunnel.open_stream()
        assert info.value.code == "TLS_HANDSHAKE_FAILED"
        assert "old-tls-vm" in info.value.message
        assert tunnel.tls_version is None
    finally:
        server.close()
    assert server.handshakes[0] == old_version and server.handshakes[1].startswith("failed")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_real_engine_refuses_tls_1_1_clients(tls_vm, tmp_path):
    """The engine side of the rule: a client with the right certificates but TLS 1.1 at most."""
    _, vm, bundle = tls_vm
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=bundle.ca_cert)
    chain = str(tmp_path / "client.pem")
    _write(chain, bundle.client_key + bundle.client_cert)
    context.load_cert_chain(chain)
    if hasattr(ssl, "TLSVersion"):
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    else:
        context.options |= ssl.OP_NO_TLSv1_2 | getattr(ssl, "OP_NO_TLSv1_3", 0)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    sock = socket.create_connection((vm["ip"], 2376), timeout=5)
    try:
        with pytest.raises(ssl.SSLError) as info:
            context.wrap_socket(sock, server_hostname=vm["ip"]).close()
    finally:
        sock.close()
    assert "VERSION" in str(info.value).upper(), info.value
