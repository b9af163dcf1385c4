"""The monitor's writes of VM.other_config end present and current whatever fails (issue 13 items
2 and 3): a failed add after a successful remove, and another host's monitor removing the keys
after a migration. A fake xapi VM class (key-by-key maps, MAP_DUPLICATE_KEY as xapi) stands for
xapi; the real writer, scheduler and watcher run on it."""

import threading

import XenAPI

import consumer_xml as cx
from monitor.test_budget import compose_container, states
from xscontainer.consumerxml.state import render_state, StartTimes
from xscontainer.monitor.coalesce import RefreshScheduler
from xscontainer.monitor.view import Target
from xscontainer.monitor.watcher import Watcher
from xscontainer.monitor.writer import OtherConfigWriter
from xscontainer.monitor.xapipool import SessionPool
from waiting import wait_for

VM = "OpaqueRef:vm-1"
UUID = "0b5f2c1e-0000-4000-8000-000000000001"


class FakeVMClass:
    """``session.xenapi.VM``: other_config maps written key by key; ``add`` fails while
    ``failing_adds`` is positive (the remove before it succeeded, as in the reported defect)."""

    def __init__(self):
        self.config = {VM: {"foreign": "kept"}}
        self.failing_adds = 0
        self.lock = threading.Lock()
        self.calls = []

    def remove_from_other_config(self, ref, key):
        with self.lock:
            self.calls.append(("remove", key))
            self.config[ref].pop(key, None)

    def add_to_other_config(self, ref, key, value):
        with self.lock:
            self.calls.append(("add", key))
            if self.failing_adds > 0:
                self.failing_adds -= 1
                raise ConnectionResetError("xapi closed the connection")
            if key in self.config[ref]:
                raise XenAPI.Failure(["MAP_DUPLICATE_KEY", "VM", "other_config", ref, key])
            self.config[ref][key] = value

    def get_other_config(self, ref):
        with self.lock:
            return dict(self.config[ref])


class FakeSession:
    def __init__(self, vm_class):
        logout = type("SessionClass", (), {"logout": lambda self: None})()
        self.xenapi = type("Api", (), {"VM": vm_class, "session": logout})()


def writer_on(vm_class):
    return OtherConfigWriter(SessionPool(lambda: FakeSession(vm_class), 1))


def test_a_failed_add_leaves_no_belief_that_the_value_is_written():
    api = FakeVMClass()
    writer = writer_on(api)
    assert writer.write(VM, "docker_ps", "A")
    api.failing_adds = 1
    try:
        writer.write(VM, "docker_ps", "B")
    except ConnectionResetError:
        pass
    assert "docker_ps" not in api.get_other_config(VM)  # removed, not added: what xapi holds now
    writer.write(VM, "docker_ps", "A")  # the engine went back to A: A must be written again
    assert api.get_other_config(VM) == {"foreign": "kept", "docker_ps": "A"}


def test_a_key_the_vm_was_seen_without_is_written_with_one_add():
    """A thousand VMs' first refreshes: three xapi calls each, not six."""
    api = FakeVMClass()
    writer = writer_on(api)
    writer.seed(VM, {"foreign": "kept"})
    assert writer.write(VM, "docker_ps", "A")
    assert api.calls == [("add", "docker_ps")]
    assert writer.write(VM, "docker_ps", "B")  # present now: replaced
    assert api.calls[1:] == [("remove", "docker_ps"), ("add", "docker_ps")]
    assert api.get_other_config(VM) == {"foreign": "kept", "docker_ps": "B"}


def test_a_key_added_by_someone_else_since_the_view_is_still_replaced():
    api = FakeVMClass()
    writer = writer_on(api)
    writer.seed(VM, {"foreign": "kept"})
    api.config[VM]["docker_ps"] = "theirs"  # e.g. the source host's monitor, after a migration
    assert writer.write(VM, "docker_ps", "ours")
    assert api.get_other_config(VM)["docker_ps"] == "ours"


def test_keys_removed_behind_the_writers_back_are_written_again():
    # A migration with monitors on both hosts: the destination seeds its writer from a view that
    # still holds the source's values, skips the identical write, then the source removes them.
    api = FakeVMClass()
    writer = writer_on(api)
    writer.seed(VM, {"docker_ps": "A", "docker_info": "I"})
    assert not writer.write(VM, "docker_ps", "A")
    # An event shows a value other than ours: it may be a snapshot taken between our own remove
    # and add, so one view is not enough ...
    assert writer.audit(VM, {"docker_info": "I"}) == []
    # ... but the same mismatch in the next batch, with no write of ours in between, is a loss.
    assert writer.audit(VM, {"docker_info": "I"}) == ["docker_ps"]
    assert writer.write(VM, "docker_ps", "A")
    assert api.get_other_config(VM)["docker_ps"] == "A"
    # Views that match what was written are no suspicion at all.
    assert writer.audit(VM, {"docker_ps": "A", "docker_info": "I"}) == []
    assert writer.audit(VM, {"docker_ps": "A", "docker_info": "I"}) == []


def test_a_write_of_ours_between_two_views_clears_the_suspicion():
    api = FakeVMClass()
    writer = writer_on(api)
    writer.write(VM, "docker_ps", "A")
    assert writer.audit(VM, {}) == []  # taken between our remove and add of A, say
    writer.write(VM, "docker_ps", "B")
    assert writer.audit(VM, {"docker_ps": "A"}) == []  # older than our write of B: not yet a loss
    assert writer.audit(VM, {"docker_ps": "B"}) == []
    assert writer.suspects() == set()


# -- the watcher: an xapi failure is retried with back-off, the engine connection is kept ----------

class Stream:
    def __init__(self):
        self.closed = threading.Event()

    def __iter__(self):
        self.closed.wait(30)
        return iter(())

    def close(self):
        self.closed.set()


class FakeEngine:
    def __init__(self, many=None):
        self.streams = []
        self.state = "running"
        self.many = many

    def events(self):
        stream = Stream()
        self.streams.append(stream)
        return stream

    def containers(self, all=True):
        if self.many is not None:
            return self.many
        status = "Up 1 second" if self.state == "running" else "Up 1 second (Paused)"
        return [{"Id": "a" * 64, "Names": ["/web"], "State": self.state, "Status": status,
                 "Image": "busybox", "Command": "sleep 1000", "Created": 1700000000}]

    def inspect(self, cid):
        return {"State": {"StartedAt": "2026-12-01T00:00:00Z"}}

    def info(self):
        return {"Driver": "overlay2"}

    def version(self):
        return {"Version": "24.0.7", "ApiVersion": "1.43"}


class FakeEngines:
    def __init__(self, engine):
        self.engine = engine
        self.closed = 0

    def client(self, uuid):
        return self.engine

    def close(self, uuid):
        self.closed += 1


class FakeServices:
    def __init__(self, api, engine):
        self.writer = writer_on(api)
        self.engines = FakeEngines(engine)
        self.scheduler = RefreshScheduler(self._refresh, workers=1)
        self.watcher = None
        self.warn_after = 120.0
        self.clock = __import__("time").monotonic
        self.backoff = {"initial": 0.01, "maximum": 0.05, "jitter": 0.0}
        self.event_rate = {"rate": 1000.0, "burst": 1000}
        self.connect_slots = threading.BoundedSemaphore(1)
        self.alerts = None

    def _refresh(self, uuid, kinds):
        self.watcher.refresh(kinds)

    def diagnose(self, uuid):
        return "diagnosis"


def test_a_failing_xapi_write_is_retried_until_the_key_is_present_and_current():
    api = FakeVMClass()
    engine = FakeEngine()
    services = FakeServices(api, engine)
    services.scheduler = RefreshScheduler(services._refresh, workers=1,
                                          on_error=lambda key, kinds, exc: services.watcher.refresh_failed(exc))
    services.scheduler.start()
    api.failing_adds = 3
    watcher = services.watcher = Watcher(Target(VM, UUID, ("10.0.0.2",), "core", "ssh"), services)
    watcher.start()
    try:
        expected = render_state(engine, ["docker_ps", "docker_info", "docker_version"], StartTimes())
        wait_for(lambda: all(api.get_other_config(VM).get(k) == v for k, v in expected.items()),
                 what="every key written despite the failing adds")
        assert api.failing_adds == 0
        # An xapi failure is no engine failure: the engine connection was kept.
        assert len(engine.streams) == 1 and services.engines.closed == 0
        assert watcher.status()["state"] == "monitored" and watcher.status()["last_error"] is None
        engine.state = "paused"  # and later changes still go through
        services.scheduler.request(UUID, ["docker_ps"])
        wait_for(lambda: "(Paused)" in api.get_other_config(VM).get("docker_ps", ""), what="the pause")
        assert api.get_other_config(VM)["foreign"] == "kept"
    finally:
        watcher.stop(remove_keys=False)
        services.scheduler.stop(10)


def test_get_status_says_when_docker_ps_could_not_list_everything():
    api = FakeVMClass()
    engine = FakeEngine([compose_container(i, s) for i, s in enumerate(states(1000))])
    services = FakeServices(api, engine)
    services.scheduler.start()
    watcher = services.watcher = Watcher(Target(VM, UUID, ("10.0.0.2",), "core", "ssh"), services)
    watcher.start()
    try:
        wait_for(lambda: "docker_ps" in api.get_other_config(VM), what="docker_ps")
        root = cx.xo_parse(api.get_other_config(VM)["docker_ps"])["docker_ps"]
        note = watcher.status()["docker_ps_note"]
        assert note.startswith("docker_ps lists %s of 1000 containers (running ones first)" % root["listed"])
        engine.many = engine.many[:3]
        services.scheduler.request(UUID, ["docker_ps"])
        wait_for(lambda: watcher.status()["docker_ps_note"] is None, what="the note to go")
    finally:
        watcher.stop(remove_keys=False)
        services.scheduler.stop(10)


def test_a_connection_writes_docker_ps_first_then_info_and_version():
    # At start-up docker_info and docker_version (ten times docker_ps's cost to the engine) wait
    # until every VM's docker_ps is written (issue 18).
    api = FakeVMClass()
    engine = FakeEngine()
    services = FakeServices(api, engine)
    services.scheduler.start()
    watcher = services.watcher = Watcher(Target(VM, UUID, ("10.0.0.2",), "core", "ssh"), services)
    watcher.start()
    try:
        wait_for(lambda: all(k in api.get_other_config(VM) for k in ("docker_ps", "docker_info", "docker_version")),
                 what="every key")
        adds = [key for op, key in api.calls if op == "add"]
        assert adds[0] == "docker_ps" and sorted(adds[1:]) == ["docker_info", "docker_version"], adds
    finally:
        watcher.stop(remove_keys=False)
        services.scheduler.stop(10)
