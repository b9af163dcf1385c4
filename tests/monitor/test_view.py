"""The monitor's view of xapi: which VMs this host watches, kept from event.from batches (pure)."""

from xscontainer.monitor.view import Target, XapiView

HOST, OTHER_HOST = "OpaqueRef:host-1", "OpaqueRef:host-2"


class Record(dict):
    """An event snapshot that counts how often it is read."""

    reads = 0

    def get(self, *args):
        Record.reads += 1
        return super().get(*args)


def vm_event(index, registered=True, host=HOST, operation="mod"):
    snapshot = Record({"uuid": "vm-%04d" % index, "power_state": "Running", "resident_on": host,
                       "is_control_domain": False, "is_a_template": False, "is_a_snapshot": False,
                       "guest_metrics": "OpaqueRef:gm-%d" % index,
                       "other_config": {"xscontainer-monitor": "True"} if registered else {}})
    return {"class": "vm", "ref": "OpaqueRef:vm-%d" % index, "operation": operation, "snapshot": snapshot}


def metrics_event(index, address):
    return {"class": "vm_guest_metrics", "ref": "OpaqueRef:gm-%d" % index, "operation": "mod",
            "snapshot": Record({"networks": {"0/ip": address, "0/ipv6/0": "fe80::1"}})}


def test_the_targets_follow_the_events():
    view = XapiView()
    view.apply([vm_event(1), metrics_event(1, "10.0.0.1"), vm_event(2, host=OTHER_HOST),
                metrics_event(2, "10.0.0.2"), vm_event(3, registered=False), metrics_event(3, "10.0.0.3")])
    assert view.targets(HOST) == {"vm-0001": Target("OpaqueRef:vm-1", "vm-0001", ("10.0.0.1",), "core", "ssh")}
    view.apply([metrics_event(1, "10.0.0.9"), vm_event(3)])
    assert view.targets(HOST) == {
        "vm-0001": Target("OpaqueRef:vm-1", "vm-0001", ("10.0.0.9",), "core", "ssh"),
        "vm-0003": Target("OpaqueRef:vm-3", "vm-0003", ("10.0.0.3",), "core", "ssh")}
    view.apply([vm_event(1, registered=False), {"class": "vm", "ref": "OpaqueRef:vm-3", "operation": "del"}])
    assert view.targets(HOST) == {}


def test_a_batch_costs_what_changed_not_every_vm():
    # At a thousand VMs every batch (each write of the monitor's comes back as one) re-decided
    # every VM: 55 % of the monitor's interpreter time in the 300-VM start-up (issue 18).
    view = XapiView()
    view.apply([event for index in range(1000) for event in (vm_event(index), metrics_event(index, "10.0.%d.%d"
                                                                                           % (index // 250, index % 250 + 1)))])
    assert len(view.targets(HOST)) == 1000
    Record.reads = 0
    view.apply([vm_event(7, registered=False)])
    targets = view.targets(HOST)
    assert len(targets) == 999 and "vm-0007" not in targets
    assert Record.reads < 50, "%d reads of the records to handle one changed VM" % Record.reads


def test_our_keys_on_a_vm_resident_here_and_not_watched_are_named_for_removal():
    keys = ("docker_ps", "docker_info", "docker_version")
    events = [vm_event(1), metrics_event(1, "10.0.0.1"), vm_event(2, registered=False),
              vm_event(3, registered=False, host=OTHER_HOST), vm_event(4, registered=False)]
    for event in events[:1] + events[2:]:
        if event["class"] == "vm":
            event["snapshot"]["other_config"].update({"docker_ps": "<docker_ps />", "docker_info": "<docker_info />",
                                                     "owner": "someone else"})
    events[4]["snapshot"]["other_config"].clear()  # nothing of ours to remove
    view = XapiView()
    view.apply(events)
    view.targets(HOST)
    refs = list(view.vms)
    # vm 1 is watched (its watcher keeps the keys), vm 3 lives on another host (its monitor's)
    assert view.unwatched_with_keys(HOST, refs, keys) == {"OpaqueRef:vm-2": ["docker_ps", "docker_info"]}
    assert view.unwatched_with_keys(HOST, ["OpaqueRef:vm-1"], keys) == {}
    assert view.unwatched_with_keys(OTHER_HOST, refs, keys) == {}  # not what the last targets() decided
