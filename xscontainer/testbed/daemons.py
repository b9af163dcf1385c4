"""The daemons of a testbed VM: its sshd and dockerd, started, waited for, stopped and restarted
(fault tests do all four), and the docker CLI against its engine.

``DaemonsMixin`` is part of ``Testbed``: it uses the host class's ``_state``, ``_path``,
``_clock``, ``_track``, ``vm_dir``, ``docker_socket``, ``_vm_record``, ``_ns_record`` and
``vm_exec_argv``.
"""

import os
import shutil
import subprocess
from typing import List

from xscontainer.testbed import config, system
from xscontainer.testbed.system import TestbedError


class DaemonsMixin:
    def docker(self, vm: str, args: List[str], check: bool = True,
               timeout: float = 120) -> "subprocess.CompletedProcess":
        """Run the docker CLI against the VM's engine (from the root namespace, over its socket)."""
        env = system.child_env({"DOCKER_CONFIG": self._path("docker-cli")})
        env.pop("DOCKER_HOST", None)
        return system.run([_docker_cli(), "-H", "unix://" + self.docker_socket(vm)] + list(args),
                          check=check, timeout=timeout, env=env)

    def _write_sshd_config(self, name: str, address: str, allow_streamlocal: bool) -> None:
        vm_dir = self._path("vms", name)
        shared = bool((self._state.vm(name) or {}).get("shared"))
        with open(os.path.join(vm_dir, "sshd_config"), "w") as handle:
            handle.write(config.sshd_config(address, os.path.join(vm_dir, "ssh_host_ed25519_key"),
                                            allow_streamlocal, shared=shared))

    def dockerd_argv(self, vm: str) -> List[str]:
        """The VM's dockerd command line (foreground), to run inside the VM (e.g. with vm_exec)."""
        record = self._ns_record(vm)
        return [_which("dockerd")] + config.dockerd_args(os.path.join(self.vm_dir(vm), "docker"),
                                                         record["cgroup_parent"])

    def sshd_argv(self, vm: str, foreground: bool = True) -> List[str]:
        """The VM's sshd command line; foreground=False makes sshd daemonize itself."""
        config_path = os.path.join(self.vm_dir(vm), "sshd_config")
        return [_which("sshd")] + self._sshd_flags() + (["-D", "-e"] if foreground else []) + ["-f", config_path]

    def _sshd_flags(self) -> List[str]:
        flags = getattr(self, "_sshd_flags_found", None)
        if flags is None:
            result = system.run([_which("sshd"), "-V"], check=False, timeout=30)
            flags = self._sshd_flags_found = config.sshd_flags(result.stderr + result.stdout)
        return flags

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
        system.wait_until(lambda: system.docker_pings(socket_path), config.READY_TIMEOUT,
                          "dockerd in %s" % vm, clock=self._clock,
                          failed=lambda: None if system.alive(pid) else "it exited: %s" % system.tail(log))

    def _wait_sshd(self, vm: str, pid: int) -> None:
        log = os.path.join(self.vm_dir(vm), "sshd.log")
        address = self._vm_record(vm)["ip"]
        system.wait_until(lambda: system.ssh_banner(address, config.SSH_PORT), config.READY_TIMEOUT,
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
