"""The xapi datamodel subset the simulator serves: classes, fields, types, defaults, enums.

FIELDS is Appendix A of the xapi contract (XA ``doc/data/xenapi.json``): per class, the public
fields as (name, xapi type, RW|RO, datamodel default). Values are stored json-native (ints as
int, datetimes as ``YYYYMMDDTHH:MM:SSZ`` strings) and converted by ``encode``/``decode`` at the
wire, so the persistence file and the wire each get their own natural form.
"""

import datetime
import re
import xmlrpc.client
from typing import Any, Dict, List, NamedTuple, Optional

from xscontainer.sim.failures import XapiFailure

NULL_REF = "OpaqueRef:NULL"
EPOCH = "19700101T00:00:00Z"

FIELDS = {  # noqa: E501 (generated from the contract, Appendix A)
    'session': [
        ('uuid', 'string', 'RO', ''),
        ('this_host', 'host ref', 'RO', ''),
        ('this_user', 'user ref', 'RO', ''),
        ('last_active', 'datetime', 'RO', ''),
        ('pool', 'bool', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', '{}'),
        ('is_local_superuser', 'bool', 'RO', 'false'),
        ('subject', 'subject ref', 'RO', 'OpaqueRef:NULL'),
        ('validation_time', 'datetime', 'RO', '19700101T00:00:00Z'),
        ('auth_user_sid', 'string', 'RO', '""'),
        ('auth_user_name', 'string', 'RO', '""'),
        ('rbac_permissions', 'string set', 'RO', '{}'),
        ('tasks', 'task ref set', 'RO', ''),
        ('parent', 'session ref', 'RO', 'OpaqueRef:NULL'),
        ('originator', 'string', 'RO', '""'),
        ('client_certificate', 'bool', 'RO', 'false'),
    ],
    'task': [
        ('uuid', 'string', 'RO', ''),
        ('name_label', 'string', 'RO', '""'),
        ('name_description', 'string', 'RO', '""'),
        ('allowed_operations', 'enum task_allowed_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum task_allowed_operations) map', 'RO', '{}'),
        ('created', 'datetime', 'RO', ''),
        ('finished', 'datetime', 'RO', ''),
        ('status', 'enum task_status_type', 'RO', ''),
        ('resident_on', 'host ref', 'RO', ''),
        ('progress', 'float', 'RO', ''),
        ('type', 'string', 'RO', ''),
        ('result', 'string', 'RO', ''),
        ('error_info', 'string set', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', '{}'),
        ('subtask_of', 'task ref', 'RO', 'Null'),
        ('subtasks', 'task ref set', 'RO', ''),
        ('backtrace', 'string', 'RO', '"()"'),
    ],
    'event': [
        ('snapshot', '<class> record', 'RO', ''),
        ('id', 'int', 'RO', ''),
        ('timestamp', 'datetime', 'RO', ''),
        ('class', 'string', 'RO', ''),
        ('operation', 'enum event_operation', 'RO', ''),
        ('ref', 'string', 'RO', ''),
        ('obj_uuid', 'string', 'RO', ''),
    ],
    'pool': [
        ('uuid', 'string', 'RO', ''),
        ('name_label', 'string', 'RW', ''),
        ('name_description', 'string', 'RW', ''),
        ('master', 'host ref', 'RO', ''),
        ('default_SR', 'SR ref', 'RW', ''),
        ('suspend_image_SR', 'SR ref', 'RW', ''),
        ('crash_dump_SR', 'SR ref', 'RW', ''),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('ha_enabled', 'bool', 'RO', 'false'),
        ('ha_configuration', '(string -> string) map', 'RO', '{}'),
        ('ha_statefiles', 'string set', 'RO', '{}'),
        ('ha_host_failures_to_tolerate', 'int', 'RO', '0'),
        ('ha_plan_exists_for', 'int', 'RO', '0'),
        ('ha_allow_overcommit', 'bool', 'RW', 'false'),
        ('ha_overcommitted', 'bool', 'RO', 'false'),
        ('blobs', '(string -> blob ref) map', 'RO', '{}'),
        ('tags', 'string set', 'RW', '{}'),
        ('gui_config', '(string -> string) map', 'RW', '{}'),
        ('health_check_config', '(string -> string) map', 'RW', '{}'),
        ('wlb_url', 'string', 'RO', '""'),
        ('wlb_username', 'string', 'RO', '""'),
        ('wlb_enabled', 'bool', 'RW', 'false'),
        ('wlb_verify_cert', 'bool', 'RW', 'false'),
        ('redo_log_enabled', 'bool', 'RO', 'false'),
        ('redo_log_vdi', 'VDI ref', 'RO', 'OpaqueRef:NULL'),
        ('vswitch_controller', 'string', 'RO', '""'),
        ('restrictions', '(string -> string) map', 'RO', '{}'),
        ('metadata_VDIs', 'VDI ref set', 'RO', ''),
        ('ha_cluster_stack', 'string', 'RO', '""'),
        ('allowed_operations', 'enum pool_allowed_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum pool_allowed_operations) map', 'RO', '{}'),
        ('guest_agent_config', '(string -> string) map', 'RO', '{}'),
        ('cpu_info', '(string -> string) map', 'RO', '{}'),
        ('policy_no_vendor_device', 'bool', 'RW', 'false'),
        ('live_patching_disabled', 'bool', 'RW', 'false'),
        ('igmp_snooping_enabled', 'bool', 'RO', 'false'),
        ('uefi_certificates', 'string', 'RO', '""'),
        ('custom_uefi_certificates', 'string', 'RO', '""'),
        ('is_psr_pending', 'bool', 'RW', 'false'),
        ('tls_verification_enabled', 'bool', 'RO', 'false'),
        ('repositories', 'Repository ref set', 'RO', '{}'),
        ('client_certificate_auth_enabled', 'bool', 'RO', 'false'),
        ('client_certificate_auth_name', 'string', 'RO', '""'),
        ('repository_proxy_url', 'string', 'RO', '""'),
        ('repository_proxy_username', 'string', 'RO', '""'),
        ('repository_proxy_password', 'secret ref', 'RO', 'OpaqueRef:NULL'),
        ('migration_compression', 'bool', 'RW', 'false'),
        ('coordinator_bias', 'bool', 'RW', 'true'),
        ('local_auth_max_threads', 'int', 'RO', '8'),
        ('ext_auth_max_threads', 'int', 'RO', '1'),
        ('telemetry_uuid', 'secret ref', 'RO', 'OpaqueRef:NULL'),
        ('telemetry_frequency', 'enum telemetry_frequency', 'RO', 'weekly'),
        ('telemetry_next_collection', 'datetime', 'RO', '19700101T00:00:00Z'),
        ('last_update_sync', 'datetime', 'RO', '19700101T00:00:00Z'),
        ('update_sync_frequency', 'enum update_sync_frequency', 'RO', 'weekly'),
        ('update_sync_day', 'int', 'RO', '0'),
        ('update_sync_enabled', 'bool', 'RO', 'false'),
    ],
    'host': [
        ('uuid', 'string', 'RO', ''),
        ('name_label', 'string', 'RW', '""'),
        ('name_description', 'string', 'RW', '""'),
        ('memory_overhead', 'int', 'RO', '0'),
        ('allowed_operations', 'enum host_allowed_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum host_allowed_operations) map', 'RO', '{}'),
        ('API_version_major', 'int', 'RO', ''),
        ('API_version_minor', 'int', 'RO', ''),
        ('API_version_vendor', 'string', 'RO', ''),
        ('API_version_vendor_implementation', '(string -> string) map', 'RO', ''),
        ('enabled', 'bool', 'RO', ''),
        ('software_version', '(string -> string) map', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('capabilities', 'string set', 'RO', ''),
        ('cpu_configuration', '(string -> string) map', 'RO', ''),
        ('sched_policy', 'string', 'RO', ''),
        ('supported_bootloaders', 'string set', 'RO', ''),
        ('resident_VMs', 'VM ref set', 'RO', ''),
        ('logging', '(string -> string) map', 'RW', ''),
        ('PIFs', 'PIF ref set', 'RO', ''),
        ('suspend_image_sr', 'SR ref', 'RW', ''),
        ('crash_dump_sr', 'SR ref', 'RW', ''),
        ('crashdumps', 'host_crashdump ref set', 'RO', ''),
        ('patches', 'host_patch ref set', 'RO', ''),
        ('updates', 'pool_update ref set', 'RO', ''),
        ('PBDs', 'PBD ref set', 'RO', ''),
        ('host_CPUs', 'host_cpu ref set', 'RO', ''),
        ('cpu_info', '(string -> string) map', 'RO', '{}'),
        ('hostname', 'string', 'RW', ''),
        ('address', 'string', 'RW', ''),
        ('metrics', 'host_metrics ref', 'RO', ''),
        ('license_params', '(string -> string) map', 'RO', ''),
        ('ha_statefiles', 'string set', 'RO', '{}'),
        ('ha_network_peers', 'string set', 'RO', '{}'),
        ('blobs', '(string -> blob ref) map', 'RO', '{}'),
        ('tags', 'string set', 'RW', '{}'),
        ('external_auth_type', 'string', 'RO', '""'),
        ('external_auth_service_name', 'string', 'RO', '""'),
        ('external_auth_configuration', '(string -> string) map', 'RO', '{}'),
        ('edition', 'string', 'RO', '""'),
        ('license_server', '(string -> string) map', 'RW', '{"address" -> "localhost", "port" -> "27000"}'),
        ('bios_strings', '(string -> string) map', 'RO', '{}'),
        ('power_on_mode', 'string', 'RO', '""'),
        ('power_on_config', '(string -> string) map', 'RO', '{}'),
        ('local_cache_sr', 'SR ref', 'RO', 'OpaqueRef:NULL'),
        ('chipset_info', '(string -> string) map', 'RO', '{}'),
        ('PCIs', 'PCI ref set', 'RO', ''),
        ('PGPUs', 'PGPU ref set', 'RO', ''),
        ('PUSBs', 'PUSB ref set', 'RO', ''),
        ('ssl_legacy', 'bool', 'RO', 'true'),
        ('guest_VCPUs_params', '(string -> string) map', 'RW', '{}'),
        ('display', 'enum host_display', 'RW', 'enabled'),
        ('virtual_hardware_platform_versions', 'int set', 'RO', '{0}'),
        ('control_domain', 'VM ref', 'RO', 'OpaqueRef:NULL'),
        ('updates_requiring_reboot', 'pool_update ref set', 'RO', ''),
        ('features', 'Feature ref set', 'RO', ''),
        ('iscsi_iqn', 'string', 'RO', '""'),
        ('multipathing', 'bool', 'RO', 'false'),
        ('uefi_certificates', 'string', 'RO', '""'),
        ('certificates', 'Certificate ref set', 'RO', ''),
        ('editions', 'string set', 'RO', '{}'),
        ('pending_guidances', 'enum update_guidances set', 'RO', '{}'),
        ('tls_verification_enabled', 'bool', 'RO', 'false'),
        ('last_software_update', 'datetime', 'RO', '19700101T00:00:00Z'),
        ('https_only', 'bool', 'RO', 'false'),
        ('latest_synced_updates_applied', 'enum latest_synced_updates_applied_state', 'RO', 'unknown'),
        ('numa_affinity_policy', 'enum host_numa_affinity_policy', 'RO', 'default_policy'),
        ('pending_guidances_recommended', 'enum update_guidances set', 'RO', '{}'),
        ('pending_guidances_full', 'enum update_guidances set', 'RO', '{}'),
        ('last_update_hash', 'string', 'RO', '""'),
    ],
    'VM': [
        ('uuid', 'string', 'RO', ''),
        ('allowed_operations', 'enum vm_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum vm_operations) map', 'RO', '{}'),
        ('name_label', 'string', 'RW', '""'),
        ('name_description', 'string', 'RW', '""'),
        ('power_state', 'enum vm_power_state', 'RO', 'Halted'),
        ('user_version', 'int', 'RW', ''),
        ('is_a_template', 'bool', 'RW', ''),
        ('is_default_template', 'bool', 'RO', 'false'),
        ('suspend_VDI', 'VDI ref', 'RO', 'OpaqueRef:NULL'),
        ('resident_on', 'host ref', 'RO', ''),
        ('scheduled_to_be_resident_on', 'host ref', 'RO', 'OpaqueRef:NULL'),
        ('affinity', 'host ref', 'RW', ''),
        ('memory_overhead', 'int', 'RO', '0'),
        ('memory_target', 'int', 'RO', '0'),
        ('memory_static_max', 'int', 'RO', ''),
        ('memory_dynamic_max', 'int', 'RO', ''),
        ('memory_dynamic_min', 'int', 'RO', ''),
        ('memory_static_min', 'int', 'RO', ''),
        ('VCPUs_params', '(string -> string) map', 'RW', ''),
        ('VCPUs_max', 'int', 'RO', ''),
        ('VCPUs_at_startup', 'int', 'RO', ''),
        ('actions_after_softreboot', 'enum on_softreboot_behavior', 'RW', 'soft_reboot'),
        ('actions_after_shutdown', 'enum on_normal_exit', 'RW', ''),
        ('actions_after_reboot', 'enum on_normal_exit', 'RW', ''),
        ('actions_after_crash', 'enum on_crash_behaviour', 'RO', ''),
        ('consoles', 'console ref set', 'RO', ''),
        ('VIFs', 'VIF ref set', 'RO', ''),
        ('VBDs', 'VBD ref set', 'RO', ''),
        ('VUSBs', 'VUSB ref set', 'RO', ''),
        ('crash_dumps', 'crashdump ref set', 'RO', ''),
        ('VTPMs', 'VTPM ref set', 'RO', ''),
        ('PV_bootloader', 'string', 'RW', ''),
        ('PV_kernel', 'string', 'RW', ''),
        ('PV_ramdisk', 'string', 'RW', ''),
        ('PV_args', 'string', 'RW', ''),
        ('PV_bootloader_args', 'string', 'RW', ''),
        ('PV_legacy_args', 'string', 'RW', ''),
        ('HVM_boot_policy', 'string', 'RO', ''),
        ('HVM_boot_params', '(string -> string) map', 'RW', ''),
        ('HVM_shadow_multiplier', 'float', 'RO', '1.'),
        ('platform', '(string -> string) map', 'RW', ''),
        ('PCI_bus', 'string', 'RW', ''),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('domid', 'int', 'RO', ''),
        ('domarch', 'string', 'RO', ''),
        ('last_boot_CPU_flags', '(string -> string) map', 'RO', '{}'),
        ('is_control_domain', 'bool', 'RO', ''),
        ('metrics', 'VM_metrics ref', 'RO', ''),
        ('guest_metrics', 'VM_guest_metrics ref', 'RO', ''),
        ('last_booted_record', 'string', 'RO', '""'),
        ('recommendations', 'string', 'RW', ''),
        ('xenstore_data', '(string -> string) map', 'RW', '{}'),
        ('ha_always_run', 'bool', 'RO', 'false'),
        ('ha_restart_priority', 'string', 'RO', '""'),
        ('is_a_snapshot', 'bool', 'RO', 'false'),
        ('snapshot_of', 'VM ref', 'RO', 'Null'),
        ('snapshots', 'VM ref set', 'RO', ''),
        ('snapshot_time', 'datetime', 'RO', '19700101T00:00:00Z'),
        ('transportable_snapshot_id', 'string', 'RO', '""'),
        ('blobs', '(string -> blob ref) map', 'RO', '{}'),
        ('tags', 'string set', 'RW', '{}'),
        ('blocked_operations', '(enum vm_operations -> string) map', 'RW', '{}'),
        ('snapshot_info', '(string -> string) map', 'RO', '{}'),
        ('snapshot_metadata', 'string', 'RO', '""'),
        ('parent', 'VM ref', 'RO', 'Null'),
        ('children', 'VM ref set', 'RO', ''),
        ('bios_strings', '(string -> string) map', 'RO', '{}'),
        ('protection_policy', 'VMPP ref', 'RO', 'OpaqueRef:NULL'),
        ('snapshot_schedule', 'VMSS ref', 'RO', 'OpaqueRef:NULL'),
        ('is_vmss_snapshot', 'bool', 'RO', 'false'),
        ('appliance', 'VM_appliance ref', 'RO', 'OpaqueRef:NULL'),
        ('start_delay', 'int', 'RO', '0'),
        ('shutdown_delay', 'int', 'RO', '0'),
        ('order', 'int', 'RO', '0'),
        ('VGPUs', 'VGPU ref set', 'RO', ''),
        ('attached_PCIs', 'PCI ref set', 'RO', ''),
        ('suspend_SR', 'SR ref', 'RW', 'OpaqueRef:NULL'),
        ('version', 'int', 'RO', '0'),
        ('generation_id', 'string', 'RO', '"0:0"'),
        ('hardware_platform_version', 'int', 'RW', '0'),
        ('has_vendor_device', 'bool', 'RO', 'false'),
        ('requires_reboot', 'bool', 'RO', 'false'),
        ('reference_label', 'string', 'RO', '""'),
        ('domain_type', 'enum domain_type', 'RO', 'unspecified'),
        ('NVRAM', '(string -> string) map', 'RO', '{}'),
        ('pending_guidances', 'enum update_guidances set', 'RO', '{}'),
        ('pending_guidances_recommended', 'enum update_guidances set', 'RO', '{}'),
        ('pending_guidances_full', 'enum update_guidances set', 'RO', '{}'),
    ],
    'VM_guest_metrics': [
        ('uuid', 'string', 'RO', ''),
        ('os_version', '(string -> string) map', 'RO', ''),
        ('PV_drivers_version', '(string -> string) map', 'RO', ''),
        ('PV_drivers_up_to_date', 'bool', 'RO', ''),
        ('networks', '(string -> string) map', 'RO', ''),
        ('other', '(string -> string) map', 'RO', ''),
        ('last_updated', 'datetime', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', '{}'),
        ('live', 'bool', 'RO', 'false'),
        ('can_use_hotplug_vbd', 'enum tristate_type', 'RO', 'unspecified'),
        ('can_use_hotplug_vif', 'enum tristate_type', 'RO', 'unspecified'),
        ('PV_drivers_detected', 'bool', 'RO', 'false'),
    ],
    'network': [
        ('uuid', 'string', 'RO', ''),
        ('name_label', 'string', 'RW', '""'),
        ('name_description', 'string', 'RW', '""'),
        ('allowed_operations', 'enum network_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum network_operations) map', 'RO', '{}'),
        ('VIFs', 'VIF ref set', 'RO', ''),
        ('PIFs', 'PIF ref set', 'RO', ''),
        ('MTU', 'int', 'RW', '1500'),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('bridge', 'string', 'RO', '""'),
        ('managed', 'bool', 'RO', 'true'),
        ('blobs', '(string -> blob ref) map', 'RO', '{}'),
        ('tags', 'string set', 'RW', '{}'),
        ('default_locking_mode', 'enum network_default_locking_mode', 'RO', 'unlocked'),
        ('assigned_ips', '(VIF ref -> string) map', 'RO', '{}'),
        ('purpose', 'enum network_purpose set', 'RO', '{}'),
    ],
    'PIF': [
        ('uuid', 'string', 'RO', ''),
        ('device', 'string', 'RO', ''),
        ('network', 'network ref', 'RO', ''),
        ('host', 'host ref', 'RO', ''),
        ('MAC', 'string', 'RO', ''),
        ('MTU', 'int', 'RO', ''),
        ('VLAN', 'int', 'RO', ''),
        ('metrics', 'PIF_metrics ref', 'RO', ''),
        ('physical', 'bool', 'RO', 'false'),
        ('currently_attached', 'bool', 'RO', 'true'),
        ('ip_configuration_mode', 'enum ip_configuration_mode', 'RO', 'None'),
        ('IP', 'string', 'RO', '""'),
        ('netmask', 'string', 'RO', '""'),
        ('gateway', 'string', 'RO', '""'),
        ('DNS', 'string', 'RO', '""'),
        ('bond_slave_of', 'Bond ref', 'RO', 'Null'),
        ('bond_master_of', 'Bond ref set', 'RO', ''),
        ('VLAN_master_of', 'VLAN ref', 'RO', 'Null'),
        ('VLAN_slave_of', 'VLAN ref set', 'RO', ''),
        ('management', 'bool', 'RO', 'false'),
        ('other_config', '(string -> string) map', 'RW', '{}'),
        ('disallow_unplug', 'bool', 'RO', 'false'),
        ('tunnel_access_PIF_of', 'tunnel ref set', 'RO', ''),
        ('tunnel_transport_PIF_of', 'tunnel ref set', 'RO', ''),
        ('ipv6_configuration_mode', 'enum ipv6_configuration_mode', 'RO', 'None'),
        ('IPv6', 'string set', 'RO', '{}'),
        ('ipv6_gateway', 'string', 'RO', '""'),
        ('primary_address_type', 'enum primary_address_type', 'RO', 'IPv4'),
        ('managed', 'bool', 'RO', 'true'),
        ('properties', '(string -> string) map', 'RO', '{}'),
        ('capabilities', 'string set', 'RO', '{}'),
        ('igmp_snooping_status', 'enum pif_igmp_status', 'RO', 'unknown'),
        ('sriov_physical_PIF_of', 'network_sriov ref set', 'RO', ''),
        ('sriov_logical_PIF_of', 'network_sriov ref set', 'RO', ''),
        ('PCI', 'PCI ref', 'RO', 'OpaqueRef:NULL'),
    ],
    'VIF': [
        ('uuid', 'string', 'RO', ''),
        ('allowed_operations', 'enum vif_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum vif_operations) map', 'RO', '{}'),
        ('device', 'string', 'RO', ''),
        ('network', 'network ref', 'RO', ''),
        ('VM', 'VM ref', 'RO', ''),
        ('MAC', 'string', 'RO', ''),
        ('MTU', 'int', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('currently_attached', 'bool', 'RO', 'false'),
        ('status_code', 'int', 'RO', ''),
        ('status_detail', 'string', 'RO', ''),
        ('runtime_properties', '(string -> string) map', 'RO', ''),
        ('qos_algorithm_type', 'string', 'RW', ''),
        ('qos_algorithm_params', '(string -> string) map', 'RW', ''),
        ('qos_supported_algorithms', 'string set', 'RO', ''),
        ('MAC_autogenerated', 'bool', 'RO', 'false'),
        ('locking_mode', 'enum vif_locking_mode', 'RO', 'network_default'),
        ('ipv4_allowed', 'string set', 'RO', '{}'),
        ('ipv6_allowed', 'string set', 'RO', '{}'),
        ('ipv4_configuration_mode', 'enum vif_ipv4_configuration_mode', 'RO', 'None'),
        ('ipv4_addresses', 'string set', 'RO', '{}'),
        ('ipv4_gateway', 'string', 'RO', '""'),
        ('ipv6_configuration_mode', 'enum vif_ipv6_configuration_mode', 'RO', 'None'),
        ('ipv6_addresses', 'string set', 'RO', '{}'),
        ('ipv6_gateway', 'string', 'RO', '""'),
    ],
    'SR': [
        ('uuid', 'string', 'RO', ''),
        ('name_label', 'string', 'RO', '""'),
        ('name_description', 'string', 'RO', '""'),
        ('allowed_operations', 'enum storage_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum storage_operations) map', 'RO', '{}'),
        ('VDIs', 'VDI ref set', 'RO', ''),
        ('PBDs', 'PBD ref set', 'RO', ''),
        ('virtual_allocation', 'int', 'RO', ''),
        ('physical_utilisation', 'int', 'RO', ''),
        ('physical_size', 'int', 'RO', ''),
        ('type', 'string', 'RO', ''),
        ('content_type', 'string', 'RO', ''),
        ('shared', 'bool', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('tags', 'string set', 'RW', '{}'),
        ('sm_config', '(string -> string) map', 'RW', '{}'),
        ('blobs', '(string -> blob ref) map', 'RO', '{}'),
        ('local_cache_enabled', 'bool', 'RO', 'false'),
        ('introduced_by', 'DR_task ref', 'RO', 'OpaqueRef:NULL'),
        ('clustered', 'bool', 'RO', 'false'),
        ('is_tools_sr', 'bool', 'RO', 'false'),
    ],
    'PBD': [
        ('uuid', 'string', 'RO', ''),
        ('host', 'host ref', 'RO', ''),
        ('SR', 'SR ref', 'RO', ''),
        ('device_config', '(string -> string) map', 'RO', ''),
        ('currently_attached', 'bool', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', '{}'),
    ],
    'VDI': [
        ('uuid', 'string', 'RO', ''),
        ('name_label', 'string', 'RO', '""'),
        ('name_description', 'string', 'RO', '""'),
        ('allowed_operations', 'enum vdi_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum vdi_operations) map', 'RO', '{}'),
        ('SR', 'SR ref', 'RO', ''),
        ('VBDs', 'VBD ref set', 'RO', ''),
        ('crash_dumps', 'crashdump ref set', 'RO', ''),
        ('virtual_size', 'int', 'RO', ''),
        ('physical_utilisation', 'int', 'RO', ''),
        ('type', 'enum vdi_type', 'RO', ''),
        ('sharable', 'bool', 'RO', ''),
        ('read_only', 'bool', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('storage_lock', 'bool', 'RO', ''),
        ('location', 'string', 'RO', '""'),
        ('managed', 'bool', 'RO', ''),
        ('missing', 'bool', 'RO', ''),
        ('parent', 'VDI ref', 'RO', ''),
        ('xenstore_data', '(string -> string) map', 'RW', '{}'),
        ('sm_config', '(string -> string) map', 'RW', '{}'),
        ('is_a_snapshot', 'bool', 'RO', 'false'),
        ('snapshot_of', 'VDI ref', 'RO', 'Null'),
        ('snapshots', 'VDI ref set', 'RO', ''),
        ('snapshot_time', 'datetime', 'RO', '19700101T00:00:00Z'),
        ('tags', 'string set', 'RW', '{}'),
        ('allow_caching', 'bool', 'RO', 'false'),
        ('on_boot', 'enum on_boot', 'RO', 'persist'),
        ('metadata_of_pool', 'pool ref', 'RO', 'OpaqueRef:NULL'),
        ('metadata_latest', 'bool', 'RO', 'false'),
        ('is_tools_iso', 'bool', 'RO', 'false'),
        ('cbt_enabled', 'bool', 'RO', 'false'),
    ],
    'VBD': [
        ('uuid', 'string', 'RO', ''),
        ('allowed_operations', 'enum vbd_operations set', 'RO', '{}'),
        ('current_operations', '(string -> enum vbd_operations) map', 'RO', '{}'),
        ('VM', 'VM ref', 'RO', ''),
        ('VDI', 'VDI ref', 'RO', ''),
        ('device', 'string', 'RO', '""'),
        ('userdevice', 'string', 'RW', ''),
        ('bootable', 'bool', 'RW', ''),
        ('mode', 'enum vbd_mode', 'RO', ''),
        ('type', 'enum vbd_type', 'RW', ''),
        ('unpluggable', 'bool', 'RW', 'true'),
        ('storage_lock', 'bool', 'RO', ''),
        ('empty', 'bool', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', ''),
        ('currently_attached', 'bool', 'RO', 'false'),
        ('status_code', 'int', 'RO', ''),
        ('status_detail', 'string', 'RO', ''),
        ('runtime_properties', '(string -> string) map', 'RO', ''),
        ('qos_algorithm_type', 'string', 'RW', ''),
        ('qos_algorithm_params', '(string -> string) map', 'RW', ''),
        ('qos_supported_algorithms', 'string set', 'RO', ''),
    ],
    'secret': [
        ('uuid', 'string', 'RO', ''),
        ('value', 'string', 'RW', ''),
        ('other_config', '(string -> string) map', 'RW', '{}'),
    ],
    # pool_update: xen-api doc/data/xenapi.json (not in Appendix A); see sim/pool_update.py.
    'pool_update': [
        ('uuid', 'string', 'RO', ''),
        ('name_label', 'string', 'RO', '""'),
        ('name_description', 'string', 'RO', '""'),
        ('version', 'string', 'RO', '""'),
        ('installation_size', 'int', 'RO', '0'),
        ('key', 'string', 'RO', '""'),
        ('after_apply_guidance', 'enum update_after_apply_guidance set', 'RO', '{}'),
        ('vdi', 'VDI ref', 'RO', ''),
        ('hosts', 'host ref set', 'RO', ''),
        ('other_config', '(string -> string) map', 'RW', '{}'),
        ('enforce_homogeneity', 'bool', 'RO', 'false'),
    ],
    'message': [
        ('uuid', 'string', 'RO', ''),
        ('name', 'string', 'RO', ''),
        ('priority', 'int', 'RO', ''),
        ('cls', 'enum cls', 'RO', ''),
        ('obj_uuid', 'string', 'RO', ''),
        ('timestamp', 'datetime', 'RO', ''),
        ('body', 'string', 'RO', ''),
    ],
}

# Canonical values of the enums we validate; other enums accept any string unchanged.
ENUMS = {
    "vm_power_state": ["Halted", "Paused", "Running", "Suspended"],
    "vbd_type": ["CD", "Disk", "Floppy"],
    "vbd_mode": ["RO", "RW"],
    "vdi_type": ["system", "user", "ephemeral", "suspend", "crashdump", "ha_statefile",
                 "metadata", "redo_log", "rrd", "pvs_cache", "cbt_metadata"],
    "task_status_type": ["pending", "success", "failure", "cancelling", "cancelled"],
    "cls": ["VM", "Host", "SR", "Pool", "VMPP", "VMSS", "PVS_proxy", "VDI", "Certificate"],
    "event_operation": ["add", "del", "mod"],
    "on_normal_exit": ["destroy", "restart"],
    "on_crash_behaviour": ["destroy", "coredump_and_destroy", "restart", "coredump_and_restart",
                           "preserve", "rename_restart"],
    "on_softreboot_behavior": ["soft_reboot", "destroy", "restart", "preserve"],
    "tristate_type": ["yes", "no", "unspecified"],
    "domain_type": ["hvm", "pv", "pv_in_pvh", "pvh", "unspecified"],
    "host_display": ["enabled", "disable_on_reboot", "disabled", "enable_on_reboot"],
    "on_boot": ["reset", "persist"],
    "vif_locking_mode": ["network_default", "locked", "unlocked", "disabled"],
    "network_default_locking_mode": ["unlocked", "disabled"],
    "ip_configuration_mode": ["None", "DHCP", "Static"],
    "ipv6_configuration_mode": ["None", "DHCP", "Static", "Autoconf"],
    "vif_ipv4_configuration_mode": ["None", "Static"],
    "vif_ipv6_configuration_mode": ["None", "Static"],
    "primary_address_type": ["IPv4", "IPv6"],
    "pif_igmp_status": ["enabled", "disabled", "unknown"],
    "telemetry_frequency": ["daily", "weekly", "monthly"],
    "update_sync_frequency": ["daily", "weekly"],
    "latest_synced_updates_applied_state": ["yes", "no", "unknown"],
    "host_numa_affinity_policy": ["any", "best_effort", "default_policy"],
    "update_after_apply_guidance": ["restartHVM", "restartPV", "restartHost", "restartXAPI"],
}

# Classes whose rows live in the simulated database (event is not a table).
TABLES = [c for c in FIELDS if c != "event"]
# xapi keeps these only in memory (datamodel PersistNothing): lost on restart.
VOLATILE_TABLES = ("session", "task")


class Kind(NamedTuple):
    """A parsed xapi type: kind is string|int|float|bool|datetime|ref|enum|set|map|record."""
    kind: str
    target: Optional[str] = None      # ref: the class; enum: the enum name
    elem: Optional["Kind"] = None     # set: element kind; map: value kind


class Field(NamedTuple):
    name: str
    kind: Kind
    rw: bool
    default: Any


_SCALARS = {"string": "string", "int": "int", "float": "float", "bool": "bool",
            "datetime": "datetime"}


def parse_type(text: str) -> Kind:
    text = text.strip()
    if text in _SCALARS:
        return Kind(_SCALARS[text])
    m = re.match(r"^\((.+?) -> (.+)\) map$", text)
    if m:
        return Kind("map", elem=parse_type(m.group(2)))
    if text.endswith(" set"):
        return Kind("set", elem=parse_type(text[:-4]))
    if text.endswith(" ref"):
        return Kind("ref", target=text[:-4])
    if text.startswith("enum "):
        return Kind("enum", target=text[5:])
    return Kind("record")


def _zero(kind: Kind) -> Any:
    return {"string": "", "int": 0, "float": 0.0, "bool": False, "datetime": EPOCH,
            "ref": NULL_REF, "set": [], "map": {}, "record": {}}.get(
                kind.kind, ENUMS.get(kind.target or "", [""])[0])


def parse_default(kind: Kind, text: str) -> Any:
    if text == "":
        return _zero(kind)
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if kind.kind == "bool":
        return text == "true"
    if kind.kind == "int":
        return int(text)
    if kind.kind == "float":
        return float(text)
    if kind.kind == "ref":
        return NULL_REF
    if kind.kind == "set":
        inner = text.strip("{}").strip()
        return [int(inner)] if inner else []
    if kind.kind == "map":
        return dict(re.findall(r'"([^"]*)" -> "([^"]*)"', text))
    return text


def _build_fields() -> Dict[str, Dict[str, Field]]:
    out = {}  # type: Dict[str, Dict[str, Field]]
    for cls, rows in FIELDS.items():
        table = {}
        for name, typ, rw, default in rows:
            kind = parse_type(typ)
            table[name] = Field(name, kind, rw == "RW", parse_default(kind, default))
        out[cls] = table
    return out


CLASSES = _build_fields()

# Child ref field -> parent set field kept in step (xapi's one-to-many relations).
RELATIONS = {
    ("VBD", "VM"): ("VM", "VBDs"),
    ("VBD", "VDI"): ("VDI", "VBDs"),
    ("VIF", "VM"): ("VM", "VIFs"),
    ("VIF", "network"): ("network", "VIFs"),
    ("VDI", "SR"): ("SR", "VDIs"),
    ("PBD", "SR"): ("SR", "PBDs"),
    ("PBD", "host"): ("host", "PBDs"),
    ("PIF", "host"): ("host", "PIFs"),
    ("PIF", "network"): ("network", "PIFs"),
    ("VM", "resident_on"): ("host", "resident_VMs"),
}


def format_datetime(when: datetime.datetime) -> str:
    return when.strftime("%Y%m%dT%H:%M:%SZ")


def now_string(clock: Any) -> str:
    return format_datetime(datetime.datetime.utcfromtimestamp(clock()))


def default_record(cls: str) -> Dict[str, Any]:
    return {name: _copy(f.default) for name, f in CLASSES[cls].items()}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# ---- wire conversion ---------------------------------------------------------------------

def encode(kind: Kind, value: Any) -> Any:
    """Stored value -> what goes into the XML-RPC response (int64 as strings, xapi style)."""
    k = kind.kind
    if k == "int":
        return str(int(value))
    if k == "float":
        return float(value)
    if k == "bool":
        return bool(value)
    if k == "datetime":
        return xmlrpc.client.DateTime(str(value))
    if k == "set":
        return [encode(kind.elem, v) for v in value]  # type: ignore
    if k == "map":
        return {str(key): encode(kind.elem, v) for key, v in value.items()}  # type: ignore
    if k == "record":
        return value
    return str(value)


def encode_record(cls: str, record: Dict[str, Any]) -> Dict[str, Any]:
    fields = CLASSES[cls]
    return {name: encode(fields[name].kind, value) for name, value in record.items()
            if name in fields}


def decode(kind: Kind, value: Any, name: str) -> Any:
    """A parameter from the wire -> stored form; leniency as in ocaml-rpc (§1.3)."""
    k = kind.kind
    bad = XapiFailure("FIELD_TYPE_ERROR", name)
    if k in ("string", "ref"):
        if not isinstance(value, str):
            raise bad
        return value
    if k == "int":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.match(r"^-?[0-9]+$", value.strip()):
            return int(value)
        raise bad
    if k == "float":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if k == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if k == "datetime":
        return decode_datetime(value, name)
    if k == "enum":
        if not isinstance(value, str):
            raise bad
        values = ENUMS.get(kind.target or "")
        if values is None:
            return value
        for canonical in values:
            if canonical.lower() == value.lower():
                return canonical
        raise XapiFailure("INVALID_VALUE", name, value)
    if k == "set":
        if not isinstance(value, list):
            raise bad
        return [decode(kind.elem, v, name) for v in value]  # type: ignore
    if k == "map":
        if not isinstance(value, dict):
            raise bad
        return {str(key): decode(kind.elem, v, name) for key, v in value.items()}  # type: ignore
    return value


def decode_datetime(value: Any, name: str) -> str:
    if isinstance(value, xmlrpc.client.DateTime):
        value = value.value
    if isinstance(value, datetime.datetime):
        return format_datetime(value)
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y%m%dT%H:%M:%SZ", "%Y%m%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ",
                    "%Y-%m-%dT%H:%M:%S"):
            try:
                return format_datetime(datetime.datetime.strptime(text, fmt))
            except ValueError:
                continue
    raise XapiFailure("FIELD_TYPE_ERROR", name)


def field(cls: str, name: str) -> Field:
    return CLASSES[cls][name]


def has_field(cls: str, name: str) -> bool:
    return name in CLASSES.get(cls, {})


def table_names() -> List[str]:
    return list(TABLES)
