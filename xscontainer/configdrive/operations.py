"""The plugin-facing config drive operations: xapi lookups, all-or-nothing (the VDI/VBD lifecycle is
``disks``).

``create_config_drive`` validates everything it can before it makes anything in xapi, and on any
later failure removes what it made, so a failed call leaves the VM as it was.
"""

import logging
import os
from typing import Any, Dict, Optional, Tuple

from xscontainer import hostkeys
from xscontainer.configdrive import guestformats, iso, render, transfer
from xscontainer.configdrive.disks import (MadeSoFar, config_drives_of, create_vbd, create_vdi, remove_drive,
                                           translate_failure)
from xscontainer.errors import ConfigDriveError
from xscontainer.poolkeys import PoolKeyPair, ensure_pool_keypair, generate_keypair
from xscontainer.vmsettings import HOSTKEY_FINGERPRINT_KEY, HOSTKEY_KEY, HOSTKEY_VM_KEY, MONITOR_KEY
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.maps import add_map_key_if_absent, remove_map_key, set_map_key

LOG = logging.getLogger(__name__)

CLOUD_CONFIG_OVERRIDE_PATH = "/opt/xensource/packages/files/xscontainer/cloud-config.template"
HIN_PREFERENCE_KEY = "xscontainer-use-hostinternalnetwork"
# Written when absent: XenCenter then offers the "Container Management" page (key present) without
# turning monitoring on by itself (value not "true"), as the original's mark_monitorable_vm did.
# The original wrote "False" (monitorable, switched off). An administrator who builds a VM with a
# drive that authorizes the pool key wants its containers seen, so we switch monitoring on; an
# explicit value already present (e.g. an administrator's "False") is never overwritten.
MONITOR_MARK_VALUE = "True"
# The fingerprint of the host key a config drive pinned. A pin whose key has this fingerprint was
# made by a drive, and the next drive replaces it; any other pin was verified by an administrator
# (or is the original's), and a drive leaves it, and the guest's own key, alone.
DRIVE_HOSTKEY_KEY = "xscontainer-sshhostkey-drive"
VDI_ALIGNMENT = 2 * 1024 * 1024  # xapi cannot import raw disks that are not 2 MiB aligned
MAX_DRIVE_SIZE = 64 * 1024 * 1024
ACCEPTED_POWER_STATES = ("Halted", "Running")


def package_template_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "data", "cloud-config.template")


def _pool_ref(session: Session) -> str:
    return session.xenapi.pool.get_all()[0]


def hin_enabled(session: Session) -> bool:
    config = session.xenapi.pool.get_other_config(_pool_ref(session))
    return render.is_true_word(config.get(HIN_PREFERENCE_KEY))


def load_template(override_path: Optional[str] = CLOUD_CONFIG_OVERRIDE_PATH,
                  package_path: Optional[str] = None) -> Tuple[str, str]:
    """(template text, where it came from): the administrator's override file wins."""
    path = override_path if override_path and os.path.exists(override_path) else None
    path = path or package_path or package_template_path()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(), path
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigDriveError("Cannot read the cloud-config template %s: %s" % (path, exc),
                               code="TEMPLATE_UNREADABLE") from exc


def get_config_drive_default(session: Session, template_uuid: Optional[str] = None,
                             override_path: Optional[str] = CLOUD_CONFIG_OVERRIDE_PATH,
                             package_path: Optional[str] = None) -> str:
    """The default configuration offered for a new VM (``template_uuid`` is accepted, as by the
    original, but every template gets the same text)."""
    text, source = load_template(override_path, package_path)
    try:
        enabled = hin_enabled(session)
    except Failure as exc:
        raise translate_failure(exc, "read the pool's configuration") from exc
    return render.default_template_text(text, enabled, source)


def _lookup(session: Session, cls: str, uuid: str) -> Tuple[str, Dict[str, Any]]:
    """(ref, record) of the ``cls`` object with that uuid (``VM`` or ``SR``)."""
    api = getattr(session.xenapi, cls)
    try:
        ref = api.get_by_uuid(uuid)
        return ref, api.get_record(ref)
    except Failure as exc:
        if exc.details and exc.details[0] in ("UUID_INVALID", "HANDLE_INVALID"):
            raise ConfigDriveError("There is no %s with uuid %s." % (cls, uuid), code="%s_NOT_FOUND" % cls,
                                   **{cls.lower() + "_uuid": uuid}) from exc
        raise translate_failure(exc, "look up %s %s" % (cls, uuid)) from exc


def _vm(session: Session, vm_uuid: str) -> Tuple[str, Dict[str, Any]]:
    return _lookup(session, "VM", vm_uuid)


def _sr(session: Session, sr_uuid: str) -> Tuple[str, Dict[str, Any]]:
    return _lookup(session, "SR", sr_uuid)


def _check_vm(vm_uuid: str, vm: Dict[str, Any]) -> None:
    if vm.get("is_control_domain"):
        raise ConfigDriveError("VM %s is a control domain; it cannot have a config drive." % vm_uuid,
                               code="VM_NOT_SUITABLE", vm_uuid=vm_uuid)
    if vm.get("is_a_snapshot"):
        raise ConfigDriveError("VM %s is a snapshot; it cannot have a config drive." % vm_uuid,
                               code="VM_NOT_SUITABLE", vm_uuid=vm_uuid)
    if vm.get("is_a_template"):
        # A VM made from the template gets its own drive; a template's would be shared by all.
        raise ConfigDriveError("VM %s is a template; it cannot have a config drive (give one to "
                               "each VM made from it)." % vm_uuid,
                               code="VM_NOT_SUITABLE", vm_uuid=vm_uuid)
    state = vm.get("power_state")
    if state not in ACCEPTED_POWER_STATES:
        raise ConfigDriveError("VM %s is %s; a config drive can be made only for a halted or running "
                               "VM." % (vm_uuid, state), code="VM_BAD_POWER_STATE",
                               vm_uuid=vm_uuid, power_state=state)


def _check_sr(sr_uuid: str, sr: Dict[str, Any], size: int) -> None:
    if sr.get("content_type") == "iso":
        raise ConfigDriveError("SR %s is an ISO library; choose an SR that holds virtual disks."
                               % sr_uuid, code="SR_NOT_SUITABLE", sr_uuid=sr_uuid)
    try:
        physical_size = int(sr.get("physical_size", -1))
        used = int(sr.get("physical_utilisation", 0))
    except (TypeError, ValueError):
        return
    if physical_size >= 0 and physical_size - used < size:
        raise ConfigDriveError("SR %s has %d bytes free; the config drive needs %d."
                               % (sr_uuid, max(physical_size - used, 0), size),
                               code="SR_FULL", sr_uuid=sr_uuid)


def _hin_device(session: Session, vm: Dict[str, Any]) -> Optional[str]:
    networks = session.xenapi.network.get_all_records()
    vifs = []
    for vif in vm.get("VIFs", []):
        try:
            vifs.append(session.xenapi.VIF.get_record(vif))
        except Failure:
            continue  # removed meanwhile
    return render.hin_device_of(vifs, networks)


def drive_may_pin(vm_uuid: str, other_config: Dict[str, str]) -> bool:
    """Pure: may a new drive give the VM a host key and pin it? Yes when nothing vouches for the VM
    (a new VM, or a clone's copied pin) or when what vouches was pinned by a previous drive; no
    when an administrator pinned or registered a key (or the original product pinned one)."""
    state = hostkeys.pin_state(vm_uuid, other_config)
    if state.pinned is None:
        return state.expected is None
    made_by_drive = (other_config.get(DRIVE_HOSTKEY_KEY) or "").strip() == hostkeys.fingerprint(state.pinned)
    return state.bound and made_by_drive


def _new_host_key(vm_uuid: str, hostname: str) -> guestformats.HostKey:
    pair = generate_keypair(comment="root@" + (hostname or vm_uuid))
    return guestformats.HostKey(pair.private_pem, pair.public_line)


def _pin_drive_key(session: Session, vm_ref: str, vm_uuid: str, key_b64: str) -> None:
    """Pin the key the drive carries, key by key. The key is written before the binding, so that
    a clone's copied binding never vouches, even for an instant, for a key we did not choose."""
    api = session.xenapi
    try:
        set_map_key(api.VM, vm_ref, HOSTKEY_KEY, key_b64)
        set_map_key(api.VM, vm_ref, HOSTKEY_VM_KEY, vm_uuid)
        set_map_key(api.VM, vm_ref, DRIVE_HOSTKEY_KEY, hostkeys.fingerprint(key_b64))
        remove_map_key(api.VM, vm_ref, HOSTKEY_FINGERPRINT_KEY)
    except Failure as exc:
        raise ConfigDriveError(
            "The config drive of VM %s is in place, but the SSH host key it gives the VM could not be "
            "pinned (%s). Once the VM has booted, pin it with: xscontainer register %s "
            "--host-key-fingerprint %s" % (vm_uuid, " ".join(str(d) for d in exc.details), vm_uuid,
                                           hostkeys.fingerprint(key_b64)),
            code="HOSTKEY_PIN_FAILED", xapi_error=list(exc.details)) from exc


def create_config_drive(session: Session, vm_uuid: str, sr_uuid: str, configuration: str,
                        keypair: Optional[PoolKeyPair] = None, socket_path: Optional[str] = None,
                        tools_iso_dir: Optional[str] = None) -> str:
    """Make and attach a config drive for the VM, replacing any previous one; the new VDI's uuid.

    ``configuration`` is cloud-config, Ignition JSON or a script, with the placeholders of
    ``render``; ``%BR%`` stands for a line break. Raises ConfigDriveError; on failure nothing that
    this call made is left in xapi.
    """
    configuration = render.decode_br(configuration or "")
    api = session.xenapi
    vm_ref, vm = _vm(session, vm_uuid)
    _check_vm(vm_uuid, vm)
    sr_ref, sr = _sr(session, sr_uuid)
    try:
        pair = keypair or ensure_pool_keypair(session)
        hin_device = _hin_device(session, vm)
    except Failure as exc:
        raise translate_failure(exc, "read the pool key or networks") from exc
    host_key = None  # type: Optional[guestformats.HostKey]
    if drive_may_pin(vm_uuid, vm.get("other_config") or {}):
        host_key = _new_host_key(vm_uuid, render.vm_name_to_hostname(vm.get("name_label", ""), vm_uuid))
    context = render.RenderContext(vm_uuid, vm.get("name_label", ""), pair.public_line, hin_device,
                                   host_key)
    rendered = render.render_user_data(configuration, context)

    agent = iso.load_agent_files(tools_iso_dir)
    image = iso.build_iso(render.drive_files(configuration, context, rendered, agent))
    size = render.round_up(len(image), VDI_ALIGNMENT)
    if size > MAX_DRIVE_SIZE:
        raise ConfigDriveError("The config drive would take %d bytes, more than the %d allowed; "
                               "shorten the configuration." % (size, MAX_DRIVE_SIZE),
                               code="DISK_TOO_LARGE")
    _check_sr(sr_uuid, sr, size)
    image += b"\0" * (size - len(image))

    made = MadeSoFar(session, vm_uuid)
    try:
        made.vdi = create_vdi(session, sr_ref, vm_uuid, size)
        vdi_uuid = api.VDI.get_uuid(made.vdi)
        transfer.import_raw(session, vdi_uuid, image, socket_path=socket_path)
        made.vbd = create_vbd(session, vm_ref, made.vdi)
        if api.VM.get_power_state(vm_ref) == "Running":
            api.VBD.plug(made.vbd)
        for vbd, record in config_drives_of(session, vm_ref, made.vbd):
            try:
                remove_drive(session, vm_uuid, vbd, record)
            except Failure as exc:
                raise ConfigDriveError(
                    "The previous config drive of VM %s cannot be removed (%s); the new one was "
                    "withdrawn. If the guest holds the drive, shut the VM down and try again."
                    % (vm_uuid, " ".join(str(d) for d in exc.details)),
                    code="OLD_DRIVE_IN_USE", xapi_error=list(exc.details)) from exc
    except Failure as exc:
        made.undo()
        raise translate_failure(exc, "set up the config drive of VM %s" % vm_uuid) from exc
    except BaseException:
        made.undo()
        raise
    LOG.info("VM %s: config drive VDI %s created (%s, %d bytes, agent files: %d)", vm_uuid,
             vdi_uuid, rendered.format, size, len(agent))
    if rendered.host_key_pinned is not None:
        # Pinned only now that the drive that carries the key has replaced the previous one.
        _pin_drive_key(session, vm_ref, vm_uuid, rendered.host_key_pinned)
        LOG.info("VM %s: pinned the SSH host key its config drive gives it (%s)", vm_uuid,
                 hostkeys.describe_key(rendered.host_key_pinned))
    if rendered.authorizes_pool_key:
        try:
            add_map_key_if_absent(api.VM, vm_ref, MONITOR_KEY, MONITOR_MARK_VALUE)
        except Failure as exc:
            # The drive is in place and correct; only XenCenter's convenience mark is missing.
            LOG.warning("VM %s: cannot mark the VM as manageable: %s", vm_uuid, exc.details)
    return vdi_uuid


def get_config_drive_configuration(session: Session, vdi_uuid: str,
                                   socket_path: Optional[str] = None) -> str:
    """The configuration text a config drive was made from (its ``user_data.template``)."""
    try:
        ref = session.xenapi.VDI.get_by_uuid(vdi_uuid)
        virtual_size = int(session.xenapi.VDI.get_virtual_size(ref))
    except Failure as exc:
        if exc.details and exc.details[0] in ("UUID_INVALID", "HANDLE_INVALID"):
            raise ConfigDriveError("There is no VDI with uuid %s." % vdi_uuid, code="VDI_NOT_FOUND",
                                   vdi_uuid=vdi_uuid) from exc
        raise translate_failure(exc, "look up VDI %s" % vdi_uuid) from exc
    if virtual_size > MAX_DRIVE_SIZE:
        raise ConfigDriveError("VDI %s (%d bytes) is larger than any config drive: it is not one."
                               % (vdi_uuid, virtual_size), code="NOT_A_CONFIG_DRIVE")
    data = transfer.export_raw(session, vdi_uuid, MAX_DRIVE_SIZE, socket_path=socket_path)
    try:
        content = iso.read_drive_file(data, render.USER_DATA_TEMPLATE)
    except ConfigDriveError as exc:
        if exc.code != "NOT_A_CONFIG_DRIVE" or "no " + render.USER_DATA_TEMPLATE not in exc.message:
            raise
        # Drives made by the oldest versions of the original only had the rendered user_data.
        content = iso.read_drive_file(data, render.USER_DATA)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigDriveError("The configuration stored in VDI %s is not UTF-8 text." % vdi_uuid,
                               code="NOT_A_CONFIG_DRIVE") from exc
