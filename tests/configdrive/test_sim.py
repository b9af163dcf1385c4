"""Config drives made against the simulated pool, downloaded again and checked with outside tools."""

import json
import os
import shutil
import subprocess

import pytest
import XenAPI
import yaml

from xscontainer.configdrive import (create_config_drive, get_config_drive_configuration,
                                     get_config_drive_default)
from xscontainer.configdrive import guestformats, iso, render, transfer
from xscontainer.errors import ConfigDriveError
from xscontainer.poolkeys import ensure_pool_keypair

MONITOR = "xscontainer-monitor"


@pytest.fixture(scope="module")
def pool_key(session):
    return ensure_pool_keypair(session)


@pytest.fixture(scope="module")
def sr_uuid(session):
    pool = session.xenapi.pool.get_all()[0]
    return session.xenapi.SR.get_uuid(session.xenapi.pool.get_default_SR(pool))


@pytest.fixture(scope="module")
def default_config(session):
    return get_config_drive_default(session, "any-template", override_path=None)


@pytest.fixture()
def no_tools(tmp_path):
    return str(tmp_path)


def new_vm(session, name, state="Halted"):
    vm = session.xenapi.VM.create({"name_label": name})
    if state in ("Running", "Paused"):
        session.xenapi.VM.start(vm, False, False)
    if state == "Paused":
        session.xenapi.VM.pause(vm)
    return vm, session.xenapi.VM.get_uuid(vm)


def counts(session):
    return len(session.xenapi.VDI.get_all()), len(session.xenapi.VBD.get_all())


def drives_of(session, vm):
    result = []
    for vbd in session.xenapi.VM.get_VBDs(vm):
        record = session.xenapi.VBD.get_record(vbd)
        if record["other_config"].get("config-drive", "").lower() == "true":
            result.append((vbd, record))
    return result


def make(sim, session, vm_uuid, sr_uuid, configuration, tools_dir):
    return create_config_drive(session, vm_uuid, sr_uuid, configuration,
                               socket_path=sim.socket_path, tools_iso_dir=tools_dir)


def download(sim, session, vdi_uuid, tmp_path):
    data = transfer.export_raw(session, vdi_uuid, 64 << 20, socket_path=sim.socket_path)
    path = tmp_path / ("%s.iso" % vdi_uuid)
    path.write_bytes(data)
    return str(path), data


def _run(args):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_drive_for_a_halted_vm(sim, session, sr_uuid, pool_key, default_config, no_tools, tmp_path):
    vm, vm_uuid = new_vm(session, "Web Server 1")
    vdi_uuid = make(sim, session, vm_uuid, sr_uuid, default_config, no_tools)

    vdi = session.xenapi.VDI.get_record(session.xenapi.VDI.get_by_uuid(vdi_uuid))
    assert vdi["other_config"]["config-drive"] == "True"
    assert vdi["name_label"] == "Automatic Config Drive"
    assert int(vdi["virtual_size"]) % (2 << 20) == 0
    assert vdi["SR"] == session.xenapi.SR.get_by_uuid(sr_uuid)
    [(vbd, record)] = drives_of(session, vm)
    assert record["VDI"] == session.xenapi.VDI.get_by_uuid(vdi_uuid)
    assert record["mode"] == "RO" and record["type"] == "Disk" and not record["bootable"]
    assert record["userdevice"] == "1"
    assert not record["currently_attached"]
    assert session.xenapi.VM.get_other_config(vm)[MONITOR] == "True"

    path, data = download(sim, session, vdi_uuid, tmp_path)
    if shutil.which("blkid"):
        code, out, err = _run(["blkid", "-p", "-o", "export", path])
        assert code == 0, err
        assert "LABEL=config-2" in out.splitlines() and "TYPE=iso9660" in out.splitlines()
    if shutil.which("xorriso"):
        code, out, err = _run(["xorriso", "-indev", path, "-find", "/", "-type", "f"])
        assert code == 0, err
        assert sorted(l.strip("'") for l in out.split()) == [
            "/openstack/latest/meta_data.json", "/openstack/latest/user_data",
            "/openstack/latest/user_data.template"]
    user_data = iso.read_drive_file(data, render.USER_DATA).decode()
    parsed = yaml.safe_load(user_data)
    assert parsed["hostname"] == "webserver1"
    assert pool_key.public_line.split()[1] in parsed["users"][0]["ssh_authorized_keys"][0]
    meta = json.loads(iso.read_drive_file(data, render.META_DATA).decode())
    assert meta["uuid"] == vm_uuid and meta["hostname"] == "webserver1"
    if shutil.which("cloud-init"):
        target = tmp_path / "user_data"
        target.write_text(user_data)
        code, out, err = _run(["cloud-init", "schema", "--config-file", str(target)])
        assert code == 0, out + err

    assert get_config_drive_configuration(session, vdi_uuid, socket_path=sim.socket_path) == default_config


def test_second_drive_replaces_the_first_on_a_running_vm(sim, session, sr_uuid, no_tools):
    vm, vm_uuid = new_vm(session, "runner", "Running")
    first = make(sim, session, vm_uuid, sr_uuid, "#cloud-config\nhostname: one\n", no_tools)
    [(_, record)] = drives_of(session, vm)
    assert record["currently_attached"]
    vdis, vbds = counts(session)

    second_config = "#cloud-config\nhostname: two\nssh_authorized_keys:\n  - ssh-rsa %CONTAINERRSAPUB%\n"
    second = make(sim, session, vm_uuid, sr_uuid, second_config, no_tools)
    assert second != first
    [(_, record)] = drives_of(session, vm)
    assert record["currently_attached"]
    assert record["VDI"] == session.xenapi.VDI.get_by_uuid(second)
    assert counts(session) == (vdis, vbds)
    with pytest.raises(XenAPI.Failure):
        session.xenapi.VDI.get_by_uuid(first)
    assert get_config_drive_configuration(session, second, socket_path=sim.socket_path) == second_config
    # The first configuration did not authorize the key, the second did.
    assert session.xenapi.VM.get_other_config(vm)[MONITOR] == "True"


def test_existing_monitor_setting_is_kept_and_unauthorized_config_does_not_mark(sim, session, sr_uuid,
                                                                                no_tools):
    vm, vm_uuid = new_vm(session, "monitored")
    session.xenapi.VM.add_to_other_config(vm, MONITOR, "False")  # an administrator switched it off
    make(sim, session, vm_uuid, sr_uuid, "#cloud-config\nssh_authorized_keys: ['ssh-rsa %CONTAINERRSAPUB%']\n",
         no_tools)
    assert session.xenapi.VM.get_other_config(vm)[MONITOR] == "False"
    vm2, vm2_uuid = new_vm(session, "unmarked")
    make(sim, session, vm2_uuid, sr_uuid, "#cloud-config\n# - ssh-rsa %CONTAINERRSAPUB%\nhostname: x\n",
         no_tools)
    assert MONITOR not in session.xenapi.VM.get_other_config(vm2)


def test_taken_userdevice_is_skipped(sim, session, sr_uuid, no_tools):
    vm, vm_uuid = new_vm(session, "busy")
    for device in ("1", "2"):
        session.xenapi.VBD.create({"VM": vm, "VDI": "OpaqueRef:NULL", "userdevice": device,
                                   "bootable": False, "mode": "RO", "type": "CD", "empty": True,
                                   "other_config": {}, "qos_algorithm_type": "",
                                   "qos_algorithm_params": {}})
    make(sim, session, vm_uuid, sr_uuid, "#cloud-config\n", no_tools)
    [(_, record)] = drives_of(session, vm)
    assert record["userdevice"] == "3"


def test_br_ignition_and_agent_files(sim, session, sr_uuid, pool_key, tmp_path):
    if shutil.which("xorriso") is None:
        pytest.skip("xorriso is not installed")
    linux = tmp_path / "tools" / "Linux"
    linux.mkdir(parents=True)
    (linux / "xe-daemon").write_bytes(b"#!/bin/sh\n")
    (linux / "install.sh").write_bytes(b"#!/bin/sh\n")
    tools_dir = tmp_path / "iso"
    tools_dir.mkdir()
    code, _, err = _run(["xorriso", "-as", "mkisofs", "-R", "-J", "-o",
                         str(tools_dir / "guest-tools.iso"), str(tmp_path / "tools")])
    assert code == 0, err

    vm, vm_uuid = new_vm(session, "fcos")
    ignition = '{"ignition": {"version": "3.3.0"},%BR% "storage": {"files": []}}'
    vdi_uuid = make(sim, session, vm_uuid, sr_uuid, ignition, str(tools_dir))
    _, data = download(sim, session, vdi_uuid, tmp_path)
    user_data = json.loads(iso.read_drive_file(data, render.USER_DATA).decode())
    assert user_data["passwd"]["users"][0]["name"] == "core"
    assert pool_key.public_line.split()[1] in user_data["passwd"]["users"][0]["sshAuthorizedKeys"][0]
    assert iso.read_drive_file(data, "agent/xe-daemon") == b"#!/bin/sh\n"
    assert iso.read_drive_file(data, "agent/install.sh") == b"#!/bin/sh\n"
    assert get_config_drive_configuration(session, vdi_uuid, socket_path=sim.socket_path) == \
        ignition.replace("%BR%", "\r\n")
    assert session.xenapi.VM.get_other_config(vm)[MONITOR] == "True"


def test_host_internal_network_device_is_used(sim, session, sr_uuid, no_tools, tmp_path):
    hin = [ref for ref, rec in session.xenapi.network.get_all_records().items()
           if rec["bridge"] == "xenapi"][0]
    vm, vm_uuid = new_vm(session, "hin")
    session.xenapi.VIF.create({"device": "1", "network": hin, "VM": vm, "MAC": "02:00:00:00:00:11",
                               "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                               "qos_algorithm_params": {}})
    config = "#cloud-config\n%HINEXISTS%\nbootcmd:\n  - [echo, eth%HIN%]\n%ENDHINEXISTS%\n"
    vdi_uuid = make(sim, session, vm_uuid, sr_uuid, config, no_tools)
    _, data = download(sim, session, vdi_uuid, tmp_path)
    assert yaml.safe_load(iso.read_drive_file(data, render.USER_DATA))["bootcmd"] == [["echo", "eth1"]]


def test_default_follows_the_pool_preference_and_the_override(session, tmp_path):
    pool = session.xenapi.pool.get_all()[0]
    off = get_config_drive_default(session, "t", override_path=None)
    assert "HINEXISTS" not in off and "%HIN%" not in off
    assert off.startswith("#cloud-config") and "# Template loaded from " in off
    session.xenapi.pool.add_to_other_config(pool, "xscontainer-use-hostinternalnetwork", "Yes")
    try:
        on = get_config_drive_default(session, "t", override_path=None)
        assert "%HINEXISTS%" in on and "eth%HIN%" in on
    finally:
        session.xenapi.pool.remove_from_other_config(pool, "xscontainer-use-hostinternalnetwork")
    override = tmp_path / "cloud-config.template"
    override.write_text("#cloud-config\nhostname: mine\n%HINEXISTS%x%ENDHINEXISTS%")
    text = get_config_drive_default(session, "t", override_path=str(override))
    assert text == "#cloud-config\nhostname: mine\n\n# Template loaded from %s" % override
    missing = get_config_drive_default(session, "t", override_path=str(tmp_path / "absent"))
    assert missing == off


def _expect_failure(session, code, call):
    before = counts(session)
    with pytest.raises(ConfigDriveError) as info:
        call()
    assert info.value.code == code, info.value.message
    assert info.value.message
    assert counts(session) == before
    return info.value


@pytest.mark.parametrize("configuration", [
    "#cloud-config\nusers: [\n", '{"ignition": ', "hostname: no header\n", "",
    "#cloud-config\nx: %HINEXISTS%\n",
    pytest.param("#cloud-config\nruncmd: " + "[" * 100000 + "]" * 100000 + "\n", id="deep-yaml"),
    pytest.param('{"ignition": {"version": "3.3.0"}, "x": ' + "[" * 100000 + "]" * 100000 + "}", id="deep-ignition"),
    pytest.param("#cloud-config\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" +
                 "".join("%s: &%s [%s]\n" % (name, name, ", ".join(["*" + prior] * 9))
                         for prior, name in zip("abcdefgh", "bcdefghi")), id="billion-laughs"),
])
def test_malformed_configuration(sim, session, sr_uuid, no_tools, configuration):
    vm, vm_uuid = new_vm(session, "bad-config")
    _expect_failure(session, "INVALID_CONFIGURATION",
                    lambda: make(sim, session, vm_uuid, sr_uuid, configuration, no_tools))
    assert session.xenapi.VM.get_VBDs(vm) == []
    assert MONITOR not in session.xenapi.VM.get_other_config(vm)


def test_unknown_vm_and_sr(sim, session, sr_uuid, no_tools):
    _, vm_uuid = new_vm(session, "known")
    _expect_failure(session, "VM_NOT_FOUND", lambda: make(
        sim, session, "00000000-0000-0000-0000-000000000000", sr_uuid, "#cloud-config\n", no_tools))
    _expect_failure(session, "SR_NOT_FOUND", lambda: make(
        sim, session, vm_uuid, "00000000-0000-0000-0000-000000000000", "#cloud-config\n", no_tools))


def test_paused_vm_is_a_bad_power_state(sim, session, sr_uuid, no_tools):
    _, vm_uuid = new_vm(session, "paused", "Paused")
    error = _expect_failure(session, "VM_BAD_POWER_STATE",
                            lambda: make(sim, session, vm_uuid, sr_uuid, "#cloud-config\n", no_tools))
    assert "Paused" in error.message


def test_failed_upload_leaves_nothing_and_keeps_the_old_drive(sim, session, sr_uuid, no_tools, tmp_path):
    vm, vm_uuid = new_vm(session, "upload")
    old = make(sim, session, vm_uuid, sr_uuid, "#cloud-config\n", no_tools)
    _expect_failure(session, "UPLOAD_FAILED", lambda: create_config_drive(
        session, vm_uuid, sr_uuid, "#cloud-config\nhostname: new\n",
        socket_path=str(tmp_path / "no-such-socket"), tools_iso_dir=no_tools))
    [(_, record)] = drives_of(session, vm)
    assert record["VDI"] == session.xenapi.VDI.get_by_uuid(old)


def test_no_free_device_leaves_nothing(sim, session, sr_uuid, no_tools):
    vm, vm_uuid = new_vm(session, "full")
    for device in range(1, 16):
        session.xenapi.VBD.create({"VM": vm, "VDI": "OpaqueRef:NULL", "userdevice": str(device),
                                   "bootable": False, "mode": "RO", "type": "CD", "empty": True,
                                   "other_config": {}, "qos_algorithm_type": "",
                                   "qos_algorithm_params": {}})
    _expect_failure(session, "NO_FREE_DEVICE",
                    lambda: make(sim, session, vm_uuid, sr_uuid, "#cloud-config\n", no_tools))


def test_configuration_of_unknown_and_foreign_vdis(sim, session, sr_uuid):
    with pytest.raises(ConfigDriveError) as info:
        get_config_drive_configuration(session, "00000000-0000-0000-0000-000000000000",
                                       socket_path=sim.socket_path)
    assert info.value.code == "VDI_NOT_FOUND"
    vdi = session.xenapi.VDI.create({"name_label": "data", "SR": session.xenapi.SR.get_by_uuid(sr_uuid),
                                     "virtual_size": str(2 << 20), "type": "user", "sharable": False,
                                     "read_only": False, "other_config": {}})
    try:
        with pytest.raises(ConfigDriveError) as info:
            get_config_drive_configuration(session, session.xenapi.VDI.get_uuid(vdi),
                                           socket_path=sim.socket_path)
        assert info.value.code == "NOT_A_CONFIG_DRIVE"
    finally:
        session.xenapi.VDI.destroy(vdi)


def test_sr_that_cannot_hold_the_drive(tmp_path_factory, sim_factory, no_tools):
    # xapi's SR sizes are read-only through the API: shrink the SR in the stopped simulator's
    # database, as a full disk would look after a restart.
    directory = str(tmp_path_factory.mktemp("smallsr"))
    sim_factory(directory).stop()
    path = os.path.join(directory, "db.json")
    with open(path) as handle:
        db = json.load(handle)
    for row in db["tables"]["SR"].values():
        row["physical_size"] = 1 << 20
    with open(path, "w") as handle:
        json.dump(db, handle)
    small = sim_factory(directory)
    try:
        session = small.session()
        pool = session.xenapi.pool.get_all()[0]
        sr = session.xenapi.SR.get_uuid(session.xenapi.pool.get_default_SR(pool))
        assert session.xenapi.SR.get_physical_size(session.xenapi.SR.get_by_uuid(sr)) == str(1 << 20)
        _, vm_uuid = new_vm(session, "nospace")
        error = _expect_failure(session, "SR_FULL", lambda: make(small, session, vm_uuid, sr,
                                                                 "#cloud-config\n", no_tools))
        assert sr in error.message
    finally:
        small.stop()


# The SSH host key a drive gives its VM: pinned in dom0, so the VM is connected to with no
# administrator step, and the drive is what vouches for it.
PIN = "xscontainer-sshhostkey"
PIN_VM = "xscontainer-sshhostkey-vm"
PIN_BY_DRIVE = "xscontainer-sshhostkey-drive"
PIN_FINGERPRINT = "xscontainer-sshhostkey-fingerprint"
AUTHORIZING = "#cloud-config\nhostname: keyed\nusers:\n  - name: core\n    ssh_authorized_keys:\n" \
              "      - %CONTAINERPUBKEY%\n"


def drive_host_key(sim, session, vdi_uuid, tmp_path):
    """(private key text, public blob derived from it) that the drive gives the guest."""
    from cryptography.hazmat.primitives import serialization
    _, data = download(sim, session, vdi_uuid, tmp_path)
    private = guestformats.guest_host_key(iso.read_drive_file(data, render.USER_DATA).decode())
    if private is None:
        return None, None
    key = serialization.load_ssh_private_key(private.encode("ascii"), password=None)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode("ascii")
    return private, line.split()[1]


@pytest.mark.parametrize("configuration", [AUTHORIZING, '{"ignition": {"version": "3.3.0"}}'],
                         ids=["cloud-config", "ignition"])
def test_drive_pins_the_host_key_it_gives_the_vm(sim, session, sr_uuid, no_tools, tmp_path, configuration,
                                                 caplog):
    from xscontainer.hostkeys import fingerprint, pin_state
    vm, vm_uuid = new_vm(session, "keyed")
    caplog.set_level("DEBUG")
    vdi_uuid = make(sim, session, vm_uuid, sr_uuid, configuration, no_tools)
    private, public = drive_host_key(sim, session, vdi_uuid, tmp_path)
    config = session.xenapi.VM.get_other_config(vm)
    assert public and config[PIN] == public and config[PIN_VM] == vm_uuid
    assert config[PIN_BY_DRIVE] == fingerprint(public)
    assert pin_state(vm_uuid, config).pinned == public
    assert config[MONITOR] == "True"
    # What the administrator gave comes back, never the rendered text with the private key.
    assert get_config_drive_configuration(session, vdi_uuid, socket_path=sim.socket_path) == configuration
    # The private key is in no log line.
    body = private.splitlines()[1]
    assert all(body not in record.getMessage() for record in caplog.records)


def test_a_new_drive_replaces_the_previous_drives_key_and_pin(sim, session, sr_uuid, no_tools, tmp_path):
    vm, vm_uuid = new_vm(session, "rekeyed")
    first = make(sim, session, vm_uuid, sr_uuid, AUTHORIZING, no_tools)
    _, first_key = drive_host_key(sim, session, first, tmp_path)
    second = make(sim, session, vm_uuid, sr_uuid, AUTHORIZING, no_tools)
    _, second_key = drive_host_key(sim, session, second, tmp_path)
    assert second_key != first_key
    assert session.xenapi.VM.get_other_config(vm)[PIN] == second_key


def test_a_clones_copied_pin_is_replaced_by_the_drives(sim, session, sr_uuid, no_tools, tmp_path):
    vm, vm_uuid = new_vm(session, "clone")
    session.xenapi.VM.add_to_other_config(vm, PIN, "AAAAC3NzaC1lZDI1NTE5AAAAIHmWzGFh0c1jL5D0GB3xq7FQqvQZ2mXz7Gf6YyDB6cbN")
    session.xenapi.VM.add_to_other_config(vm, PIN_VM, "0a1b2c3d-0000-4000-8000-000000000000")
    vdi_uuid = make(sim, session, vm_uuid, sr_uuid, AUTHORIZING, no_tools)
    _, public = drive_host_key(sim, session, vdi_uuid, tmp_path)
    config = session.xenapi.VM.get_other_config(vm)
    assert config[PIN] == public and config[PIN_VM] == vm_uuid


@pytest.mark.parametrize("vouched", [
    {PIN: "AAAAC3NzaC1lZDI1NTE5AAAAIHmWzGFh0c1jL5D0GB3xq7FQqvQZ2mXz7Gf6YyDB6cbN"},  # the original's
    {PIN_FINGERPRINT: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"},       # registered
], ids=["pinned", "registered"])
def test_an_administrators_pin_is_left_alone_and_the_drive_gives_no_key(sim, session, sr_uuid, no_tools,
                                                                        tmp_path, vouched):
    vm, vm_uuid = new_vm(session, "pinned")
    for key, value in vouched.items():
        session.xenapi.VM.add_to_other_config(vm, key, value)
    if PIN_FINGERPRINT in vouched:
        session.xenapi.VM.add_to_other_config(vm, PIN_VM, vm_uuid)
    before = session.xenapi.VM.get_other_config(vm)
    vdi_uuid = make(sim, session, vm_uuid, sr_uuid, AUTHORIZING, no_tools)
    assert drive_host_key(sim, session, vdi_uuid, tmp_path) == (None, None)
    after = session.xenapi.VM.get_other_config(vm)
    assert {k: after.get(k) for k in (PIN, PIN_VM, PIN_FINGERPRINT, PIN_BY_DRIVE)} == \
        {k: before.get(k) for k in (PIN, PIN_VM, PIN_FINGERPRINT, PIN_BY_DRIVE)}


def test_a_drive_that_does_not_authorize_the_pool_key_pins_nothing(sim, session, sr_uuid, no_tools, tmp_path):
    vm, vm_uuid = new_vm(session, "unkeyed")
    vdi_uuid = make(sim, session, vm_uuid, sr_uuid, "#cloud-config\nhostname: x\n", no_tools)
    assert drive_host_key(sim, session, vdi_uuid, tmp_path) == (None, None)
    config = session.xenapi.VM.get_other_config(vm)
    assert not set(config) & {PIN, PIN_VM, PIN_BY_DRIVE}
