"""ByteBudget with literal inputs: reservations up to the limit, refusal naming the VM and the
budget, parent (process-wide) budget shared by children, threads."""

import threading

import pytest

from xscontainer.engine.budget import ByteBudget
from xscontainer.errors import EngineError


def test_reserve_up_to_the_limit_then_refuse_and_recover():
    budget = ByteBudget(100, "VM vm-a")
    budget.reserve(60, "vm-a")
    with pytest.raises(EngineError) as info:
        budget.reserve(41, "vm-a")
    assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"
    assert "vm-a" in info.value.message and "100 bytes" in info.value.message
    assert budget.used == 60  # a refusal reserves nothing
    budget.release(60)
    budget.reserve(100, "vm-a")
    assert budget.used == 100


def test_children_share_the_parent():
    process = ByteBudget(100, "all VMs")
    a = ByteBudget(80, "VM a", process)
    b = ByteBudget(80, "VM b", process)
    a.reserve(70, "a")
    with pytest.raises(EngineError) as info:
        b.reserve(40, "b")
    assert "all VMs" in info.value.message and "VM b" in info.value.message
    assert (process.used, a.used, b.used) == (70, 70, 0)
    b.reserve(30, "b")
    with pytest.raises(EngineError):
        a.reserve(11, "a")  # the child's own limit: the parent keeps nothing of the refusal
    assert process.used == 100
    a.release(70)
    b.release(30)
    assert (process.used, a.used, b.used) == (0, 0, 0)


def test_concurrent_reservations_never_exceed_the_limit():
    budget = ByteBudget(1000, "all VMs")
    granted = []

    def worker():
        for _ in range(200):
            try:
                budget.reserve(7, "x")
            except EngineError:
                continue
            granted.append(7)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.used == sum(granted) and budget.used <= 1000 and budget.used > 1000 - 7


# -- the budgets in HttpPool, against a scripted engine on a real Unix socket ------------------

import os  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402

from xscontainer.engine.client import DockerClient  # noqa: E402
from xscontainer.engine.http import HttpPool  # noqa: E402
from xscontainer.transport.stream import SocketStream  # noqa: E402

from .unixserver import UnixServer, json_response, read_request  # noqa: E402

MIB = 1024 * 1024


def json_array(size):
    """A JSON array body of exactly ``size`` bytes."""
    return b'["' + b"x" * (size - 4) + b'"]'


class SlowBig(object):
    """An engine whose ``/slow`` answer (2 MiB) stops after its first MiB until ``go`` is set;
    ``/big?n=BYTES`` answers at once."""

    def __init__(self, path):
        self.go = threading.Event()
        self.server = UnixServer(path, self.handle)

    def handle(self, conn):
        while True:
            line = read_request(conn)
            if line is None:
                return
            if "/slow" in line:
                body = json_array(2 * MIB)
                conn.sendall(json_response(body)[:-(MIB)])
                self.go.wait(30)
                conn.sendall(body[-MIB:])
            else:
                size = int(line.split("n=")[1].split()[0])
                conn.sendall(json_response(json_array(size)))

    def pool(self, budget, vm_uuid):
        def open_stream():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.server.path)
            return SocketStream(sock, self.server.path)
        return HttpPool(open_stream, budget=budget, vm_uuid=vm_uuid)


@pytest.fixture
def engine():
    directory = tempfile.mkdtemp(prefix="xsc-budget-")
    fake = SlowBig(os.path.join(directory, "engine.sock"))
    yield fake
    fake.go.set()
    fake.server.close()
    os.rmdir(directory)


def wait_until(predicate, seconds=20.0):
    end = threading.Event()
    for _ in range(int(seconds * 100)):
        if predicate():
            return
        end.wait(0.01)
    raise AssertionError("condition not reached")


def slow_request(pool, results):
    thread = threading.Thread(target=lambda: results.append(pool.request("GET", "/slow")))
    thread.start()
    return thread


def test_vm_budget_refuses_a_second_large_response_while_the_first_is_read(engine):
    budget = ByteBudget(2 * MIB + 4096, "VM vm-a", ByteBudget(128 * MIB, "all VMs"))
    pool = engine.pool(budget, "vm-a")
    results = []
    first = slow_request(pool, results)
    wait_until(lambda: budget.used >= MIB - 64 * 1024)
    with pytest.raises(EngineError) as info:
        pool.request("GET", "/big?n=%d" % (3 * MIB // 2))
    assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"
    assert "VM vm-a" in info.value.message
    assert pool.request("GET", "/big?n=1000").status == 200  # small answers still pass
    engine.go.set()
    first.join()
    assert len(results[0].body) == 2 * MIB
    assert budget.used == 0 and budget.parent.used == 0
    assert len(pool.request("GET", "/big?n=%d" % (3 * MIB // 2)).body) == 3 * MIB // 2
    assert budget.used == 0
    pool.close()


def test_process_budget_is_shared_by_every_vm(engine):
    process = ByteBudget(2 * MIB, "all VMs")
    pool_a = engine.pool(ByteBudget(4 * MIB, "VM vm-a", process), "vm-a")
    pool_b = engine.pool(ByteBudget(4 * MIB, "VM vm-b", process), "vm-b")
    results = []
    first = slow_request(pool_a, results)
    wait_until(lambda: process.used >= MIB - 64 * 1024)
    with pytest.raises(EngineError) as info:
        pool_b.request("GET", "/big?n=%d" % (3 * MIB // 2))
    assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"
    assert "vm-b" in info.value.message and "all VMs" in info.value.message
    engine.go.set()
    first.join()
    assert len(results[0].body) == 2 * MIB
    assert len(pool_b.request("GET", "/big?n=%d" % (3 * MIB // 2)).body) == 3 * MIB // 2
    assert process.used == 0
    pool_a.close()
    pool_b.close()


class Api(DockerClient):
    def _negotiate(self):
        return (1, 41)


@pytest.mark.parametrize("call, path, size", [
    (lambda client: client.ping(), "/_ping", 64 * 1024 + 1),
    (lambda client: client.inspect("a" * 64), "/json", 4 * MIB + 1),
    (lambda client: client.version(), "/version", MIB + 1),
    (lambda client: client.containers(), "/containers/json", 16 * MIB + 1),
], ids=["ping", "inspect", "version", "containers"])
def test_each_endpoint_has_its_own_bound_below_the_pools(call, path, size):
    def handle(conn):
        while True:
            line = read_request(conn)
            if line is None:
                return
            conn.sendall(json_response(json_array(size)))
    directory = tempfile.mkdtemp(prefix="xsc-cap-")
    server = UnixServer(os.path.join(directory, "e.sock"), handle)

    def open_stream():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(server.path)
        return SocketStream(sock, server.path)
    client = Api(HttpPool(open_stream), "vm-a")
    try:
        with pytest.raises(EngineError) as info:
            call(client)
        assert info.value.code == "ENGINE_RESPONSE_TOO_LARGE"
    finally:
        client.close()
        server.close()
        os.rmdir(directory)
