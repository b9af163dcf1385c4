"""A fresh simulated pool: hosts with dom0, networks, a shared SR, a CoreOS template, and
each host's xensource-inventory file."""

import os
import random
import uuid as uuidlib
from typing import Any, Dict, List

from xscontainer.sim.db import Database

API_MAJOR = 2
API_MINOR = 21
PRODUCT_VERSION = "8.4.0"
PLATFORM_VERSION = "3.4.0"


def _mac() -> str:
    return "02:%s" % ":".join("%02x" % random.randint(0, 255) for _ in range(5))


def seed(db: Database, hosts: int, now: str) -> None:
    """Populate an empty database (call with the lock held)."""
    db.create("network", {
        "name_label": "Host internal management network",
        "name_description": "Network on which guests will be assigned a private link-local "
                            "IP address which can be used to talk XenAPI",
        "bridge": "xenapi", "other_config": {
            "is_guest_installer_network": "true",
            "is_host_internal_management_network": "true",
            "ip_begin": "169.254.0.1", "ip_end": "169.254.255.254", "netmask": "255.255.0.0"}})
    eth0_net = db.create("network", {"name_label": "Pool-wide network associated with eth0",
                                     "bridge": "xenbr0", "other_config": {}})
    sr = db.create("SR", {"name_label": "Local storage", "type": "ext", "content_type": "user",
                          "shared": True, "physical_size": 1 << 40,
                          "other_config": {"i18n-key": "local-storage"}})
    host_refs = []  # type: List[str]
    for index in range(1, hosts + 1):
        host = db.create("host", {
            "name_label": "host%d" % index, "hostname": "host%d" % index,
            "address": "10.0.0.%d" % index, "enabled": True,
            "API_version_major": API_MAJOR, "API_version_minor": API_MINOR,
            "API_version_vendor": "XenSource", "software_version": {
                "product_version": PRODUCT_VERSION, "product_brand": "XenServer",
                "platform_version": PLATFORM_VERSION, "platform_name": "XCP",
                "xapi": "%d.%d" % (API_MAJOR, API_MINOR), "hostname": "host%d" % index},
            "other_config": {}, "capabilities": [], "sched_policy": "credit",
            "supported_bootloaders": ["pygrub", "eliloader"], "logging": {},
            "cpu_info": {"cpu_count": "4"}, "edition": "xcp-ng"})
        host_refs.append(host)
        dom0 = db.create("VM", {
            "name_label": "Control domain on host: host%d" % index, "is_control_domain": True,
            "power_state": "Running", "resident_on": host, "domid": 0, "other_config": {},
            "memory_static_max": 4 << 30, "VCPUs_max": 4, "VCPUs_at_startup": 4,
            "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
            "actions_after_crash": "restart"})
        db.set("host", host, "control_domain", dom0)
        db.create("PIF", {"device": "eth0", "network": eth0_net, "host": host, "MAC": _mac(),
                          "MTU": 1500, "VLAN": -1, "physical": True, "management": True,
                          "ip_configuration_mode": "DHCP", "IP": "10.0.0.%d" % index,
                          "netmask": "255.255.255.0"})
        db.create("PBD", {"host": host, "SR": sr, "currently_attached": True,
                          "device_config": {"device": "/dev/sda3"}})
    db.create("pool", {"name_label": "xscontainer-sim", "master": host_refs[0],
                              "default_SR": sr, "suspend_image_SR": sr, "crash_dump_SR": sr,
                              "other_config": {}})
    db.create("VM", {
        "name_label": "CoreOS", "name_description": "Template for CoreOS Container Linux",
        "is_a_template": True, "is_default_template": True, "reference_label": "coreos",
        "uuid": str(uuidlib.uuid4()),
        "other_config": {"default_template": "true", "linux_template": "true",
                         "install-methods": "cdrom,nfs,http,ftp",
                         "mac_seed": str(uuidlib.uuid4()),
                         "disks": '<provision><disk device="0" size="8589934592" sr="" '
                                  'bootable="true" type="system"/></provision>'},
        "platform": {"vga": "std", "videoram": "8", "viridian": "false",
                     "device_id": "0001", "device-model": "qemu-upstream-compat",
                     "secureboot": "false"},
        "HVM_boot_policy": "BIOS order", "HVM_boot_params": {"firmware": "bios", "order": "cdn"},
        "memory_static_min": 2 << 30, "memory_static_max": 4 << 30,
        "memory_dynamic_min": 4 << 30, "memory_dynamic_max": 4 << 30,
        "VCPUs_max": 1, "VCPUs_at_startup": 1, "domid": -1,
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "restart", "domain_type": "hvm"})


def inventory_text(host_uuid: str, dom0_uuid: str) -> str:
    values = [
        ("PRIMARY_DISK", "/dev/disk/by-id/sim-disk"),
        ("PRODUCT_BRAND", "XenServer"),
        ("PRODUCT_NAME", "xenenterprise"),
        ("PRODUCT_VERSION", PRODUCT_VERSION),
        ("PRODUCT_VERSION_TEXT", "8"),
        ("PLATFORM_NAME", "XCP"),
        ("PLATFORM_VERSION", PLATFORM_VERSION),
        ("BUILD_NUMBER", "sim"),
        ("INSTALLATION_DATE", "2026-01-01 00:00:00.000000"),
        ("INSTALLATION_UUID", host_uuid),
        ("CONTROL_DOMAIN_UUID", dom0_uuid),
        ("DOM0_MEM", "4096"),
        ("DOM0_VCPUS", "4"),
        ("MANAGEMENT_INTERFACE", "xenbr0"),
        ("MANAGEMENT_ADDRESS_TYPE", "IPv4"),
        ("CURRENT_INTERFACES", "xenbr0"),
        ("BACKUP_PARTITION", "/dev/disk/by-id/sim-disk-part2"),
    ]
    return "".join("%s='%s'\n" % pair for pair in values)


def write_inventories(db: Database, directory: str) -> Dict[str, str]:
    """Write DIR/hosts/<uuid>/xensource-inventory for every host; host uuid -> path."""
    paths = {}
    for ref, row in db.tables["host"].items():
        dom0 = row["control_domain"]
        dom0_uuid = db.tables["VM"][dom0]["uuid"] if dom0 in db.tables["VM"] else ""
        folder = os.path.join(directory, "hosts", row["uuid"])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "xensource-inventory")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(inventory_text(row["uuid"], dom0_uuid))
        paths[row["uuid"]] = path
    return paths


def host_summaries(db: Database, inventories: Dict[str, str]) -> List[Dict[str, Any]]:
    pool = db.tables["pool"][db.refs("pool")[0]]
    refs = sorted(db.refs("host"), key=lambda r: (r != pool["master"],
                                                  db.tables["host"][r]["name_label"]))
    return [{"uuid": db.tables["host"][r]["uuid"],
             "name_label": db.tables["host"][r]["name_label"],
             "inventory": inventories[db.tables["host"][r]["uuid"]]} for r in refs]

