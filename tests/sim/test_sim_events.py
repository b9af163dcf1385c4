"""event.from: tokens, coalescing, del without snapshot, related objects, blocking, logout."""

import threading
import time

import pytest

from waiting import wait_for
import XenAPI


def test_token_format_and_initial_adds(session):
    result = session.xenapi.event_from(["vm"], "", 0.0)
    assert set(result) == {"events", "token", "valid_ref_counts"}
    db_gen, msg_gen = result["token"].split(",")
    assert len(db_gen) == 20 and len(msg_gen) == 20
    assert {e["operation"] for e in result["events"]} == {"add"}
    assert all(e["class"] == "vm" and e["timestamp"] == "0.0" for e in result["events"])
    assert result["valid_ref_counts"]["vm"] == len(session.xenapi.VM.get_all())
    assert isinstance(result["valid_ref_counts"]["vm"], int)


def test_bad_token_and_subscription(session):
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.event_from(["vm"], "garbage", 0.0)
    assert err.value.details == ["EVENT_FROM_TOKEN_PARSE_FAILURE", "garbage"]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.event_from(["vm/a/b"], "", 0.0)
    assert err.value.details == ["EVENT_SUBSCRIPTION_PARSE_FAILURE", "vm/a/b"]
    # unpadded numbers parse too
    assert "token" in session.xenapi.event_from(["vm"], "1,0", 0.0)


def test_coalescing_add_mod_del(session):
    token = session.xenapi.event_from(["vm"], "", 0.0)["token"]
    keep = session.xenapi.VM.create({"name_label": "keep"})
    session.xenapi.VM.set_name_label(keep, "kept")
    gone = session.xenapi.VM.create({"name_label": "gone"})
    session.xenapi.VM.destroy(gone)
    result = session.xenapi.event_from(["VM"], token, 5.0)
    events = [(e["operation"], e["ref"]) for e in result["events"]]
    assert events == [("add", keep)]  # created+modified = add; created+deleted = nothing
    assert result["events"][0]["snapshot"]["name_label"] == "kept"
    token = result["token"]
    session.xenapi.VM.set_name_label(keep, "again")
    session.xenapi.VM.add_to_other_config(keep, "a", "b")
    result = session.xenapi.event_from(["vm"], token, 5.0)
    assert [(e["operation"], e["ref"]) for e in result["events"]] == [("mod", keep)]
    token = result["token"]
    session.xenapi.VM.destroy(keep)
    result = session.xenapi.event_from(["vm"], token, 5.0)
    assert len(result["events"]) == 1
    event = result["events"][0]
    assert event["operation"] == "del" and event["ref"] == keep
    assert "snapshot" not in event


def test_object_subscription_and_related_objects(session):
    vm = session.xenapi.VM.create({"name_label": "rel"})
    other = session.xenapi.VM.create({"name_label": "other"})
    token = session.xenapi.event_from(["vm/%s" % vm], "", 0.0)["token"]
    session.xenapi.VM.set_name_label(other, "x")
    sr = session.xenapi.pool.get_default_SR(session.xenapi.pool.get_all()[0])
    vdi = session.xenapi.VDI.create({"SR": sr, "virtual_size": "1048576", "type": "user",
                                     "sharable": False, "read_only": False,
                                     "other_config": {}})
    vbd = session.xenapi.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "1",
                                     "bootable": False, "mode": "RW", "type": "Disk",
                                     "empty": False, "other_config": {},
                                     "qos_algorithm_type": "", "qos_algorithm_params": {}})
    result = session.xenapi.event_from(["vm/%s" % vm, "vbd"], token, 5.0)
    got = {(e["class"], e["operation"], e["ref"]) for e in result["events"]}
    assert got == {("vm", "mod", vm), ("vbd", "add", vbd)}
    mod = [e for e in result["events"] if e["class"] == "vm"][0]
    assert mod["snapshot"]["VBDs"] == [vbd]
    session.xenapi.VBD.destroy(vbd)
    session.xenapi.VDI.destroy(vdi)
    session.xenapi.VM.destroy(vm)
    session.xenapi.VM.destroy(other)


def test_guest_metrics_changes(session):
    vm = session.xenapi.VM.create({"name_label": "gm"})
    token = session.xenapi.event_from(["vm", "vm_guest_metrics"], "", 0.0)["token"]
    gm = session.xenapi.sim.set_guest_networks(vm, {"0/ip": "10.0.0.5",
                                                    "0/ipv4/0": "10.0.0.5"})
    result = session.xenapi.event_from(["vm", "vm_guest_metrics"], token, 5.0)
    got = {(e["class"], e["operation"]) for e in result["events"]}
    assert got == {("vm", "mod"), ("vm_guest_metrics", "add")}
    token = result["token"]
    session.xenapi.sim.set_guest_networks(vm, {"0/ip": "10.0.0.6"})
    result = session.xenapi.event_from(["vm"], token, 0.5)
    assert result["events"] == []  # only the metrics object changed
    assert session.xenapi.VM_guest_metrics.get_networks(gm) == {"0/ip": "10.0.0.6"}
    session.xenapi.sim.clear_guest_metrics(vm)
    assert session.xenapi.VM.get_guest_metrics(vm) == "OpaqueRef:NULL"
    session.xenapi.VM.destroy(vm)


def test_timeout_returns_empty_after_the_timeout(session):
    token = session.xenapi.event_from(["secret"], "", 0.0)["token"]
    start = time.monotonic()
    result = session.xenapi.event_from(["secret"], token, 1.0)
    elapsed = time.monotonic() - start
    assert result["events"] == []
    assert 1.0 <= elapsed < 10.0


def test_wakes_up_on_a_change_from_another_thread(sim, session):
    token = session.xenapi.event_from(["secret"], "", 0.0)["token"]
    other = sim.session()

    def later():
        wait_for(lambda: other.xenapi.sim.blocked_event_calls() == 1, 20, "event.from waiting")
        other.xenapi.secret.create({"value": "s3cret", "other_config": {}})
    thread = threading.Thread(target=later)
    start = time.monotonic()
    thread.start()
    result = session.xenapi.event_from(["secret"], token, 30.0)
    elapsed = time.monotonic() - start
    thread.join()
    assert [e["operation"] for e in result["events"]] == ["add"]
    assert elapsed < 20.0
    other.xenapi.session.logout()


def test_logout_releases_a_blocked_call(sim):
    watcher = sim.session()
    token = watcher.xenapi.event_from(["secret"], "", 0.0)["token"]
    handle = watcher.handle
    outcome = []

    def block():
        outcome.append(getattr(watcher, "event.from")(handle, ["secret"], token, 60.0))
    thread = threading.Thread(target=block)
    thread.start()
    killer = sim.session()
    wait_for(lambda: killer.xenapi.sim.blocked_event_calls() == 1, 20, "event.from waiting")
    getattr(killer, "session.logout")(handle)
    thread.join(20)
    assert not thread.is_alive()
    assert outcome[0]["ErrorDescription"] == ["SESSION_INVALID", handle]
    killer.xenapi.session.logout()


def test_messages_and_inject(session):
    vm = session.xenapi.VM.get_all()[0]
    vm_uuid = session.xenapi.VM.get_uuid(vm)
    token = session.xenapi.event_from(["message"], "", 0.0)["token"]
    msg = session.xenapi.message.create("TEST", "3", "vm", vm_uuid, "body")
    result = session.xenapi.event_from(["message"], token, 5.0)
    assert [(e["operation"], e["id"], e["ref"]) for e in result["events"]] == \
        [("add", "0", msg)]
    assert result["events"][0]["snapshot"]["cls"] == "VM"
    assert result["events"][0]["snapshot"]["priority"] == "3"
    session.xenapi.message.destroy(msg)
    result = session.xenapi.event_from(["message"], result["token"], 5.0)
    assert [(e["operation"], "snapshot" in e) for e in result["events"]] == [("del", False)]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.message.create("TEST", "3", "VM", "no-such", "body")
    assert err.value.details == ["UUID_INVALID", "VM", "no-such"]
    token = session.xenapi.event_from(["vm"], "", 0.0)["token"]
    injected = session.xenapi.event.inject("VM", vm)
    result = session.xenapi.event_from(["vm"], injected, 5.0)
    assert [(e["operation"], e["ref"]) for e in result["events"]] == [("mod", vm)]
    assert token <= result["token"]


def test_records_on_the_wire_follow_every_change(session):
    # Records are marshalled once per change for all readers (Api.record): every reader sees
    # each change, whichever call reads the record, and a destroyed record is gone.
    vm = session.xenapi.VM.create({"name_label": "cached"})
    token = session.xenapi.event_from(["vm"], "", 0.0)["token"]
    assert session.xenapi.VM.get_record(vm)["other_config"] == {}
    for step in range(3):
        session.xenapi.VM.add_to_other_config(vm, "step", str(step))
        assert session.xenapi.VM.get_record(vm)["other_config"] == {"step": str(step)}
        assert session.xenapi.VM.get_all_records()[vm]["other_config"] == {"step": str(step)}
        result = session.xenapi.event_from(["vm/" + vm], token, 5.0)
        token = result["token"]
        assert [e["snapshot"]["other_config"] for e in result["events"]] == [{"step": str(step)}]
        session.xenapi.VM.remove_from_other_config(vm, "step")
    session.xenapi.VM.set_name_label(vm, "renamed")
    assert session.xenapi.VM.get_record(vm)["name_label"] == "renamed"
    session.xenapi.VM.destroy(vm)
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.get_record(vm)
    assert err.value.details[0] == "HANDLE_INVALID"


def test_a_task_record_holds_the_description_it_was_created_with(session):
    task = session.xenapi.task.create("label", "what it does")
    assert session.xenapi.task.get_record(task)["name_description"] == "what it does"
    session.xenapi.task.destroy(task)


def test_batching_delays_are_xapis():
    from itertools import islice

    from xscontainer.sim.events import batching_delays, parse_subscriptions
    assert list(islice(batching_delays(parse_subscriptions(["vm", "pool"])), 6)) == \
        [0.05, 0.00625, 0.0125, 0.025, 0.05, 0.05]
    assert list(islice(batching_delays(parse_subscriptions(["task"])), 3)) == [0.0, 0.00625, 0.0125]
    assert next(batching_delays(parse_subscriptions(["task", "vm"]))) == 0.05


def test_a_call_looks_at_the_database_only_after_the_batching_delay(session):
    # xapi batches: a burst of changes (a remove and an add of one key) comes back as one event
    # instead of each change answering a call of its own. A lower bound: noise only adds to it.
    token = session.xenapi.event_from(["vm"], "", 0.0)["token"]
    session.xenapi.VM.create({"name_label": "pending"})
    began = time.monotonic()
    result = session.xenapi.event_from(["vm"], token, 5.0)
    assert time.monotonic() - began >= 0.05
    assert [e["operation"] for e in result["events"]] == ["add"]
