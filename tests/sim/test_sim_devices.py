"""VM lifecycle, VBD and VIF rules, secrets and the seed, with xapi's error parameters."""

import pytest
import XenAPI


def vbd_args(vm, vdi, userdevice, **extra):
    args = {"VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": False, "mode": "rw",
            "type": "Disk", "empty": False, "other_config": {}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}}
    args.update(extra)
    return args


@pytest.fixture
def vm_vdi(session):
    vm = session.xenapi.VM.create({"name_label": "dev"})
    sr = session.xenapi.pool.get_default_SR(session.xenapi.pool.get_all()[0])
    vdi = session.xenapi.VDI.create({"SR": sr, "virtual_size": "1048576", "type": "system",
                                     "sharable": False, "read_only": False,
                                     "other_config": {}})
    yield vm, vdi
    for vbd in session.xenapi.VM.get_VBDs(vm):
        session.xenapi.VBD.destroy(vbd)
    session.xenapi.VDI.destroy(vdi)
    session.xenapi.VM.destroy(vm)


def test_seed(sim, session):
    pool = session.xenapi.pool.get_all()[0]
    assert session.xenapi.pool.get_name_label(pool) == "xscontainer-sim"
    assert session.xenapi.pool.get_uuid(pool) == sim.info["pool_uuid"]
    records = session.xenapi.VM.get_all_records()
    dom0 = [r for r in records.values() if r["is_control_domain"]]
    assert len(dom0) == 1 and dom0[0]["resident_on"] != "OpaqueRef:NULL"
    templates = [r for r in records.values() if r["is_a_template"]]
    assert templates[0]["name_label"] == "CoreOS"
    assert templates[0]["other_config"]["default_template"] == "true"
    sr = session.xenapi.pool.get_default_SR(pool)
    pbds = [session.xenapi.PBD.get_record(p) for p in session.xenapi.SR.get_PBDs(sr)]
    assert all(p["currently_attached"] for p in pbds)
    with open(sim.info["hosts"][0]["inventory"]) as handle:
        assert "INSTALLATION_UUID='%s'" % sim.info["hosts"][0]["uuid"] in handle.read()


def test_vbd_create_plug_unplug(session, vm_vdi):
    vm, vdi = vm_vdi
    vbd = session.xenapi.VBD.create(vbd_args(vm, vdi, "1"))
    record = session.xenapi.VBD.get_record(vbd)
    assert record["mode"] == "RW" and record["device"] == "" and not record["currently_attached"]
    assert session.xenapi.VM.get_VBDs(vm) == [vbd]
    assert session.xenapi.VDI.get_VBDs(vdi) == [vbd]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.create(vbd_args(vm, vdi, "1"))
    assert err.value.details == ["DEVICE_ALREADY_EXISTS", "1"]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.create(vbd_args(vm, vdi, "xvdb"))
    assert err.value.details == ["DEVICE_ALREADY_EXISTS", "xvdb"]
    auto = session.xenapi.VBD.create(vbd_args(vm, vdi, "autodetect"))
    assert session.xenapi.VBD.get_userdevice(auto) == "0"
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.plug(vbd)
    assert err.value.details == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    session.xenapi.VM.start(vm, False, False)
    assert session.xenapi.VBD.get_currently_attached(vbd)
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.plug(vbd)
    assert err.value.details == ["DEVICE_ALREADY_ATTACHED", vbd]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.destroy(vbd)
    assert err.value.details[0] == "OPERATION_NOT_ALLOWED"
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VDI.destroy(vdi)
    assert err.value.details == ["VDI_IN_USE", vdi, "destroy"]
    session.xenapi.VBD.unplug(vbd)
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.unplug(vbd)
    assert err.value.details == ["DEVICE_ALREADY_DETACHED", vbd]
    session.xenapi.VBD.plug(vbd)
    assert session.xenapi.VBD.get_device(vbd) == "xvdb"
    session.xenapi.VM.hard_shutdown(vm)
    assert not session.xenapi.VBD.get_currently_attached(vbd)


def test_cd_rules(session, vm_vdi):
    vm, vdi = vm_vdi
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.create(vbd_args(vm, vdi, "3", type="CD", mode="RW"))
    assert err.value.details == ["VBD_CDS_MUST_BE_READONLY"]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.create(vbd_args(vm, vdi, "3", empty=True))
    assert err.value.details == ["VBD_NOT_REMOVABLE_MEDIA", "in constructor"]
    cd = session.xenapi.VBD.create(vbd_args(vm, "OpaqueRef:NULL", "3", type="CD", mode="RO",
                                            empty=True))
    session.xenapi.VBD.insert(cd, vdi)
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VBD.insert(cd, vdi)
    assert err.value.details == ["VBD_NOT_EMPTY", cd]
    session.xenapi.VBD.eject(cd)


def test_vm_lifecycle(sim, session):
    vm = session.xenapi.VM.create({"name_label": "life"})
    hosts = session.xenapi.host.get_all()
    assert session.xenapi.VM.get_resident_on(vm) == "OpaqueRef:NULL"
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.clean_shutdown(vm)
    assert err.value.details == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    session.xenapi.VM.start(vm, False, False)
    assert session.xenapi.VM.get_power_state(vm) == "Running"
    assert session.xenapi.VM.get_resident_on(vm) == hosts[0]
    assert vm in session.xenapi.host.get_resident_VMs(hosts[0])
    session.xenapi.sim.set_guest_networks(vm, {"0/ip": "169.254.0.2"})
    gm = session.xenapi.VM.get_guest_metrics(vm)
    session.xenapi.VM.pause(vm)
    session.xenapi.VM.unpause(vm)
    session.xenapi.VM.pool_migrate(vm, hosts[0], {})
    task = session.xenapi.Async.VM.clean_shutdown(vm)
    for _ in range(200):
        if session.xenapi.task.get_status(task) != "pending":
            break
        threading_wait(0.05)
    assert session.xenapi.task.get_status(task) == "success"
    assert session.xenapi.VM.get_power_state(vm) == "Halted"
    assert session.xenapi.VM.get_guest_metrics(vm) == "OpaqueRef:NULL"
    assert gm not in session.xenapi.VM_guest_metrics.get_all()
    session.xenapi.VM.start_on(vm, hosts[0], True, False)
    assert session.xenapi.VM.get_power_state(vm) == "Paused"
    session.xenapi.VM.hard_shutdown(vm)
    template = [r for r, v in session.xenapi.VM.get_all_records().items() if v["is_a_template"]]
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VM.start(template[0], False, False)
    assert err.value.details[0] == "VM_IS_TEMPLATE"
    session.xenapi.VM.destroy(vm)


def threading_wait(seconds):
    import threading
    threading.Event().wait(seconds)


def test_vif_rules(session):
    vm = session.xenapi.VM.create({"name_label": "vif"})
    net = [r for r, n in session.xenapi.network.get_all_records().items()
           if n["bridge"] == "xenapi"][0]
    args = {"device": "0", "network": net, "VM": vm, "MAC": "", "MTU": "1500",
            "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}}
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VIF.create(args)
    assert err.value.details == ["MAC_INVALID", ""]
    session.xenapi.VM.add_to_other_config(vm, "mac_seed", "seed")
    vif = session.xenapi.VIF.create(args)
    assert session.xenapi.VIF.get_MAC_autogenerated(vif)
    assert session.xenapi.VM.get_VIFs(vm) == [vif]
    assert vif in session.xenapi.network.get_VIFs(net)
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.VIF.create(args)
    assert err.value.details == ["DEVICE_ALREADY_EXISTS", "0"]
    session.xenapi.VM.destroy(vm)
    assert vif not in session.xenapi.VIF.get_all()


def test_secrets(session):
    ref = session.xenapi.secret.create({"value": "v1", "other_config": {}})
    uuid = session.xenapi.secret.get_uuid(ref)
    assert session.xenapi.secret.get_by_uuid(uuid) == ref
    session.xenapi.secret.set_value(ref, "v2")
    assert session.xenapi.secret.get_record(ref)["value"] == "v2"
    session.xenapi.secret.destroy(ref)
    with pytest.raises(XenAPI.Failure) as err:
        session.xenapi.secret.get_by_uuid(uuid)
    assert err.value.details == ["UUID_INVALID", "secret", uuid]
    intro = session.xenapi.secret.introduce("11111111-2222-3333-4444-555555555555", "x", {})
    assert session.xenapi.secret.get_uuid(intro) == "11111111-2222-3333-4444-555555555555"
    session.xenapi.secret.destroy(intro)
