"""The testbed's network plumbing: its bridge and subnets, each VM's network namespace (veth,
addresses) and the anchor process that holds the VM's mount namespace; running commands in there.

``NetworkMixin`` is part of ``Testbed``: it uses the host class's ``hash``, ``_state``,
``_clock``, ``_track`` and ``_ns_record``.
"""

import os
import subprocess
from typing import Any, Dict, List, Optional, Tuple

from xscontainer.testbed import config, naming, system
from xscontainer.testbed.system import TestbedError


class NetworkMixin:
    def _create_bridge(self, extra_subnets: int = 0, per_ns: int = 1) -> Tuple[int, List[int]]:
        """Claim the testbed's subnet (and extra_subnets more for shared namespaces' addresses,
        claimed by routing them, under the machine lock, to the namespaces' primary addresses)."""
        bridge = naming.bridge_name(self.hash)
        with system.MachineLock():
            used = naming.used_link_local_octets(system.ipv4_addresses_and_routes())
            octets = []  # type: List[int]
            for _ in range(1 + extra_subnets):
                octet = naming.choose_subnet_octet(self.hash, used | set(octets))
                if octet is None:
                    raise TestbedError("No free 169.254.N.0/24 subnet is left for a testbed.",
                                       code="TESTBED_NO_SUBNET")
                octets.append(octet)
            self._state.set(subnet_octet=octets[0], root_ip=naming.root_address(octets[0]),
                            extra_subnet_octets=octets[1:])
            system.run(["ip", "link", "add", bridge, "type", "bridge"])
            system.run(["ip", "addr", "add", naming.root_address(octets[0]) + "/24", "dev", bridge])
            system.run(["ip", "link", "set", bridge, "up"])
            per_namespace = naming.extra_subnets_per_namespace(per_ns) if extra_subnets else 0
            for position, extra in enumerate(octets[1:]):
                gateway = naming.vm_address(octets[0], position // per_namespace + 1)
                system.run(["ip", "route", "add", "169.254.%d.0/24" % extra, "via", gateway, "dev", bridge,
                            "onlink"])
        return octets[0], octets[1:]

    def _create_vm_network(self, record: Dict[str, Any]) -> None:
        netns, host_veth, peer = record["netns"], record["host_veth"], record["peer_veth"]
        system.run(["ip", "netns", "add", netns])
        system.run(["ip", "link", "add", host_veth, "type", "veth", "peer", "name", peer])
        system.run(["ip", "link", "set", host_veth, "master", self._state.get("bridge"), "up"])
        system.run(["ip", "link", "set", peer, "netns", netns])
        inside = ["ip", "-n", netns]
        system.run(inside + ["link", "set", peer, "name", "eth0"])
        system.run(inside + ["addr", "add", record["ip"] + "/24", "dev", "eth0"])
        extra_ips = record.get("extra_ips") or []
        if extra_ips:  # one `ip -batch` instead of hundreds of commands
            system.run(inside + ["-batch", "-"],
                       input_text="".join("addr add %s/32 dev eth0\n" % ip for ip in extra_ips))
        system.run(inside + ["link", "set", "eth0", "up"])
        system.run(inside + ["link", "set", "lo", "up"])

    def _start_anchor(self, name: str, vm_dir: str, netns: str) -> None:
        """A process that holds the VM's mount namespace (its own /run and /home) for its lifetime.

        `ip netns exec` is avoided on purpose: it remounts /sys, hiding the cgroup hierarchy from
        dockerd ("Devices cgroup isn't mounted").
        """
        script = 'mount --bind "$1" /run && mount --bind "$2" /home && exec sleep infinity'
        argv = ["nsenter", "--net=" + system.netns_path(netns), "--", "unshare", "--mount",
                "--propagation", "private", "--", "sh", "-c", script, "vm-anchor",
                os.path.join(vm_dir, "run"), os.path.join(vm_dir, "home")]
        log = os.path.join(vm_dir, "anchor.log")
        pid = system.spawn(argv, log)
        start = self._track("anchor", pid, name)
        self._state.set_vm(name, anchor_pid=pid, anchor_start=start)

        def ready() -> bool:
            try:
                with open("/proc/%d/comm" % pid) as handle:
                    return handle.read().strip() == "sleep"
            except OSError:
                return False

        def died() -> Optional[str]:
            return "it exited: %s" % system.tail(log) if not system.alive(pid, start) else None

        system.wait_until(ready, config.READY_TIMEOUT, "the namespaces of %s" % name, failed=died, clock=self._clock)

    def _anchor(self, vm: str) -> int:
        record = self._ns_record(vm)
        pid = record.get("anchor_pid")
        if not pid or not system.alive(pid, record.get("anchor_start")):
            raise TestbedError("VM %s is not running (its namespaces are gone); bring the testbed up."
                               % record["name"], code="TESTBED_VM_DOWN")
        return pid

    def vm_exec_argv(self, vm: str, argv: List[str]) -> List[str]:
        """The command line that runs argv inside the VM's network and mount namespaces."""
        return ["nsenter", "--target", str(self._anchor(vm)), "--net", "--mount", "--"] + list(argv)

    def vm_exec(self, vm: str, argv: List[str], input_text: Optional[str] = None, timeout: float = 120,
                check: bool = False) -> "subprocess.CompletedProcess":
        """Run argv inside the VM (its network and mount namespaces), capturing text output.

        The VMs share this machine's PID namespace: `pkill sshd` would hit every VM's sshd; use
        the VM's pid files (/run/sshd.pid, /var/run/docker.pid) instead.
        """
        return system.run(self.vm_exec_argv(vm, argv), check=check, input_text=input_text, timeout=timeout)
