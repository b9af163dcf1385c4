"""Map and set fields: add_to/remove_from semantics, MAP_DUPLICATE_KEY, whole-map setters."""

import pytest
import XenAPI


@pytest.fixture(scope="module")
def vm(session):
    return session.xenapi.VM.create({"name_label": "maps"})


def test_add_and_remove_keys(session, vm):
    session.xenapi.VM.add_to_other_config(vm, "k", "v")
    assert session.xenapi.VM.get_other_config(vm)["k"] == "v"
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.add_to_other_config(vm, "k", "other")
    assert err.value.details == ["MAP_DUPLICATE_KEY", "VM", "other_config", vm, "k"]
    session.xenapi.VM.remove_from_other_config(vm, "k")
    assert "k" not in session.xenapi.VM.get_other_config(vm)
    session.xenapi.VM.remove_from_other_config(vm, "k")  # missing key: no-op


def test_set_whole_map_and_sets(session, vm):
    session.xenapi.VM.set_other_config(vm, {"a": "1", "b": "2"})
    assert session.xenapi.VM.get_other_config(vm) == {"a": "1", "b": "2"}
    session.xenapi.VM.add_tags(vm, "t1")
    session.xenapi.VM.add_tags(vm, "t1")
    assert session.xenapi.VM.get_tags(vm) == ["t1"]
    session.xenapi.VM.remove_tags(vm, "t1")
    assert session.xenapi.VM.get_tags(vm) == []


def test_ro_fields_have_no_setter(session, vm):
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.set_power_state(vm, "Running")
    assert err.value.details[0] == "MESSAGE_METHOD_UNKNOWN"
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.add_to_VCPUs_params("OpaqueRef:bad", "k", "v")
    assert err.value.details == ["HANDLE_INVALID", "VM", "OpaqueRef:bad"]


def test_pool_and_network_maps(session):
    pool = session.xenapi.pool.get_all()[0]
    session.xenapi.pool.add_to_other_config(pool, "xscontainer-test", "x")
    assert session.xenapi.pool.get_other_config(pool)["xscontainer-test"] == "x"
    nets = session.xenapi.network.get_all_records()
    hi = [r for r, n in nets.items() if n["bridge"] == "xenapi"]
    assert len(hi) == 1
    cfg = nets[hi[0]]["other_config"]
    assert cfg["is_host_internal_management_network"] == "true"
    assert cfg["ip_begin"] == "169.254.0.1"
