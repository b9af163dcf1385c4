"""A testbed: an xapi simulator plus VMs that are network and mount namespaces running real sshd
and dockerd, reached from this machine's root namespace over a bridge, as dom0 reaches guests.

Layout of DIR:
    testbed.json            what exists (see state.py); `down` works from it and from name scans
    logs/                   simulator and monitor output
    xapi/                   the simulator's own directory
    image/rootfs.tar        busybox root file system imported into every engine
    bin/xe                  xe bound to the simulator
    vms/<name>/run          bind-mounted over /run in the VM: docker.sock, sshd.pid, docker.pid
    vms/<name>/home         bind-mounted over /home in the VM: core's authorized_keys
    vms/<name>/docker       the engine's data root
    vms/<name>/*.log, sshd_config, ssh_host_ed25519_key(.pub)
"""

import concurrent.futures
import logging
import os
import shutil
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from xscontainer.testbed import config, image, naming, pool, system
from xscontainer.testbed.daemons import DaemonsMixin
from xscontainer.testbed.keys import KeysMixin, ensure_login_user
from xscontainer.testbed.network import NetworkMixin
from xscontainer.testbed.state import STATE_FILE, State
from xscontainer.testbed.teardown import TeardownMixin
from xscontainer.testbed.system import TestbedError

LOG = logging.getLogger(__name__)

REQUIRED_TOOLS = ("ip", "nsenter", "unshare", "mount", "sleep", "dockerd", "containerd", "sshd",
                  "ssh-keygen", "useradd", "groupadd", "usermod")


def default_plugins_dir() -> str:
    import xscontainer
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(xscontainer.__file__))), "plugins")


def missing_prerequisites() -> List[str]:
    """Reasons this machine cannot run a testbed (empty when it can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("the testbed needs root (network namespaces, bridges, dockerd)")
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool, path=system.STANDARD_PATH) is None:
            reasons.append("%s is not installed" % tool)
    try:
        image.find_busybox()
    except TestbedError as exc:
        reasons.append(str(exc))
    return reasons


class Testbed(NetworkMixin, DaemonsMixin, KeysMixin, TeardownMixin):
    """One testbed, identified by its directory; usable from any process once it is up.

    This module brings the testbed up and describes it; the network plumbing (``network.py``),
    the VMs' daemons (``daemons.py``), the keys (``keys.py``) and the teardown (``teardown.py``)
    are mixins of this class, as docker-py's API areas are of its client.
    """

    __test__ = False  # tests import it; pytest must not collect it for its name

    def __init__(self, directory: str, python: Optional[str] = None, plugins_dir: Optional[str] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = os.path.realpath(directory)
        self.hash = naming.testbed_hash(self.directory)
        self._python = python or sys.executable
        self._plugins_dir = plugins_dir or default_plugins_dir()
        self._clock = clock
        self._state = State(os.path.join(self.directory, STATE_FILE))

    # ------------------------------------------------------------ paths

    def _path(self, *parts: str) -> str:
        return os.path.join(self.directory, *parts)

    def vm_dir(self, vm: str) -> str:
        """The directory of the namespace serving vm (its own, unless it shares one)."""
        return self._path("vms", self._ns_record(vm)["name"])

    def docker_socket(self, vm: str) -> str:
        """The VM's /var/run/docker.sock, as a path on this machine."""
        return os.path.join(self.vm_dir(vm), "run", "docker.sock")

    # ------------------------------------------------------------ up

    def up(self, hosts: int = 1, vms: int = 3, containers: int = 4, monitor: bool = False,
           xapi: bool = True, vm_options: Optional[Dict[str, Dict[str, Any]]] = None,
           burner_cpus: str = config.DEFAULT_BURNER_CPUS, addresses_per_namespace: int = 1) -> Dict[str, Any]:
        """Bring the testbed up (tearing down whatever this directory held) and return info().

        vm_options: per VM name, {"allow_streamlocal": bool}. xapi=False skips the simulator (the
        VMs then trust a key pair of the testbed's own, for work on the VM side alone).

        addresses_per_namespace=K > 1 (for scale benchmarks): VMs share namespaces, K per
        namespace (vm1..vmK share the namespace of vm1, vm(K+1).. that of vm(K+1), ...). Each
        namespace runs one sshd listening on all its addresses and one dockerd; every xapi VM gets
        an address of its own on that namespace's eth0 (the first VM the namespace's primary
        address, the others addresses in extra 169.254.E.0/24 subnets of that namespace, routed
        to it through its primary address), so N VMs cost N/K namespaces. VMs of one namespace
        see the same engine and containers; the namespace operations (docker, vm_exec, stop_sshd,
        ...) on any of them act on the shared namespace.
        """
        reasons = missing_prerequisites()
        if reasons:
            raise TestbedError("Cannot build a testbed here: %s." % "; ".join(reasons),
                               code="TESTBED_UNSUPPORTED")
        per_ns = addresses_per_namespace
        max_vms = naming.MAX_VMS if per_ns == 1 else naming.MAX_SHARED_VMS
        if (not 1 <= vms <= max_vms or hosts < 1 or containers < 0 or per_ns < 1
                or naming.namespaces_needed(vms, per_ns) > naming.MAX_VMS):
            raise TestbedError("Invalid size: %d hosts, %d VMs (%d per namespace), %d containers."
                               % (hosts, vms, per_ns, containers), code="INVALID_ARGUMENT")
        self.down()
        for sub in ("vms", "xapi", "logs", "bin", "image"):
            shutil.rmtree(self._path(sub), ignore_errors=True)
            os.makedirs(self._path(sub))
        started = self._clock()
        self._state.reset(dir=self.directory, hash=self.hash, status="starting",
                          bridge=naming.bridge_name(self.hash), hosts_wanted=hosts,
                          containers_wanted=containers, burner_cpus=burner_cpus)
        try:
            self._up(hosts, vms, containers, monitor, xapi, vm_options or {}, burner_cpus, per_ns)
        except BaseException:
            LOG.exception("testbed %s: up failed; tearing down what was built", self.directory)
            try:
                self.down()
            except Exception:  # keep the original error; the state file still lists leftovers
                LOG.exception("testbed %s: down after a failed up failed too", self.directory)
            raise
        self._state.set(status="up", up_seconds=round(self._clock() - started, 2))
        LOG.info("testbed %s: up in %.1f s", self.directory, self._clock() - started)
        return self.info()

    def _up(self, hosts: int, vms: int, containers: int, monitor: bool, xapi: bool,
            vm_options: Dict[str, Dict[str, Any]], burner_cpus: str, per_ns: int = 1) -> None:
        ensure_login_user()
        tar_path = self._path("image", "rootfs.tar")
        image.write_rootfs_tar(image.find_busybox(), tar_path)
        shared = per_ns > 1
        extra_count = naming.extra_subnets_needed(vms, per_ns) if shared else 0
        octet, extra_octets = self._create_bridge(extra_count, per_ns)
        plans = []
        owners = []
        records = {}  # type: Dict[str, Dict[str, Any]]
        for index in range(1, vms + 1):
            name = naming.vm_name(index)
            options = vm_options.get(name, {})
            owner = naming.namespace_owner(index, per_ns)
            number = naming.namespace_number(index, per_ns)
            position = naming.namespace_position(index, per_ns)
            if position == 0:
                address = naming.vm_address(octet, number)
            else:
                address = naming.extra_address(naming.namespace_subnets(extra_octets, number, per_ns), position)
            plan = pool.PlannedVm(name, address, (index - 1) % hosts)
            plans.append(plan)
            if owner != index:
                records[name] = dict(name=name, index=index, ip=plan.ip, host_index=plan.host_index,
                                     ns_owner=naming.vm_name(owner))
                records[naming.vm_name(owner)]["extra_ips"].append(plan.ip)
                continue
            owners.append(name)
            records[name] = dict(name=name, index=index, ip=plan.ip,
                                 netns=naming.netns_name(self.hash, index),
                                 host_veth=naming.host_veth_name(self.hash, index),
                                 peer_veth=naming.peer_veth_name(self.hash, index),
                                 cgroup_parent=naming.cgroup_parent(self.hash, index),
                                 allow_streamlocal=bool(options.get("allow_streamlocal", True)),
                                 containers=naming.sample_containers(containers),
                                 host_index=plan.host_index)
            if shared:
                records[name].update(shared=True, extra_ips=[],
                                     extra_subnets=naming.namespace_subnets(extra_octets, number, per_ns))
        self._state.set_vms(records)
        # Threads owned here: the executor joins them all before the with-block ends.
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(owners) + 1) as executor:
            pool_future = executor.submit(self._start_pool, hosts, plans) if xapi else None
            vm_futures = [executor.submit(self._start_vm, name, tar_path, burner_cpus) for name in owners]
        for future in vm_futures + ([pool_future] if pool_future else []):
            future.result()  # re-raises the first failure
        if pool_future is not None:
            public_line = pool_future.result()
        else:
            from xscontainer.poolkeys import generate_keypair
            pair = generate_keypair()
            key_path = self._path("testbed_key")
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(pair.private_pem)
            public_line = pair.public_line
        for name in owners:
            self.authorize_key(name, public_line)
        if xapi:
            self._pin_host_keys()
        if xapi and monitor:
            self._start_monitors()

    # ------------------------------------------------------------ the xapi side

    def _start_pool(self, hosts: int, plans: List[pool.PlannedVm]) -> str:
        out_path = self._path("logs", "sim.out")
        argv = pool.simulator_argv(self._python, self._path("xapi"), hosts, self._plugins_dir)
        pid = system.spawn(argv, out_path, stderr_path=self._path("logs", "sim.err"), cwd=self.directory)
        start = self._track("xapi-sim", pid)

        def died() -> Optional[str]:
            if not system.alive(pid, start):
                return "it exited: %s" % system.tail(self._path("logs", "sim.err"))
            return None

        sim = system.wait_until(lambda: pool.read_ready_line(out_path), config.READY_TIMEOUT,
                                "the xapi simulator", failed=died, clock=self._clock)
        self._state.set(xapi=sim)
        result = pool.populate(sim, plans)
        self._state.set_vms({created.name_label: {"uuid": created.uuid, "host_uuid": created.host_uuid}
                             for created in result.vms})
        self._write_xe(sim)
        return result.public_key_line

    def _write_xe(self, sim: Dict[str, Any]) -> None:
        path = self._path("bin", "xe")
        with open(path, "w") as handle:
            handle.write(config.xe_script(self._python, sim.get("unix_socket", "")))
        os.chmod(path, 0o755)

    def _start_monitors(self) -> None:
        if not pool.monitor_module_exists():
            LOG.info("testbed %s: no monitor in this tree yet; not starting one", self.directory)
            return
        sim = self._state.get("xapi") or {}
        for host in sim.get("hosts", []):
            log = self._path("logs", "monitor-%s.log" % host["name_label"].replace("/", "-"))
            pid = system.spawn(pool.monitor_argv(self._python, host["inventory"]), log,
                               env=system.child_env({"XSCONTAINER_XAPI_SOCKET": sim["unix_socket"],
                                                     "XSCONTAINER_INVENTORY": host["inventory"],
                                                     "XSCONTAINER_RRDD_SOCKET": host.get("rrdd_socket", "")}))
            self._track("monitor", pid)

    def xapi_session(self):
        """A XenAPI session logged in to the simulator over its URL (close it with close_session)."""
        from xscontainer.xapi.session import open_url_session
        sim = self._state.get("xapi")
        if not sim:
            raise TestbedError("This testbed has no xapi simulator.", code="TESTBED_NO_XAPI")
        return open_url_session(sim["xapi_url"], sim["username"], sim["password"])

    # ------------------------------------------------------------ a VM

    def _start_vm(self, name: str, tar_path: str, burner_cpus: str) -> None:
        record = self._state.vm(name)
        vm_dir = self._path("vms", name)
        self._prepare_vm_files(name, vm_dir, record)
        self._create_vm_network(record)
        self._start_anchor(name, vm_dir, record["netns"])
        dockerd = self._spawn_dockerd(name)
        sshd = self._spawn_sshd(name)
        self._wait_dockerd(name, dockerd)
        self._wait_sshd(name, sshd)
        self.docker(name, ["import", tar_path, naming.IMAGE_TAG])
        for container in record["containers"]:
            self.docker(name, config.sample_run_args(container, record["ip"], burner_cpus),
                        check=container != "exited")
            if container == "sleeper":
                self.docker(name, ["pause", container])
        LOG.info("testbed %s: %s up at %s", self.directory, name, record["ip"])

    # ------------------------------------------------------------ bookkeeping

    def _track(self, role: str, pid: int, vm: Optional[str] = None) -> Optional[int]:
        start = system.start_time(pid)
        self._state.add_process(role, pid, start, vm)
        return start

    def _vm_record(self, vm: str) -> Dict[str, Any]:
        for record in self._state.get("vms", {}).values():
            if vm in (record.get("name"), record.get("uuid")):
                return record
        raise TestbedError("This testbed has no VM %r." % vm, code="TESTBED_NO_SUCH_VM")

    def _ns_record(self, vm: str) -> Dict[str, Any]:
        """The record of the VM owning the namespace that serves vm (vm's own, unless shared)."""
        record = self._vm_record(vm)
        owner = record.get("ns_owner")
        if not owner:
            return record
        found = self._state.vm(owner)
        if found is None:
            raise TestbedError("VM %s shares the namespace of %s, which this testbed does not have."
                               % (record["name"], owner), code="TESTBED_NO_SUCH_VM")
        return found

    def vm_names(self) -> List[str]:
        records = self._state.get("vms", {}).values()
        return [record["name"] for record in sorted(records, key=lambda r: r["index"])]

    def info(self) -> Dict[str, Any]:
        """Everything a test or the CLI needs about the testbed, as JSON-able data."""
        self._state.reload()
        data = self._state.snapshot()
        sim = data.get("xapi") or {}
        vms = []
        by_index = sorted(data.get("vms", {}).values(), key=lambda r: r["index"])
        for record in by_index:
            name = record["name"]
            ns = data["vms"].get(record.get("ns_owner") or name, record)
            description = {
                "uuid": record.get("uuid"),
                "name_label": name,
                "ip": record["ip"],
                "host_uuid": record.get("host_uuid"),
                "ssh_port": config.SSH_PORT,
                "ssh_user": config.LOGIN_USER,
                "ssh_host_key": ns.get("ssh_host_key"),
                "ssh_host_key_type": ns.get("ssh_host_key_type"),
                "docker_socket": os.path.join(self.directory, "vms", ns["name"], "run", "docker.sock"),
                "netns": ns["netns"],
                "allow_streamlocal": ns.get("allow_streamlocal", True),
                "containers": [config.sample_description(c, ns["ip"]) for c in ns.get("containers", [])],
            }
            if ns.get("shared"):
                description["namespace_of"] = ns["name"]  # the VM whose namespace serves this one
            vms.append(description)
        return {
            "dir": self.directory,
            "status": data.get("status", "down"),
            "xapi_url": sim.get("xapi_url"),
            "unix_socket": sim.get("unix_socket"),
            "username": sim.get("username"),
            "password": sim.get("password"),
            "pool_uuid": sim.get("pool_uuid"),
            "hosts": [{"uuid": h["uuid"], "name_label": h["name_label"], "inventory": h.get("inventory"),
                       "rrdd_socket": h.get("rrdd_socket")}
                      for h in sim.get("hosts", [])],
            "vms": vms,
            "xe": self._path("bin", "xe") if sim else None,
            "bridge": data.get("bridge"),
            "root_ip": data.get("root_ip"),
            "image": naming.IMAGE_TAG,
            "up_seconds": data.get("up_seconds"),
        }
