"""Event classification and the coalescing refresh scheduler (fake refresh functions, real threads;
ordering is forced with events and barriers, never with sleeps)."""

import threading
import time

import pytest

from xscontainer.consumerxml.state import INFO, PS
from xscontainer.monitor.coalesce import (CoalesceState, RefreshScheduler, engine_event_filters, event_action,
                                          refreshes_for)

WAIT = 10.0  # generous upper bound for a thread hand-over; never a timing assertion


def container_event(action, **extra):
    event = {"Type": "container", "Action": action, "Actor": {"ID": "8dfafdbc3a40", "Attributes": {
        "image": "nginx", "name": "web"}}, "scope": "local", "time": 1700000000,
        "timeNano": 1700000000123456789, "status": action, "id": "8dfafdbc3a40", "from": "nginx"}
    event.update(extra)
    return event


@pytest.mark.parametrize("action", ["start", "die", "kill", "stop", "restart", "pause", "unpause",
                                    "rename", "health_status: healthy", "health_status: unhealthy"])
def test_lifecycle_events_refresh_docker_ps_only(action):
    assert refreshes_for(container_event(action)) == {PS}


@pytest.mark.parametrize("action", ["create", "destroy"])
def test_create_and_destroy_refresh_both(action):
    assert refreshes_for(container_event(action)) == {PS, INFO}


@pytest.mark.parametrize("action", ["exec_create: sh -c true", "exec_start: sh -c true", "exec_die",
                                    "attach", "detach", "resize", "top", "commit", "export", "oom",
                                    "update", "copy", "archive-path", ""])
def test_other_container_events_refresh_nothing(action):
    assert refreshes_for(container_event(action)) == frozenset()


def test_pre_1_22_events_have_no_type_and_no_action():
    assert refreshes_for({"status": "die", "id": "8dfafdbc3a40", "from": "nginx", "time": 1}) == {PS}
    assert refreshes_for({"status": "create", "id": "8dfafdbc3a40", "from": "nginx", "time": 1}) == {PS, INFO}
    assert event_action({"status": "exec_die"}) == ("container", "exec_die")


def test_image_and_other_objects():
    assert refreshes_for({"Type": "image", "Action": "pull", "Actor": {"ID": "nginx:1.25"}}) == {INFO}
    assert refreshes_for({"Type": "image", "Action": "delete", "Actor": {"ID": "sha256:0d1"}}) == {INFO}
    assert refreshes_for({"Type": "image", "Action": "tag"}) == frozenset()
    assert refreshes_for({"Type": "network", "Action": "connect"}) == frozenset()
    assert refreshes_for({"Type": "volume", "Action": "destroy"}) == frozenset()


def test_engine_filters_cover_every_refreshing_action():
    filters = engine_event_filters()
    assert filters["type"] == ["container", "image"]
    for action in ("create", "start", "die", "kill", "stop", "restart", "pause", "unpause", "destroy",
                   "rename", "health_status", "pull", "delete"):
        assert action in filters["event"]
    assert "exec_die" not in filters["event"]


# -- the pure bookkeeping -----------------------------------------------------------------------

def test_state_queues_once_and_repeats_once_after_a_busy_refresh():
    state = CoalesceState()
    assert state.mark("vm", [PS]) is True           # queue it
    assert state.mark("vm", [INFO]) is False        # joins the queued one
    assert state.begin("vm") == {PS, INFO}
    assert state.is_running("vm")
    for _ in range(100):                            # a burst during the refresh
        assert state.mark("vm", [PS]) is False
    assert state.finish("vm") is True               # exactly one more
    assert state.begin("vm") == {PS}
    assert state.finish("vm") is False
    assert state.idle()


def test_state_ignores_empty_requests_and_honours_forget():
    state = CoalesceState()
    assert state.mark("vm", []) is False
    assert state.idle()
    assert state.mark("vm", [PS]) is True
    state.forget("vm")
    assert state.begin("vm") == frozenset()         # the queued entry is a no-op now
    assert state.idle()
    assert state.mark("vm", [PS]) is True
    assert state.begin("vm") == {PS}
    state.mark("vm", [PS])
    state.forget("vm")                              # monitoring stopped during the refresh
    assert state.finish("vm") is False
    assert state.idle()


def test_state_keeps_keys_apart():
    state = CoalesceState()
    assert state.mark("a", [PS]) and state.mark("b", [INFO])
    assert state.begin("a") == {PS}
    assert state.pending("b") == {INFO}
    assert state.begin("b") == {INFO}
    assert not state.finish("a") and not state.finish("b")


# -- the threaded scheduler ---------------------------------------------------------------------

class GatedRefresh:
    """A refresh that records its calls and, while ``gate`` is closed, blocks inside the call."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.in_flight = {}
        self.max_in_flight = 0

    def __call__(self, key, kinds):
        with self.lock:
            self.calls.append((key, kinds))
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight[key])
        self.entered.set()
        try:
            assert self.gate.wait(WAIT)
        finally:
            with self.lock:
                self.in_flight[key] -= 1


@pytest.fixture
def scheduler_factory():
    made = []

    def make(refresh, **kwargs):
        scheduler = RefreshScheduler(refresh, **kwargs).start()
        made.append(scheduler)
        return scheduler
    yield make
    for scheduler in made:
        scheduler.stop(timeout=WAIT)
        assert scheduler.alive_threads() == 0


def test_a_burst_during_a_refresh_costs_exactly_one_more(scheduler_factory):
    refresh = GatedRefresh()
    scheduler = scheduler_factory(refresh, workers=4)
    scheduler.request("vm1", [PS])
    assert refresh.entered.wait(WAIT)
    for index in range(100):
        scheduler.request("vm1", [PS] if index % 10 else [PS, INFO])
    refresh.gate.set()
    assert scheduler.wait_idle(WAIT)
    assert refresh.calls == [("vm1", {PS}), ("vm1", {PS, INFO})]
    assert refresh.max_in_flight == 1


def test_the_last_refresh_sees_the_last_change(scheduler_factory):
    """A producer changes 'engine state' and requests a refresh after each change, concurrently
    with the refreshes; the value written last must be the final state."""
    engine = {"vm0": 0, "vm1": 0, "vm2": 0}
    written = {}
    lock = threading.Lock()

    def refresh(key, kinds):
        with lock:
            seen = engine[key]
        written[key] = seen

    scheduler = scheduler_factory(refresh, workers=2)

    def produce(key):
        for _ in range(500):
            with lock:
                engine[key] += 1
            scheduler.request(key, [PS])

    producers = [threading.Thread(target=produce, args=("vm%d" % i,)) for i in range(3)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join(WAIT)
    assert scheduler.wait_idle(WAIT)
    assert written == {"vm0": 500, "vm1": 500, "vm2": 500}


def test_different_keys_refresh_in_parallel_but_one_key_never_does(scheduler_factory):
    barrier = threading.Barrier(2, timeout=WAIT)
    in_flight = {}
    peak = {"value": 0}
    lock = threading.Lock()
    calls = []

    def refresh(key, kinds):
        with lock:
            calls.append(key)
            in_flight[key] = in_flight.get(key, 0) + 1
            peak["value"] = max(peak["value"], in_flight[key])
        try:
            if len(calls) <= 2:
                barrier.wait()  # both first refreshes must be inside at once: parallel keys
        finally:
            with lock:
                in_flight[key] -= 1

    scheduler = scheduler_factory(refresh, workers=4)
    scheduler.request("a", [PS])
    scheduler.request("b", [PS])
    for _ in range(200):
        scheduler.request("a", [PS])
        scheduler.request("b", [INFO])
    assert scheduler.wait_idle(WAIT)
    assert not barrier.broken
    assert peak["value"] == 1


def test_a_failing_refresh_is_reported_and_the_worker_survives(scheduler_factory):
    errors = []
    done = threading.Event()

    def refresh(key, kinds):
        if key == "bad":
            raise RuntimeError("engine went away")
        done.set()

    scheduler = scheduler_factory(refresh, workers=1, on_error=lambda k, kinds, exc: errors.append((k, kinds, str(exc))))
    scheduler.request("bad", [PS])
    assert scheduler.wait_idle(WAIT)
    scheduler.request("good", [PS])
    assert done.wait(WAIT)
    assert errors == [("bad", {PS}, "engine went away")]


def test_forget_during_a_refresh_prevents_the_repeat(scheduler_factory):
    refresh = GatedRefresh()
    scheduler = scheduler_factory(refresh, workers=1)
    scheduler.request("vm1", [PS])
    assert refresh.entered.wait(WAIT)
    scheduler.request("vm1", [PS])
    scheduler.forget("vm1")
    refresh.gate.set()
    assert scheduler.wait_idle(WAIT)
    assert refresh.calls == [("vm1", {PS})]


def test_stop_joins_every_worker_and_drops_queued_work():
    refresh = GatedRefresh()
    scheduler = RefreshScheduler(refresh, workers=3).start()
    assert scheduler.alive_threads() == 3
    scheduler.request("vm1", [PS])
    assert refresh.entered.wait(WAIT)
    scheduler.request("vm1", [PS])
    stopper = threading.Thread(target=scheduler.stop, kwargs={"timeout": WAIT})
    stopper.start()
    refresh.gate.set()  # the owner unblocks the in-flight refresh (closes its connection)
    stopper.join(WAIT)
    assert scheduler.alive_threads() == 0
    assert refresh.calls == [("vm1", {PS})]
    scheduler.request("vm1", [PS])  # ignored after stop
    assert refresh.calls == [("vm1", {PS})]


def test_workers_must_be_positive():
    with pytest.raises(ValueError):
        RefreshScheduler(lambda key, kinds: None, workers=0)


def test_a_delayed_request_runs_later_unless_forgotten(scheduler_factory):
    calls = []
    done = threading.Event()

    def refresh(key, kinds):
        calls.append((key, kinds))
        done.set()
    scheduler = scheduler_factory(refresh, workers=2)
    scheduler.request_later("b", [INFO], 0.02)
    scheduler.request_later("a", [PS], 0.05)
    scheduler.forget("b")
    assert not scheduler.wait_idle(0)  # a delayed request is work still to do
    assert done.wait(WAIT) and scheduler.wait_idle(WAIT)
    assert calls == [("a", frozenset([PS]))]


# -- event-driven refreshes before start-up ones --------------------------------------------------

class OrderedRefresh:
    """Records the order of refreshes; the first one blocks until ``gate`` opens, so that the
    others queue up behind it."""

    def __init__(self):
        self.calls = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, key, kinds):
        with self.lock:
            self.calls.append(key)
            first = len(self.calls) == 1
        if first:
            self.entered.set()
            assert self.gate.wait(WAIT)


def test_event_driven_refreshes_are_served_before_start_up_ones(scheduler_factory):
    refresh = OrderedRefresh()
    scheduler = scheduler_factory(refresh, workers=1)
    scheduler.request("blocker", [PS])
    assert refresh.entered.wait(WAIT)
    for index in range(5):
        scheduler.request("startup%d" % index, [PS, INFO], background=True)
    for index in range(3):
        scheduler.request("event%d" % index, [PS])
    refresh.gate.set()
    assert scheduler.wait_idle(WAIT)
    assert refresh.calls == ["blocker", "event0", "event1", "event2"] + ["startup%d" % i for i in range(5)]


def blocked_scheduler(scheduler_factory):
    """(a one-worker scheduler busy with "blocker" until ``refresh.gate`` opens, the refresh,
    the (key, kinds) of every refresh in order)."""
    calls = []
    refresh = OrderedRefresh()

    def record(key, kinds):
        calls.append((key, kinds))
        refresh(key, kinds)

    scheduler = scheduler_factory(record, workers=1)
    scheduler.request("blocker", [PS])
    assert refresh.entered.wait(WAIT)
    return scheduler, refresh, calls


def test_an_event_promotes_a_queued_start_up_refresh(scheduler_factory):
    scheduler, refresh, calls = blocked_scheduler(scheduler_factory)
    for index in range(3):
        scheduler.request("vm%d" % index, [INFO], background=True)
    scheduler.request("vm2", [PS])  # an event of a VM whose first full read is still queued
    refresh.gate.set()
    assert scheduler.wait_idle(WAIT)
    assert calls[1] == ("vm2", {PS, INFO})
    assert [key for key, _ in calls] == ["blocker", "vm2", "vm0", "vm1"]


def test_deferred_start_up_work_waits_for_every_other_start_up_refresh(scheduler_factory):
    # docker_info and docker_version cost dockerd ten times what docker_ps does (5 ms of its CPU
    # against 0.6 per VM): at start-up, every VM's docker_ps first (issue 18).
    scheduler, refresh, calls = blocked_scheduler(scheduler_factory)
    scheduler.request("vm0", [INFO], background=True, deferred=True)
    scheduler.request("vm1", [PS], background=True)
    scheduler.request("vm2", [INFO], background=True, deferred=True)
    scheduler.request("vm2", [PS], background=True)  # start-up work of its own: not deferred
    scheduler.request("vm3", [PS], background=True)
    scheduler.request("vm4", [INFO], background=True, deferred=True)
    scheduler.request("vm4", [PS])  # an event: first of all
    refresh.gate.set()
    assert scheduler.wait_idle(WAIT)
    assert calls == [("blocker", {PS}), ("vm4", {PS, INFO}), ("vm1", {PS}), ("vm2", {PS, INFO}), ("vm3", {PS}),
                     ("vm0", {INFO})]


def test_deferred_start_up_work_waits_until_no_key_is_still_starting(scheduler_factory):
    # At 1,000 VMs the connections are what the start-up waits for: a deferred docker_info read
    # between two connections (the start-up queue is empty then) took the engines' CPU from the
    # handshakes still to come (issue 18).
    scheduler, refresh, calls = blocked_scheduler(scheduler_factory)
    scheduler.starting("vm0")
    scheduler.starting("vm1")
    scheduler.started("vm0")  # its docker_ps is written
    scheduler.request("vm0", [INFO], background=True, deferred=True)
    refresh.gate.set()
    # Never a false failure: a slow machine can only let a defect pass here.
    assert not scheduler.wait_idle(0.5), "deferred work ran while vm1 was still starting"
    assert calls == [("blocker", {PS})]
    scheduler.started("vm1")
    assert scheduler.wait_idle(WAIT)
    assert calls == [("blocker", {PS}), ("vm0", {INFO})]


def test_a_forgotten_key_no_longer_holds_deferred_work(scheduler_factory):
    scheduler, refresh, calls = blocked_scheduler(scheduler_factory)
    scheduler.starting("vm1")
    scheduler.request("vm0", [INFO], background=True, deferred=True)
    refresh.gate.set()
    scheduler.forget("vm1")  # its watcher stopped before it ever connected
    assert scheduler.wait_idle(WAIT)
    assert calls == [("blocker", {PS}), ("vm0", {INFO})]


def test_start_up_refreshes_leave_workers_free_for_events(scheduler_factory):
    """However many start-up refreshes wait (a thousand VMs connecting), they never take every
    worker: an event-driven refresh starts while those running are all blocked."""
    gate = threading.Event()
    event_started = threading.Event()
    started = []
    lock = threading.Lock()

    def refresh(key, kinds):
        with lock:
            started.append(key)
        if key == "event":
            event_started.set()
        else:
            assert gate.wait(WAIT)

    scheduler = scheduler_factory(refresh, workers=4)
    for index in range(20):
        scheduler.request("startup%d" % index, [PS], background=True)
    scheduler.request("event", [PS])
    try:
        assert event_started.wait(WAIT)
        with lock:
            assert len([key for key in started if key != "event"]) < 4
    finally:
        gate.set()
    assert scheduler.wait_idle(WAIT)
    assert sorted(started) == sorted(["event"] + ["startup%d" % i for i in range(20)])


# -- a VM whose refreshes follow each other rests ------------------------------------------------

class Clock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


def test_a_key_rests_seven_times_the_cpu_its_refresh_took_and_the_others_do_not_wait(scheduler_factory):
    # A guest whose engine reports a change as soon as each refresh ends kept a refresh of its VM
    # running all the time (issue 13: 43 % of a core with its events already paced). A key's
    # refreshes take at most an eighth of the time they occupy.
    wall, cpu = Clock(), Clock()
    calls = []
    ran = threading.Condition()

    def refresh(key, kinds):
        with ran:
            calls.append(key)
            ran.notify_all()
        if key == "hostile":
            cpu.now += 1.0

    def wait_calls(count, key):
        with ran:
            return ran.wait_for(lambda: calls.count(key) >= count, WAIT)

    scheduler = scheduler_factory(refresh, workers=2, clock=wall, cpu_clock=cpu)
    scheduler.request("hostile", [PS])
    assert wait_calls(1, "hostile") and scheduler.wait_idle(WAIT)
    scheduler.request("hostile", [PS])  # right after: rests until 7 CPU-seconds after it ended
    scheduler.request("quiet", [PS])
    assert wait_calls(1, "quiet")
    time.sleep(0.2)
    assert calls.count("hostile") == 1 and not scheduler.wait_idle(0)
    wall.now += 6.9
    scheduler.request("quiet", [PS])  # wakes the workers: the clock moved
    assert wait_calls(2, "quiet")
    time.sleep(0.2)
    assert calls.count("hostile") == 1
    wall.now += 0.1
    scheduler.request("quiet", [PS])
    assert wait_calls(2, "hostile") and scheduler.wait_idle(WAIT)
    # A key refreshed long ago does not rest.
    wall.now += 10.0
    scheduler.request("hostile", [PS])
    assert wait_calls(3, "hostile")


def test_an_event_that_arrives_while_its_key_rests_is_still_served_before_start_up_work(scheduler_factory):
    wall, cpu = Clock(), Clock()
    calls = []
    gate = threading.Event()
    entered = threading.Event()

    def refresh(key, kinds):
        calls.append(key)
        if key == "hostile":
            cpu.now += 1.0
        if key == "s0":
            entered.set()
            assert gate.wait(WAIT)

    scheduler = scheduler_factory(refresh, workers=1, clock=wall, cpu_clock=cpu)
    scheduler.request("hostile", [PS])
    assert scheduler.wait_idle(WAIT)
    scheduler.request("hostile", [PS])  # an event while it rests (7 s)
    for index in range(3):
        scheduler.request("s%d" % index, [PS], background=True)
    assert entered.wait(WAIT)  # s0 runs; s1 and s2 wait
    wall.now += 7.0  # the rest is over
    gate.set()
    assert scheduler.wait_idle(WAIT)
    assert calls == ["hostile", "s0", "hostile", "s1", "s2"]


@pytest.mark.parametrize("cpu_cost", [0.0, 0.01], ids=["no rest", "a rest of 70 ms"])
def test_deferred_work_asked_for_by_its_own_refresh_stays_deferred(scheduler_factory, cpu_cost):
    # The watcher asks for docker_info from inside the VM's first refresh (so the request joins a
    # running refresh, and the key rests after it): that request went to the start-up lane, and
    # every VM's docker_info was read between the connections still to come (issue 18).
    cpu = Clock()
    calls = []
    holder = []

    def refresh(key, kinds):
        calls.append((key, kinds))
        cpu.now += cpu_cost
        if kinds == {PS}:
            holder[0].started(key)
            holder[0].request(key, [INFO], background=True, deferred=True)

    scheduler = scheduler_factory(refresh, workers=1, cpu_clock=cpu)
    holder.append(scheduler)
    scheduler.starting("vm0")
    scheduler.starting("vm1")
    scheduler.request("vm0", [PS], background=True)
    # Never a false failure: a slow machine can only let a defect pass here.
    assert not scheduler.wait_idle(0.5), "deferred work ran while vm1 was still starting"
    assert calls == [("vm0", {PS})]
    scheduler.started("vm1")
    assert scheduler.wait_idle(WAIT)
    assert calls == [("vm0", {PS}), ("vm0", {INFO})]


def test_busy_while_a_refresh_is_queued_or_running(scheduler_factory):
    scheduler, refresh, calls = blocked_scheduler(scheduler_factory)
    scheduler.request("vm0", [PS], background=True)
    assert scheduler.busy()
    refresh.gate.set()
    assert scheduler.wait_idle(WAIT)
    assert not scheduler.busy()
