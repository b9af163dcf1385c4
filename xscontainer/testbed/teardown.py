"""Tearing a testbed down: every process it started or that runs in its namespaces and
cgroups, then its namespaces, links, mounts and cgroups; works from the state file and from
name scans, so a half-built or crashed testbed goes too.

``TeardownMixin`` is part of ``Testbed``: it uses the host class's ``directory``, ``hash``,
``_state``, ``_path`` and ``_clock``.
"""

import os
import shutil
import signal
from typing import List

from xscontainer.testbed import naming, system
from xscontainer.testbed.system import TestbedError


class TeardownMixin:
    def down(self, grace: float = 3.0) -> None:
        """Stop everything the testbed started and remove its namespaces, links and cgroups.

        Works on a half-built testbed and when nothing is left (then it does nothing). Raises
        TestbedError listing what could not be removed; the state file then stays for a retry.
        """
        self._state.reload()
        data = self._state.snapshot()
        prefix = "xstb-%s-" % self.hash
        records = list(data.get("vms", {}).values())
        netns = set(r["netns"] for r in records if r.get("netns"))
        netns.update(n for n in system.netns_names() if n.startswith(prefix))
        cgroups = set(r["cgroup_parent"] for r in records if r.get("cgroup_parent"))
        cgroups.update(self._scan_cgroup_parents(prefix))
        anchors = [(r.get("anchor_pid"), r.get("anchor_start")) for r in records if r.get("anchor_pid")]

        daemons = set(p["pid"] for p in data.get("processes", []) if p["role"] != "anchor"
                      and system.alive(p["pid"], p["start"]))
        inside = self._scan(netns, anchors, cgroups)
        for record in records:
            for pidfile in ("sshd.pid", "docker.pid"):
                # Daemons restarted by hand (vm-exec) are known only by their pid files.
                pid = system.read_pidfile(self._path("vms", record["name"], "run", pidfile))
                if pid and pid in inside:
                    daemons.add(pid)
        if daemons:
            # Graceful first: dockerd and the simulator get to close their files.
            system.stop_pids(daemons - self._protected(), grace, self._clock)
        for _ in range(5):
            victims = self._scan(netns, anchors, cgroups) - self._protected()
            for cgroup in cgroups:
                system.thaw_cgroups(cgroup)
            if not victims:
                break
            system.signal_pids(victims, signal.SIGKILL)
            system.wait_gone(victims, 10, self._clock)

        leftovers = []  # type: List[str]
        survivors = self._scan(netns, anchors, cgroups) - self._protected()
        leftovers.extend("process %d (%s)" % (pid, system.command_line(pid)) for pid in sorted(survivors))
        if not survivors:
            for cgroup in cgroups:
                try:
                    system.wait_until(lambda: not system.remove_cgroups(cgroup), 10,
                                      "cgroup %s to empty" % cgroup, clock=self._clock)
                except TestbedError:
                    leftovers.extend("cgroup " + d for d in system.cgroup_dirs(cgroup))
        for name in sorted(netns):
            if os.path.exists(system.netns_path(name)):
                system.run(["ip", "netns", "delete", name], check=False)
        links = set(r.get("host_veth") for r in records if r.get("host_veth"))
        links.update(r.get("peer_veth") for r in records if r.get("peer_veth"))
        links.update(self._scan_links())
        if data.get("bridge"):
            links.add(data["bridge"])
        links.add(naming.bridge_name(self.hash))
        for link in sorted(links, key=lambda l: l == naming.bridge_name(self.hash)):
            if system.link_exists(link):
                system.run(["ip", "link", "delete", link], check=False)
        for mount_point in self._mounts_below_dir():
            system.run(["umount", "-l", mount_point], check=False)

        leftovers.extend("network namespace " + n for n in sorted(netns) if os.path.exists(system.netns_path(n)))
        leftovers.extend("link " + l for l in sorted(links) if system.link_exists(l))
        leftovers.extend("mount " + m for m in self._mounts_below_dir())
        if leftovers:
            raise TestbedError("down left %s" % ", ".join(leftovers), code="TESTBED_LEFTOVERS",
                               leftovers=leftovers)
        socket_dir = os.path.dirname((data.get("xapi") or {}).get("unix_socket") or "")
        if socket_dir and socket_dir != self._path("xapi") and os.path.basename(socket_dir).startswith("xsc-"):
            # The simulator's short socket directory, left behind only if it was killed.
            shutil.rmtree(socket_dir, ignore_errors=True)
        for record in records:
            for sub in ("run", "docker"):
                shutil.rmtree(self._path("vms", record["name"], sub), ignore_errors=True)
        if data:
            self._state.set(status="down", processes=[])

    def _protected(self) -> set:
        """This process and its ancestors: never ours to kill, whatever a scan finds."""
        protected = {1, os.getpid()}
        parents = system.parent_map()
        pid = os.getpid()
        while pid in parents and parents[pid] not in protected and parents[pid] > 0:
            pid = parents[pid]
            protected.add(pid)
        return protected

    def _scan(self, netns, anchors, cgroups) -> set:
        """Every process inside the testbed's VMs, with all their descendants."""
        found = set()
        own_net = system.ns_inode("/proc/self/ns/net")
        own_mnt = system.ns_inode("/proc/self/ns/mnt")
        for name in netns:
            inode = system.ns_inode(system.netns_path(name))
            if inode is not None and inode != own_net:
                found |= system.pids_in_namespace("net", inode)
        for pid, start in anchors:
            if system.alive(pid, start):
                inode = system.ns_inode("/proc/%d/ns/mnt" % pid)
                if inode is not None and inode != own_mnt:
                    found |= system.pids_in_namespace("mnt", inode)
        for cgroup in cgroups:
            found |= system.cgroup_pids(cgroup)
        for proc in self._state.get("processes", []):
            if system.alive(proc["pid"], proc["start"]):
                found.add(proc["pid"])
        # A simulator or monitor started just before `up` was killed is in no namespace and may
        # be unrecorded: it names this directory on its command line.
        for pid in system.all_pids():
            line = system.command_line(pid)
            if self.directory + "/" in line and ("xscontainer.sim.cli" in line or "xscontainer.monitor.cli" in line):
                found.add(pid)
        return system.with_descendants(found) if found else found

    @staticmethod
    def _scan_cgroup_parents(prefix: str) -> List[str]:
        found = set()
        try:
            hierarchies = os.listdir(system.CGROUP_ROOT)
        except OSError:
            return []
        for hierarchy in [""] + hierarchies:
            try:
                entries = os.listdir(os.path.join(system.CGROUP_ROOT, hierarchy))
            except OSError:
                continue
            found.update(e for e in entries if e.startswith(prefix))
        return sorted(found)

    def _scan_links(self) -> List[str]:
        try:
            names = os.listdir("/sys/class/net")
        except OSError:
            return []
        stems = ("xv" + self.hash[:7], "xp" + self.hash[:7])
        return [n for n in names if n.startswith(stems) and n[len(stems[0]):].isdigit()]

    def _mounts_below_dir(self) -> List[str]:
        points = []
        try:
            with open("/proc/self/mountinfo") as handle:
                for line in handle:
                    point = line.split()[4].replace("\\040", " ")
                    if point == self.directory or point.startswith(self.directory + "/"):
                        points.append(point)
        except OSError:
            pass
        return sorted(points, reverse=True)
