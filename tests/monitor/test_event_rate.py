"""A guest's engine cannot make the monitor spend without bound on its events: a VM's event stream
is read no faster than ``events_per_second`` once ``event_burst`` events came at once (an engine
sending events as fast as the monitor read them kept 69 % of a core busy, issue 13). The rest
waits in the guest (the SSH window fills and its engine blocks); nothing is dropped."""

import threading
import time

import pytest

from waiting import wait_for
from xscontainer.backoff import RateLimit
from xscontainer.monitor.view import Target
from xscontainer.monitor.watcher import Watcher

from .test_writes import VM, UUID, FakeEngine, FakeServices, FakeVMClass


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_rate_limit_lets_a_burst_through_then_one_per_interval():
    clock = FakeClock()
    limit = RateLimit(rate=10.0, burst=3, clock=clock)
    assert [limit.wait_time() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.wait_time() == pytest.approx(0.1)  # nothing taken while it says to wait
    assert limit.wait_time() == pytest.approx(0.1)
    clock.now += 0.1
    assert limit.wait_time() == 0.0 and limit.wait_time() == pytest.approx(0.1)
    clock.now += 60  # idle: the burst comes back, no more
    assert [limit.wait_time() for _ in range(4)][-2:] == [0.0, pytest.approx(0.1)]


class FloodStream:
    """Container events as fast as they are read, counted."""

    def __init__(self):
        self.read = 0
        self.closed = threading.Event()

    def __iter__(self):
        while not self.closed.is_set():
            self.read += 1
            yield type("Event", (), {"raw": {"Type": "container", "Action": "start", "id": "a" * 64},
                                     "id": "a" * 64, "action": "start", "name": "web"})()

    def close(self):
        self.closed.set()


class FloodEngine(FakeEngine):
    def events(self):
        stream = FloodStream()
        self.streams.append(stream)
        return stream


def test_an_event_flood_is_read_at_the_stated_rate_and_stop_still_works():
    api, engine, clock = FakeVMClass(), FloodEngine(), FakeClock()
    services = FakeServices(api, engine)
    services.clock = clock
    services.event_rate = {"rate": 50.0, "burst": 20}
    services.scheduler.start()
    watcher = services.watcher = Watcher(Target(VM, UUID, ("10.0.0.2",), "core", "ssh"), services)
    watcher.start()
    try:
        wait_for(lambda: engine.streams and engine.streams[0].read >= 20, what="the burst read")
        time.sleep(0.3)
        stream = engine.streams[0]
        assert stream.read <= 21  # the burst, and the one read before the wait: the clock stands still
        clock.now += 0.2
        wait_for(lambda: stream.read >= 20 + 10, what="a fifth of a second's worth of events")
        time.sleep(0.3)
        assert stream.read <= 20 + 10 + 1
        wait_for(lambda: "docker_ps" in api.get_other_config(VM), what="the refresh the events asked for")
    finally:
        watcher.stop(remove_keys=False)
        services.scheduler.stop()
    assert not watcher._thread.is_alive()
