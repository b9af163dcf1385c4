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
import pwd
import grp
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from xscontainer.testbed import config, image, naming, pool, system
from xscontainer.testbed.state import STATE_FILE, State
from xscontainer.testbed.system import TestbedError

LOG = logging.getLogger(__name__)

REQUIRED_TOOLS = ("ip", "nsenter", "unshare", "mount", "sleep", "dockerd", "containerd", "sshd",
                  "ssh-keygen", "useradd", "groupadd", "usermod")
READY_TIMEOUT = 60.0


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


def ensure_login_user() -> None:
    """Create the docker group and the `core` user on this machine (the VMs share /etc)."""
    try:
        grp.getgrnam(config.DOCKER_GROUP)
    except KeyError:
        system.run(["groupadd", "--system", config.DOCKER_GROUP])
    try:
        pwd.getpwnam(config.LOGIN_USER)
    except KeyError:
        system.run(["useradd", "--no-create-home", "--home-dir", "/home/" + config.LOGIN_USER,
                    "--shell", "/bin/sh", "--groups", config.DOCKER_GROUP, config.LOGIN_USER])
    if config.LOGIN_USER not in grp.getgrnam(config.DOCKER_GROUP).gr_mem:
        system.run(["usermod", "-aG", config.DOCKER_GROUP, config.LOGIN_USER])
    shadow = system.run(["getent", "shadow", config.LOGIN_USER], check=False).stdout.split(":")
    if len(shadow) > 1 and shadow[1].startswith("!"):
        # Without PAM, sshd refuses any login (even by key) to a locked account; "*" only
        # disables passwords.
        system.run(["usermod", "-p", "*", config.LOGIN_USER])


class Testbed:
    """One testbed, identified by its directory; usable from any process once it is up."""

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

        sim = system.wait_until(lambda: pool.read_ready_line(out_path), READY_TIMEOUT,
                                "the xapi simulator", failed=died, clock=self._clock)
        self._state.set(xapi=sim)
        result = pool.populate(sim, plans)
        self._state.set_vms({created.name_label: {"uuid": created.uuid, "host_uuid": created.host_uuid}
                             for created in result.vms})
        self._write_xe(sim)
        return result.public_key_line

    def _pin_host_keys(self) -> None:
        keys = {}
        for record in self._state.get("vms", {}).values():
            owner = self._state.vm(record.get("ns_owner") or record["name"]) or record
            if record.get("uuid") and owner.get("ssh_host_key"):
                keys[record["uuid"]] = owner["ssh_host_key"]
        pool.pin_host_keys(self._state.get("xapi"), keys)

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

    def pool_keypair(self):
        """The pool's SSH key pair (xscontainer.poolkeys.PoolKeyPair), read through xapi.

        Without a simulator (xapi=False) it is the testbed's own pair.
        """
        from xscontainer import poolkeys
        from xscontainer.xapi.session import close_session
        if not self._state.get("xapi"):
            with open(self._path("testbed_key")) as handle:
                private = handle.read()
            return poolkeys.PoolKeyPair(private, poolkeys.public_line_from_private(private))
        session = self.xapi_session()
        try:
            pair = poolkeys.read_pool_keypair(session)
        finally:
            close_session(session)
        if pair is None:
            raise TestbedError("The pool has no xscontainer key pair.", code="TESTBED_NO_POOL_KEY")
        return pair

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

    def _prepare_vm_files(self, name: str, vm_dir: str, record: Dict[str, Any]) -> None:
        core = pwd.getpwnam(config.LOGIN_USER)
        for sub, mode in (("run", 0o755), ("run/sshd", 0o755), ("home", 0o755), ("docker", 0o710)):
            os.makedirs(os.path.join(vm_dir, sub), exist_ok=True)
            os.chmod(os.path.join(vm_dir, sub), mode)
        for sub in ("home/core", "home/core/.ssh"):
            path = os.path.join(vm_dir, sub)
            os.makedirs(path, exist_ok=True)
            os.chown(path, core.pw_uid, core.pw_gid)
            os.chmod(path, 0o700 if sub.endswith(".ssh") else 0o755)
        key = os.path.join(vm_dir, "ssh_host_ed25519_key")
        for path in (key, key + ".pub"):
            if os.path.exists(path):
                os.unlink(path)
        system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@" + name, "-f", key])
        with open(key + ".pub") as handle:
            key_type, key_b64 = handle.read().split()[:2]
        self._state.set_vm(name, ssh_host_key_type=key_type, ssh_host_key=key_b64)
        self._write_sshd_config(name, record["ip"], record["allow_streamlocal"])

    def _write_sshd_config(self, name: str, address: str, allow_streamlocal: bool) -> None:
        vm_dir = self._path("vms", name)
        shared = bool((self._state.vm(name) or {}).get("shared"))
        with open(os.path.join(vm_dir, "sshd_config"), "w") as handle:
            handle.write(config.sshd_config(address, os.path.join(vm_dir, "ssh_host_ed25519_key"),
                                            allow_streamlocal, shared=shared))

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

        system.wait_until(ready, READY_TIMEOUT, "the namespaces of %s" % name, failed=died, clock=self._clock)

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

    def docker(self, vm: str, args: List[str], check: bool = True,
               timeout: float = 120) -> "subprocess.CompletedProcess":
        """Run the docker CLI against the VM's engine (from the root namespace, over its socket)."""
        env = system.child_env({"DOCKER_CONFIG": self._path("docker-cli")})
        env.pop("DOCKER_HOST", None)
        return system.run([_docker_cli(), "-H", "unix://" + self.docker_socket(vm)] + list(args),
                          check=check, timeout=timeout, env=env)

    def authorize_key(self, vm: str, public_line: str) -> None:
        """Make public_line core's only authorized key in the VM (as a config drive would)."""
        core = pwd.getpwnam(config.LOGIN_USER)
        path = os.path.join(self.vm_dir(vm), "home", "core", ".ssh", "authorized_keys")
        tmp = path + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(public_line.strip() + "\n")
        os.chown(tmp, core.pw_uid, core.pw_gid)
        os.replace(tmp, path)

    # ------------------------------------------------------------ daemons of a VM

    def dockerd_argv(self, vm: str) -> List[str]:
        """The VM's dockerd command line (foreground), to run inside the VM (e.g. with vm_exec)."""
        record = self._ns_record(vm)
        return [_which("dockerd")] + config.dockerd_args(os.path.join(self.vm_dir(vm), "docker"),
                                                         record["cgroup_parent"])

    def sshd_argv(self, vm: str, foreground: bool = True) -> List[str]:
        """The VM's sshd command line; foreground=False makes sshd daemonize itself."""
        config_path = os.path.join(self.vm_dir(vm), "sshd_config")
        return [_which("sshd")] + (["-D", "-e"] if foreground else []) + ["-f", config_path]

    def _spawn_dockerd(self, vm: str) -> int:
        pidfile = os.path.join(self.vm_dir(vm), "run", "docker.pid")
        old = system.read_pidfile(pidfile)
        if old and not system.alive(old):
            os.unlink(pidfile)  # left by a killed dockerd; a new one would refuse to start
        argv = self.vm_exec_argv(vm, self.dockerd_argv(vm))
        pid = system.spawn(argv, os.path.join(self.vm_dir(vm), "dockerd.log"))
        self._track("dockerd", pid, self._ns_record(vm)["name"])
        return pid

    def _spawn_sshd(self, vm: str) -> int:
        argv = self.vm_exec_argv(vm, self.sshd_argv(vm))
        pid = system.spawn(argv, os.path.join(self.vm_dir(vm), "sshd.log"))
        self._track("sshd", pid, self._ns_record(vm)["name"])
        return pid

    def _wait_dockerd(self, vm: str, pid: int) -> None:
        log = os.path.join(self.vm_dir(vm), "dockerd.log")
        socket_path = self.docker_socket(vm)
        system.wait_until(lambda: system.docker_pings(socket_path), READY_TIMEOUT,
                          "dockerd in %s" % vm, clock=self._clock,
                          failed=lambda: None if system.alive(pid) else "it exited: %s" % system.tail(log))

    def _wait_sshd(self, vm: str, pid: int) -> None:
        log = os.path.join(self.vm_dir(vm), "sshd.log")
        address = self._vm_record(vm)["ip"]
        system.wait_until(lambda: system.ssh_banner(address, config.SSH_PORT), READY_TIMEOUT,
                          "sshd in %s" % vm, clock=self._clock,
                          failed=lambda: None if system.alive(pid) else "it exited: %s" % system.tail(log))

    def sshd_running(self, vm: str) -> bool:
        return system.ssh_banner(self._vm_record(vm)["ip"], config.SSH_PORT) is not None

    def dockerd_running(self, vm: str) -> bool:
        return system.docker_pings(self.docker_socket(vm))

    def _daemon_pids(self, vm: str, role: str, pidfile: str) -> List[int]:
        name = self._ns_record(vm)["name"]
        pids = set()
        from_file = system.read_pidfile(os.path.join(self.vm_dir(vm), "run", pidfile))
        if from_file and system.alive(from_file):
            pids.add(from_file)
        for proc in self._state.get("processes", []):
            if proc["vm"] == name and proc["role"] == role and system.alive(proc["pid"], proc["start"]):
                pids.add(proc["pid"])
        return sorted(pids)

    def stop_sshd(self, vm: str) -> None:
        """Stop the VM's sshd listener (open sessions stay, as with `systemctl stop sshd`)."""
        left = system.stop_pids(self._daemon_pids(vm, "sshd", "sshd.pid"), 10, self._clock)
        if left:
            raise TestbedError("sshd of %s survived SIGKILL: %s" % (vm, sorted(left)), code="TESTBED_STUCK")
        system.wait_until(lambda: not self.sshd_running(vm), 10, "sshd of %s to close its port" % vm,
                          clock=self._clock)

    def start_sshd(self, vm: str) -> None:
        """Start the VM's sshd (again) and wait until it answers on port 22."""
        if self.sshd_running(vm):
            return
        self._wait_sshd(vm, self._spawn_sshd(vm))

    def set_streamlocal_forwarding(self, vm: str, allowed: bool) -> None:
        """Rewrite the VM's sshd_config with AllowStreamLocalForwarding yes/no and restart sshd."""
        record = self._ns_record(vm)
        self._state.set_vm(record["name"], allow_streamlocal=bool(allowed))
        self._write_sshd_config(record["name"], record["ip"], bool(allowed))
        self.stop_sshd(vm)
        self.start_sshd(vm)

    def stop_dockerd(self, vm: str) -> None:
        """Stop the VM's dockerd gracefully; with live-restore its containers keep running."""
        pids = self._daemon_pids(vm, "dockerd", "docker.pid")
        left = system.stop_pids(pids, 20, self._clock)
        if left:
            raise TestbedError("dockerd of %s survived SIGKILL: %s" % (vm, sorted(left)), code="TESTBED_STUCK")
        # Until init has reaped it, dockerd's pid file check would still see it running.
        system.wait_until(lambda: all(system.gone(pid) for pid in pids), 20,
                          "dockerd of %s to be reaped" % vm, clock=self._clock)

    def start_dockerd(self, vm: str) -> None:
        """Start the VM's dockerd (again) and wait until its API answers."""
        if self.dockerd_running(vm):
            return
        self._wait_dockerd(vm, self._spawn_dockerd(vm))

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

    # ------------------------------------------------------------ down

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


def _which(tool: str) -> str:
    path = shutil.which(tool, path=system.STANDARD_PATH)
    if path is None:
        raise TestbedError("%s is not installed." % tool, code="TESTBED_MISSING_TOOL")
    return path


def _docker_cli() -> str:
    """The docker client shipped with the engine (a newer one elsewhere on PATH also works)."""
    beside = os.path.join(os.path.dirname(os.path.realpath(_which("dockerd"))), "docker")
    for candidate in (beside, "/usr/bin/docker"):
        if os.access(candidate, os.X_OK):
            return candidate
    return _which("docker")
