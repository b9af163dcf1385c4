"""Refreshes wait for the container list to catch up with the events they follow."""

from xscontainer.consumerxml.state import (MAX_INSPECTS, Settle, StartTimes, expected_state,
                                          may_change_start_time, render_state, unmet)
from xscontainer.engine.budget import ByteBudget


class FakeEngine:
    """Answers /containers/json from a script of successive lists (the engine's lagging view)."""

    def __init__(self, lists):
        self.lists = list(lists)
        self.calls = 0

    def containers(self, all=True):
        self.calls += 1
        return self.lists[min(self.calls, len(self.lists)) - 1]

    def inspect(self, cid):
        return {"State": {"StartedAt": "2026-11-27T03:00:00.123Z"}}


def record(state, name="web", cid="a" * 64):
    status = {"running": "Up 3 seconds", "paused": "Up 3 seconds (Paused)"}.get(state, "Exited (0) 1 second ago")
    return {"Id": cid, "Names": ["/" + name], "State": state, "Status": status}


def test_expectations_by_action():
    assert expected_state("pause")(record("paused"))
    assert not expected_state("pause")(record("running"))
    assert expected_state("unpause")(record("running")) and not expected_state("unpause")(record("paused"))
    assert expected_state("destroy")(None) and not expected_state("destroy")(record("exited"))
    assert expected_state("create")(record("created")) and not expected_state("create")(None)
    assert expected_state("rename", "new")(record("running", name="new"))
    assert not expected_state("rename", "new")(record("running", name="old"))
    assert expected_state("exec_start") is None


def test_a_lagging_list_is_read_again_until_it_shows_the_event():
    engine = FakeEngine([[record("running")], [record("running")], [record("paused")]])
    slept = []
    values = render_state(engine, ["docker_ps"], StartTimes(), {"a" * 64: expected_state("pause")},
                          Settle(sleep=slept.append))
    assert "(Paused)" in values["docker_ps"] and engine.calls == 3 and slept == [0.01, 0.02]
    assert unmet([record("paused")], {"a" * 64: expected_state("pause")}) == {}


def test_the_wait_is_bounded_when_the_container_changed_again():
    engine = FakeEngine([[record("running")]])
    slept = []
    values = render_state(engine, ["docker_ps"], StartTimes(), {"a" * 64: expected_state("pause")},
                          Settle(sleep=slept.append))
    assert "<status>Up</status>" in values["docker_ps"]
    assert slept == list(Settle().delays)


class BudgetedEngine(FakeEngine):
    """Its lists are held in a VM budget with room for one at a time, as a real client's are."""

    def __init__(self, lists):
        super().__init__(lists)
        self.budget = ByteBudget(1000, "VM vm-a")

    def containers(self, all=True):
        listing = super().containers(all)
        return self.budget.hold(600, "vm-a", lambda: list(listing))


def test_a_list_read_again_fits_where_only_one_list_does():
    """The settle loop drops the list that lagged before it reads the next one: holding both, a VM
    whose list takes more than half its budget could never be refreshed after an event."""
    engine = BudgetedEngine([[record("running")], [record("paused")]])
    values = render_state(engine, ["docker_ps"], StartTimes(), {"a" * 64: expected_state("pause")},
                          Settle(sleep=lambda delay: None))
    assert "(Paused)" in values["docker_ps"] and engine.calls == 2
    assert engine.budget.used == 0


class CountingEngine(FakeEngine):
    def __init__(self, lists):
        super().__init__(lists)
        self.inspected = []

    def inspect(self, cid):
        self.inspected.append(cid)
        return super().inspect(cid)


def test_a_refresh_inspects_a_bounded_number_of_new_containers_newest_first():
    """A VM listing 10,000 running containers cost 10,000 inspect requests in one refresh (38 % of
    a core for 12 s in bench/hostile.py); each refresh now inspects at most MAX_INSPECTS unknown
    ones, newest first (those docker_ps lists first when it cannot list them all)."""
    containers = [dict(record("running", name="c%d" % i, cid="%064x" % i), Created=1700000000 + i)
                  for i in range(1000)]
    engine = CountingEngine([containers])
    times = StartTimes()
    first = times.lookup(engine, containers)
    newest = set("%064x" % i for i in range(1000 - MAX_INSPECTS, 1000))
    assert set(engine.inspected) == newest and set(first) == newest
    second = times.lookup(engine, containers)
    assert len(engine.inspected) == 2 * MAX_INSPECTS and len(second) == 2 * MAX_INSPECTS
    assert set(second) > newest


def test_pause_and_unpause_keep_the_known_start_time():
    """A pause of 100 VMs' containers at once costs 100 list reads, not 100 lists and 100
    inspects: pausing, unpausing, renaming and health checks do not change StartedAt."""
    for action in ("pause", "unpause", "rename", "health_status: healthy", "health_status"):
        assert not may_change_start_time(action)
    for action in ("start", "restart", "die", "kill", "stop", "create", "destroy", "anything new"):
        assert may_change_start_time(action)
