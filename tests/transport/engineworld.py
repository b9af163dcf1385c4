"""A small world for engine-side tests without the testbed: a private simulator whose VMs
(address 127.0.0.1, user root, the rig's key as the pool key) are reached through a real sshd
(``SshRig``) forwarding to a scripted engine on a Unix socket. ``world.handler`` is the engine's
behaviour (a function of one accepted connection); tests may swap it and must restore it.
"""

import os
import shutil
import tempfile
import sys
import threading
import traceback

import paramiko

from xscontainer.engine.connect import EngineConnections
from xscontainer.monitor.xapipool import SessionPool
from xscontainer.poolkeys import PRIVATE_KEY_ENTRY, PUBLIC_KEY_ENTRY, PoolKeyCache
from xscontainer.sim.process import SimulatorProcess

from engine.unixserver import UnixServer, json_response, read_request
from .sshrig import SshRig


def engine(conn):
    while True:
        line = read_request(conn)
        if line is None:
            return
        if " /_ping " in line:
            conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\nOK")
        elif "/version " in line:
            conn.sendall(json_response(b'{"Version": "24.0.7", "ApiVersion": "1.43", "MinAPIVersion": "1.12"}'))
        elif "/info " in line:
            conn.sendall(json_response(b'{"Containers": 0, "Driver": "overlay2"}'))
        else:
            conn.sendall(json_response(b"[]"))


class World(object):
    def __init__(self, directory):
        self.rig = SshRig()
        self.engine_dir = tempfile.mkdtemp(prefix="xsc-eng-")
        os.chmod(self.engine_dir, 0o755)
        self.handler = engine
        self.engine = UnixServer(os.path.join(self.engine_dir, "docker.sock"), lambda conn: self.handler(conn))
        self.sim = SimulatorProcess(directory)
        self.sim.start()
        self.sessions = SessionPool(self.sim.local_session, 4)
        with self.sessions.session() as session:
            api = session.xenapi
            pool = api.pool.get_all()[0]
            for entry, value in ((PRIVATE_KEY_ENTRY, self.rig.pair.private_pem),
                                 (PUBLIC_KEY_ENTRY, self.rig.pair.public_line)):
                secret = api.secret.create({"value": value, "other_config": {}})
                api.pool.add_to_other_config(pool, entry, api.secret.get_uuid(secret))
            self.vms = [self._vm(api, "vm%d" % i, self.rig.host_key_b64()) for i in range(2)]

    @staticmethod
    def _vm(api, name, host_key):
        ref = api.VM.create({"name_label": name})
        api.VM.start_on(ref, api.host.get_all()[0], False, False)
        api.sim.set_guest_networks(ref, {"0/ip": "127.0.0.1", "0/ipv4/0": "127.0.0.1"})
        api.VM.add_to_other_config(ref, "xscontainer-username", "root")
        # The administrator vouches for the rig's key (no key is trusted on first use); both VMs
        # reach the one rig, as VMs upgraded with the original's pins may.
        api.VM.add_to_other_config(ref, "xscontainer-sshhostkey", host_key)
        return api.VM.get_uuid(ref)

    def connections(self, sessions=None):
        return EngineConnections(sessions or self.sessions.session, PoolKeyCache(self.sessions.session),
                                 connect_timeout=5, socket_path=self.engine.path, ssh_port=self.rig.port)

    def close(self):
        self.sessions.close()
        self.sim.stop()
        self.engine.close()
        shutil.rmtree(self.engine_dir, ignore_errors=True)
        self.rig.close()


def live_ssh_connections():
    return [t for t in threading.enumerate() if isinstance(t, paramiko.Transport) and t.is_alive()]


def describe_connections():
    """What each live SSH connection is doing (for a time-out's message)."""
    frames = sys._current_frames()
    lines = []
    for transport in live_ssh_connections():
        try:
            peer = transport.getpeername()
        except OSError as exc:
            peer = exc
        frame = frames.get(transport.ident)
        where = traceback.format_stack(frame)[-1].strip() if frame is not None else "?"
        lines.append("%s peer=%s active=%s authenticated=%s at %s"
                     % (transport.name, peer, transport.active, transport.is_authenticated(), where))
    return "; ".join(lines)
