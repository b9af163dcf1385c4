"""Refreshes wait for the container list to catch up with the events they follow."""

from xscontainer.monitor.state import Settle, StartTimes, expected_state, render_state, unmet


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


def test_pause_and_unpause_keep_the_known_start_time():
    """A pause of 100 VMs' containers at once costs 100 list reads, not 100 lists and 100
    inspects: pausing, unpausing, renaming and health checks do not change StartedAt."""
    from xscontainer.monitor.state import may_change_start_time
    for action in ("pause", "unpause", "rename", "health_status: healthy", "health_status"):
        assert not may_change_start_time(action)
    for action in ("start", "restart", "die", "kill", "stop", "create", "destroy", "anything new"):
        assert may_change_start_time(action)
