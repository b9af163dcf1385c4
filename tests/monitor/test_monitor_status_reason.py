"""``get_status`` (the control socket's ``status``) and the diagnosis name the real reason when
an engine misbehaves, not the reconnection that followed; a garbage-speaking engine is never
diagnosed OK.

The monitor runs against ``engineworld.World`` (a private simulator, a real sshd, a scripted
engine) with a hostile engine behind the VM's socket.
"""

import os
import shutil
import tempfile
import threading

import pytest

from transport.engineworld import World, json_response, read_request
from waiting import wait_for
from xscontainer.engine.diagnose import diagnose
from xscontainer.monitor.service import Monitor, MonitorOptions
from xscontainer.poolkeys import PoolKeyCache
from xscontainer.xapi.session import open_local_session

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sshd"),
                                reason="needs root and OpenSSH's sshd")

PING = b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\nOK"


def hostile(answer):
    """An engine that answers /_ping and opens /events like a real one, and everything else
    with ``answer`` (then closes)."""
    def engine(conn):
        while True:
            line = read_request(conn)
            if line is None:
                return
            if " /_ping " in line:
                conn.sendall(PING)
            elif "/events" in line:
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                conn.recv(1)  # quiet until the peer goes away
                return
            else:
                conn.sendall(answer)
                return
    return engine


GARBAGE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n\x00garbage!"
HUGE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n"
NOT_A_LIST = json_response(b'{"message": "this is not a list of containers"}')


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(str(tmp_path_factory.mktemp("xapi")))
    yield world
    world.close()


@pytest.fixture
def monitor(world):
    control_dir = tempfile.mkdtemp(prefix="xsc-ctl-")
    options = MonitorOptions(control_dir=control_dir, poll_timeout=0.5, backoff_initial=0.1, backoff_maximum=0.5,
                             ssh_port=world.rig.port, docker_socket=world.engine.path)
    monitor = Monitor(lambda: open_local_session(world.sim.socket_path), world.sim.info["hosts"][0]["inventory"],
                      options)
    runner = threading.Thread(target=monitor.run, name="monitor-under-test")
    runner.start()
    yield monitor
    monitor.stop()
    runner.join(30)
    shutil.rmtree(control_dir, ignore_errors=True)


@pytest.fixture
def registered(world):
    uuid = world.vms[0]
    with world.sessions.session() as session:
        ref = session.xenapi.VM.get_by_uuid(uuid)
        session.xenapi.VM.add_to_other_config(ref, "xscontainer-monitor", "True")
    yield uuid
    with world.sessions.session() as session:
        session.xenapi.VM.remove_from_other_config(ref, "xscontainer-monitor")


@pytest.fixture
def engine_answers(world):
    normal = world.handler

    def swap(answer):
        world.handler = hostile(answer)
    yield swap
    world.handler = normal


@pytest.mark.parametrize("answer,code", [(HUGE, "ENGINE_RESPONSE_TOO_LARGE"), (GARBAGE, "ENGINE_PROTOCOL_ERROR")],
                         ids=["oversize", "garbage"])
def test_status_carries_the_real_reason_of_a_failed_refresh(world, engine_answers, monitor, registered,
                                                            answer, code):
    engine_answers(answer)

    def status():
        return monitor.handle_control("status", {"vm": registered}) or {}
    wait_for(lambda: status().get("state") == "failing", timeout=15, what="the VM to be failing")
    wait_for(lambda: status().get("last_error_code") == code, timeout=15,
             what="the status to say %s (it says %s: %s)" % (code, status().get("last_error_code"),
                                                            status().get("last_error")))


@pytest.mark.parametrize("answer,code", [(HUGE, "ENGINE_RESPONSE_TOO_LARGE"), (GARBAGE, "ENGINE_PROTOCOL_ERROR"),
                                         (NOT_A_LIST, "ENGINE_PROTOCOL_ERROR")],
                         ids=["oversize", "garbage", "not-a-list"])
def test_a_hostile_engine_is_never_diagnosed_ok(world, engine_answers, answer, code):
    engine_answers(answer)
    result = diagnose(world.sessions.session, world.vms[1], PoolKeyCache(world.sessions.session), timeout=5,
                      socket_path=world.engine.path, ssh_port=world.rig.port)
    assert (result.code, result.ok) == (code, False), result.message


def test_a_sane_engine_is_diagnosed_ok(world):
    result = diagnose(world.sessions.session, world.vms[1], PoolKeyCache(world.sessions.session), timeout=5,
                      socket_path=world.engine.path, ssh_port=world.rig.port)
    assert result.ok, result.message
