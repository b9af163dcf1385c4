"""``EngineConnections`` (one warm connection per VM) when failures, closes and on-demand calls
overlap: every SSH connection it opens has an owner in the table and ends with ``close``; a
slow xapi read for one VM does not hold up the others.

A private simulator describes the VMs (address 127.0.0.1, user root); a real sshd (``SshRig``)
forwards to a scripted engine socket. Live SSH connections are counted as paramiko's transport
threads in this process.
"""

import os
import shutil
import tempfile
import threading

import paramiko
import pytest

from waiting import wait_for
from xscontainer.engine.connect import EngineConnections
from xscontainer.errors import ConnectionFailure, XSContainerError
from xscontainer.monitor.pooled import PooledSession
from xscontainer.monitor.xapipool import SessionPool
from xscontainer.poolkeys import PRIVATE_KEY_ENTRY, PUBLIC_KEY_ENTRY, PoolKeyCache
from xscontainer.sim.process import SimulatorProcess

from engine.unixserver import UnixServer, json_response, read_request
from .sshrig import SshRig

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sshd"),
                                reason="needs root and OpenSSH's sshd")


def engine(conn):
    while True:
        line = read_request(conn)
        if line is None:
            return
        if " /_ping " in line:
            conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\nOK")
        else:
            conn.sendall(json_response(b"[]"))


class World(object):
    def __init__(self, directory):
        self.rig = SshRig()
        self.engine_dir = tempfile.mkdtemp(prefix="xsc-eng-")
        os.chmod(self.engine_dir, 0o755)
        self.engine = UnixServer(os.path.join(self.engine_dir, "docker.sock"), engine)
        self.sim = SimulatorProcess(directory)
        self.sim.start()
        self.sessions = SessionPool(self.sim.local_session, 4)
        self.pooled = PooledSession(self.sessions)
        api = self.pooled.xenapi
        pool = api.pool.get_all()[0]
        for entry, value in ((PRIVATE_KEY_ENTRY, self.rig.pair.private_pem),
                             (PUBLIC_KEY_ENTRY, self.rig.pair.public_line)):
            secret = api.secret.create({"value": value, "other_config": {}})
            api.pool.add_to_other_config(pool, entry, api.secret.get_uuid(secret))
        self.vms = [self._vm(api, "vm%d" % i) for i in range(2)]

    @staticmethod
    def _vm(api, name):
        ref = api.VM.create({"name_label": name})
        api.VM.start_on(ref, api.host.get_all()[0], False, False)
        api.sim.set_guest_networks(ref, {"0/ip": "127.0.0.1", "0/ipv4/0": "127.0.0.1"})
        api.VM.add_to_other_config(ref, "xscontainer-username", "root")
        return api.VM.get_uuid(ref)

    def connections(self, session_factory=None):
        return EngineConnections(session_factory or (lambda: self.pooled), PoolKeyCache(lambda: self.pooled),
                                 connect_timeout=5, socket_path=self.engine.path, ssh_port=self.rig.port)

    def close(self):
        self.sessions.close()
        self.sim.stop()
        self.engine.close()
        shutil.rmtree(self.engine_dir, ignore_errors=True)
        self.rig.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(str(tmp_path_factory.mktemp("xapi")))
    yield world
    world.close()


def live_ssh_connections():
    return [t for t in threading.enumerate() if isinstance(t, paramiko.Transport) and t.is_alive()]


def test_a_closed_client_cannot_reconnect_behind_the_tables_back(world):
    before = len(live_ssh_connections())
    engines = world.connections()
    uuid = world.vms[0]
    held = engines.client(uuid)  # an on-demand call holds the client...
    assert held.ping()
    engines.close(uuid)  # ...while a watcher's failure closes the VM's connection
    with pytest.raises(ConnectionFailure) as info:
        held.containers()
    assert info.value.code == "CONNECTION_LOST"
    assert engines.client(uuid).ping()  # a new client comes from the table
    assert len(live_ssh_connections()) == before + 1
    engines.close_all()
    wait_for(lambda: len(live_ssh_connections()) == before, timeout=10, what="every SSH connection to end")


def test_overlapping_calls_and_closes_leave_no_connection_behind(world):
    before = len(live_ssh_connections())
    engines = world.connections()
    uuid = world.vms[0]

    def caller():  # a plugin call, or a watcher that failed and closes its connection
        for _ in range(6):
            try:
                engines.client(uuid).containers()
            except XSContainerError:
                pass
            engines.close(uuid)
    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engines.client(uuid).ping()
    assert len(live_ssh_connections()) <= before + 1
    engines.close_all()
    wait_for(lambda: len(live_ssh_connections()) == before, timeout=10, what="every SSH connection to end")


def test_a_borrowed_client_outlives_a_close_and_is_closed_when_returned(world):
    before = len(live_ssh_connections())
    engines = world.connections()
    uuid = world.vms[0]
    with engines.borrowed(uuid) as client:
        assert client.ping()
        engines.close(uuid)  # the other user is done with the VM
        assert client.containers() == []  # this one is not interrupted
    wait_for(lambda: len(live_ssh_connections()) == before, timeout=10, what="the retired connection to end")
    engines.close_all()


def test_a_slow_xapi_read_for_one_vm_does_not_hold_up_another(world):
    stuck, release = world.vms[0], threading.Event()

    class SlowForOneVm(object):
        """The monitor's session, whose read of one VM's record hangs (a stuck xapi call)."""

        def __init__(self, session):
            self.xenapi = self
            self.VM = self
            self._api = session.xenapi

        def __getattr__(self, name):
            return getattr(self._api, name)

        def get_by_uuid(self, uuid):
            if uuid == stuck:
                release.wait(30)
            return self._api.VM.get_by_uuid(uuid)

        def get_other_config(self, ref):
            return self._api.VM.get_other_config(ref)

        def get_guest_metrics(self, ref):
            return self._api.VM.get_guest_metrics(ref)

    engines = world.connections(lambda: SlowForOneVm(world.pooled))
    blocked = threading.Thread(target=lambda: engines.client(stuck))
    blocked.start()
    try:
        wait_for(lambda: blocked.is_alive(), what="the first call to be under way")
        other = []
        caller = threading.Thread(target=lambda: other.append(engines.client(world.vms[1])), daemon=True)
        caller.start()
        caller.join(20)  # bounds a failing test only
        assert other, "a stuck xapi read for one VM blocks every other VM's client"
    finally:
        release.set()
        blocked.join()
        engines.close_all()
