"""Pool faults xapi reports and the simulator must report the same way: an offline or
unreachable host, a host without the plugin, a user whose role is read-only."""

import pytest
import XenAPI

from simharness import Sim


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    simulator = Sim(str(tmp_path_factory.mktemp("sim")), extra=("--hosts", "2"))
    yield simulator
    assert simulator.stop() == 0


@pytest.fixture(scope="module")
def session(sim):
    s = sim.session()
    yield s
    s.xenapi.session.logout()


@pytest.fixture(scope="module")
def hosts(sim, session):
    """(coordinator, member) refs."""
    refs = [session.xenapi.host.get_by_uuid(h["uuid"]) for h in sim.info["hosts"]]
    return refs[0], refs[1]


def echo(session, host):
    return session.xenapi.host.call_plugin(host, "echo", "main", {"a": "b"})


def failure(call):
    with pytest.raises(XenAPI.Failure) as err:
        call()
    return err.value.details


def test_offline_member_is_host_offline(session, hosts):
    coordinator, member = hosts
    session.xenapi.sim.set_host_state(member, "offline")
    try:
        assert failure(lambda: echo(session, member)) == ["HOST_OFFLINE", member]
    finally:
        session.xenapi.sim.set_host_state(member, "live")
    assert echo(session, member) == repr({"a": "b"})


def test_unreachable_member_is_cannot_contact_host(session, hosts):
    coordinator, member = hosts
    session.xenapi.sim.set_host_state(member, "unreachable")
    try:
        assert failure(lambda: echo(session, member)) == ["CANNOT_CONTACT_HOST", member]
    finally:
        session.xenapi.sim.set_host_state(member, "live")


def test_the_coordinator_is_always_live_to_itself(session, hosts):
    # message_forwarding.check_live: "assume that localhost is always live".
    coordinator, member = hosts
    session.xenapi.sim.set_host_state(coordinator, "offline")
    try:
        assert echo(session, coordinator) == repr({"a": "b"})
    finally:
        session.xenapi.sim.set_host_state(coordinator, "live")


def test_host_state_is_checked(session, hosts):
    assert failure(lambda: session.xenapi.sim.set_host_state(hosts[1], "asleep")) == \
        ["INVALID_VALUE", "state", "asleep"]
    assert failure(lambda: session.xenapi.sim.set_host_state("OpaqueRef:x", "live")) == \
        ["HANDLE_INVALID", "host", "OpaqueRef:x"]


def test_plugin_missing_on_one_host(session, hosts):
    coordinator, member = hosts
    session.xenapi.sim.remove_plugin(member, "echo")
    try:
        assert failure(lambda: echo(session, member)) == ["XENAPI_MISSING_PLUGIN", "echo"]
        assert echo(session, coordinator) == repr({"a": "b"})
    finally:
        session.xenapi.sim.restore_plugin(member, "echo")
    assert echo(session, member) == repr({"a": "b"})


def test_offline_is_reported_before_the_plugin_is_looked_up(session, hosts):
    member = hosts[1]
    session.xenapi.sim.remove_plugin(member, "echo")
    session.xenapi.sim.set_host_state(member, "offline")
    try:
        assert failure(lambda: echo(session, member)) == ["HOST_OFFLINE", member]
    finally:
        session.xenapi.sim.set_host_state(member, "live")
        session.xenapi.sim.restore_plugin(member, "echo")


DENIED = "No permission in user session. (Roles with this permission: %s)"


@pytest.fixture(scope="module")
def reader(sim, session):
    session.xenapi.sim.add_user("auditor", "s3cret", "read-only")
    s = XenAPI.Session(sim.url)
    s.xenapi.login_with_password("auditor", "s3cret", "1.0", "tests")
    yield s
    s.xenapi.session.logout()


def test_read_only_user_can_read(reader, session):
    vm = session.xenapi.VM.get_all()[0]
    assert reader.xenapi.VM.get_record(vm)["uuid"] == session.xenapi.VM.get_uuid(vm)
    assert reader.xenapi.VM_get_other_config(vm) == session.xenapi.VM.get_other_config(vm)


def test_read_only_user_cannot_call_plugins(reader, hosts):
    assert failure(lambda: echo(reader, hosts[0])) == \
        ["RBAC_PERMISSION_DENIED", "host.call_plugin", DENIED % "pool-admin"]


def test_read_only_user_cannot_write(reader, session):
    vm = session.xenapi.VM.get_all()[0]
    vm_admin = DENIED % "pool-admin, pool-operator, vm-power-admin, vm-admin"
    assert failure(lambda: reader.xenapi.VM.add_to_other_config(vm, "k", "v")) == \
        ["RBAC_PERMISSION_DENIED", "vm.add_to_other_config", vm_admin]
    assert failure(lambda: reader.xenapi.VM_remove_from_other_config(vm, "k")) == \
        ["RBAC_PERMISSION_DENIED", "vm.remove_from_other_config", vm_admin]
    assert failure(lambda: reader.xenapi.sim.set_host_state(
        session.xenapi.host.get_all()[0], "offline"))[0] == "RBAC_PERMISSION_DENIED"
    assert "k" not in session.xenapi.VM.get_other_config(vm)


def test_read_only_user_needs_its_password(sim, reader):
    s = XenAPI.Session(sim.url)
    assert failure(lambda: s.xenapi.login_with_password("auditor", "wrong", "1.0", "t"))[0] \
        == "SESSION_AUTHENTICATION_FAILED"
