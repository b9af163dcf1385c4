"""The testbed's xapi side: the simulator process, its VMs and the pool key, through XenAPI."""

import json
import logging
import os
from typing import Any, Dict, List, NamedTuple, Optional

from xscontainer import poolkeys
from xscontainer.errors import XSContainerError
from xscontainer.testbed.system import TestbedError
from xscontainer.xapi import Failure
from xscontainer.xapi.session import close_session, open_url_session

LOG = logging.getLogger(__name__)

ORIGINATOR = "xscontainer-testbed"


class PlannedVm(NamedTuple):
    name_label: str
    ip: str
    host_index: int  # position in the simulator's host list (round-robin over hosts)


class PoolVm(NamedTuple):
    name_label: str
    uuid: str
    host_uuid: str


def simulator_argv(python: str, xapi_dir: str, hosts: int, plugins_dir: str) -> List[str]:
    return [python, "-m", "xscontainer.sim.cli", "--dir", xapi_dir, "--hosts", str(hosts),
            "--plugins", plugins_dir, "--port", "0"]


def parse_ready_line(output: str) -> Optional[Dict[str, Any]]:
    """The simulator's ready line (a JSON object with xapi_url) from its stdout so far."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "xapi_url" in document:
            return document
    return None


def read_ready_line(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, "rb") as handle:
            return parse_ready_line(handle.read().decode("utf-8", "replace"))
    except OSError:
        return None


def populate(sim: Dict[str, Any], vms: List[PlannedVm]) -> "PoolResult":
    """Create and start the VMs in xapi, report their addresses, and read the pool key."""
    try:
        session = open_url_session(sim["xapi_url"], sim["username"], sim["password"])
    except XSContainerError as exc:
        raise TestbedError("Cannot log in to the xapi simulator: %s" % exc,
                           code="TESTBED_XAPI_FAILED") from exc
    try:
        api = session.xenapi
        host_uuids = [host["uuid"] for host in sim["hosts"]]
        host_refs = [api.host.get_by_uuid(uuid) for uuid in host_uuids]
        created = []
        for plan in vms:
            ref = api.VM.create({"name_label": plan.name_label})
            host_ref = host_refs[plan.host_index % len(host_refs)]
            api.VM.start_on(ref, host_ref, False, False)
            api.sim.set_guest_networks(ref, {"0/ip": plan.ip, "0/ipv4/0": plan.ip})
            created.append(PoolVm(plan.name_label, api.VM.get_uuid(ref),
                                  host_uuids[plan.host_index % len(host_uuids)]))
        keypair = poolkeys.ensure_pool_keypair(session)
    except (Failure, OSError) as exc:
        raise TestbedError("The xapi simulator refused to set up the pool: %s" % (exc,),
                           code="TESTBED_XAPI_FAILED") from exc
    finally:
        close_session(session)
    return PoolResult(created, keypair.public_line)


def pin_host_keys(sim: Dict[str, Any], keys: Dict[str, str]) -> None:
    """Pin each VM's SSH host key (vm uuid -> base64 blob), bound to the VM, as prepare-vm does
    once the administrator verified it: the testbed knows the keys it generated, so it stands
    for that administrator (the monitor never trusts a key on first use)."""
    from xscontainer.vmsettings import HOSTKEY_KEY, HOSTKEY_VM_KEY
    from xscontainer.xapi.maps import set_map_key
    try:
        session = open_url_session(sim["xapi_url"], sim["username"], sim["password"])
    except XSContainerError as exc:
        raise TestbedError("Cannot log in to the xapi simulator: %s" % exc, code="TESTBED_XAPI_FAILED") from exc
    try:
        api = session.xenapi
        for uuid, key in sorted(keys.items()):
            ref = api.VM.get_by_uuid(uuid)
            set_map_key(api.VM, ref, HOSTKEY_KEY, key)
            set_map_key(api.VM, ref, HOSTKEY_VM_KEY, uuid)
    except (Failure, OSError) as exc:
        raise TestbedError("The xapi simulator refused to pin the VMs' host keys: %s" % (exc,),
                           code="TESTBED_XAPI_FAILED") from exc
    finally:
        close_session(session)


class PoolResult(NamedTuple):
    vms: List[PoolVm]
    public_key_line: str


def monitor_module_exists() -> bool:
    import xscontainer
    return os.path.exists(os.path.join(os.path.dirname(xscontainer.__file__), "monitor", "cli.py"))


def monitor_argv(python: str, inventory: str) -> List[str]:
    # Logs go to stderr, which the testbed sends to its own log file (not /var/log).
    return [python, "-m", "xscontainer.monitor.cli", "--inventory", inventory, "--log-file", "-"]
