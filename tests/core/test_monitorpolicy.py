"""should_monitor: xapi VM and guest-metrics records (as event.from snapshots give them) -> decision."""

import pytest

from xscontainer.monitorpolicy import monitor_enabled, should_monitor, why_not_monitored

HOST = "OpaqueRef:host-a"
OTHER_HOST = "OpaqueRef:host-b"


def vm(**changes):
    record = {
        "uuid": "6f1a1a5e-0000-4000-8000-000000000001",
        "name_label": "coreos",
        "power_state": "Running",
        "resident_on": HOST,
        "is_a_template": False,
        "is_a_snapshot": False,
        "is_control_domain": False,
        "guest_metrics": "OpaqueRef:gm-1",
        "other_config": {"xscontainer-monitor": "True", "docker_ps": "<stale/>"},
    }
    record.update(changes)
    return record


METRICS = {"uuid": "gm-1", "networks": {"0/ip": "10.0.0.5", "0/ipv4/0": "10.0.0.5",
                                         "0/ipv6/0": "fe80::1"}}


def test_a_registered_running_resident_vm_with_an_address_is_monitored():
    assert should_monitor(vm(), HOST, METRICS)
    assert why_not_monitored(vm(), HOST, METRICS) is None


@pytest.mark.parametrize("changes, metrics, reason", [
    ({"other_config": {}}, METRICS, "not registered"),
    ({"other_config": {"xscontainer-monitor": "False"}}, METRICS, "not registered"),
    ({"other_config": {"xscontainer-monitor": ""}}, METRICS, "not registered"),
    ({"power_state": "Halted"}, METRICS, "not running"),
    ({"power_state": "Paused"}, METRICS, "not running"),
    ({"power_state": "Suspended"}, METRICS, "not running"),
    ({"resident_on": OTHER_HOST}, METRICS, "not resident"),
    ({"resident_on": "OpaqueRef:NULL"}, METRICS, "not resident"),
    ({"is_a_template": True}, METRICS, "template"),
    ({"is_a_snapshot": True}, METRICS, "template or snapshot"),
    ({"is_control_domain": True}, METRICS, "control domain"),
    ({}, None, "no guest metrics"),
    ({}, {"networks": {}}, "no IPv4 address"),
    ({}, {"networks": {"0/ipv6/0": "fe80::1", "1/ip": ""}}, "no IPv4 address"),
    ({}, {}, "no IPv4 address"),
])
def test_every_condition_is_required(changes, metrics, reason):
    assert not should_monitor(vm(**changes), HOST, metrics)
    assert reason in why_not_monitored(vm(**changes), HOST, metrics)


def test_monitor_switch_is_case_insensitive_like_xencenter():
    for value in ("True", "true", "TRUE", " True "):
        assert monitor_enabled({"xscontainer-monitor": value})
    for value in ("False", "1", "yes", ""):
        assert not monitor_enabled({"xscontainer-monitor": value})
    assert not monitor_enabled(None)


def test_a_host_internal_address_alone_is_enough():
    assert should_monitor(vm(), HOST, {"networks": {"1/ip": "169.254.0.2"}})


def test_string_booleans_from_other_clients_are_understood():
    assert not should_monitor(vm(is_a_template="true"), HOST, METRICS)
    assert should_monitor(vm(is_a_template="false"), HOST, METRICS)


def test_sparse_records_do_not_crash():
    assert not should_monitor({}, HOST, None)
    assert should_monitor({"power_state": "Running", "resident_on": HOST,
                           "other_config": {"xscontainer-monitor": "True"}}, HOST, METRICS)
