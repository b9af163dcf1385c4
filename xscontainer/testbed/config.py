"""Pure renderers of what runs in a testbed VM: sshd configuration, dockerd and docker arguments.

In-VM paths (``/run/...``, ``/var/run/...``) are as seen inside the VM's mount namespace, where
the VM's own directory is bind-mounted over /run and /home.
"""

import re
import shlex
from typing import Dict, List

from xscontainer.testbed import naming

LOGIN_USER = "core"
DOCKER_GROUP = "docker"
SSH_PORT = 22
SSHD_PIDFILE = "/run/sshd.pid"
DOCKERD_PIDFILE = "/var/run/docker.pid"
DOCKER_SOCKET = "/var/run/docker.sock"
DOCKERD_EXEC_ROOT = "/var/run/docker"
READY_TIMEOUT = 60.0  # seconds a daemon, the simulator or a VM's namespaces may take to come up
# Keeps three VMs' burners to a fraction of a core while `top` still shows CPU time grow.
DEFAULT_BURNER_CPUS = "0.1"
BUSYBOX_APPLETS = ("sh", "ash", "cat", "echo", "env", "false", "hostname", "httpd", "id", "kill",
                   "ls", "mkdir", "nc", "ps", "rm", "sleep", "tail", "top", "touch", "true", "uname",
                   "wget", "yes")
WEB_INDEX = b"<html><body>xscontainer testbed</body></html>\n"


# A namespace shared by many VM addresses must accept as many connections at once as a monitor
# opens (sshd's default MaxStartups 10:30:100 drops most of 1000 simultaneous handshakes).
SHARED_MAX_STARTUPS = "1000:30:4000"
SHARED_MAX_SESSIONS = 100


def sshd_flags(version_banner: str) -> List[str]:
    """Extra sshd flags for the OpenSSH whose ``sshd -V`` printed ``version_banner``.

    One sshd stands for every VM of a namespace (a hundred at scale), so the per-connection work
    of a hundred guests' sshd lands on this machine's cores: a thousand VMs' connections cost it
    26 ms of CPU each, 16 ms without the re-execution of sshd for every connection (``-r``,
    measured here with OpenSSH 9.2). What the monitor sees of the protocol is unchanged. From
    9.8 on, per-connection work is a separate program (sshd-session) and the flag is left out."""
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", version_banner)
    if match and (int(match.group(1)), int(match.group(2))) < (9, 8):
        return ["-r"]
    return []


def sshd_config(address: str, host_key_path: str, allow_streamlocal: bool = True,
                shared: bool = False) -> str:
    """sshd_config of one VM: key login for core only, forwarding to Unix sockets as asked.

    shared: the namespace serves many VM addresses: listen on all of them, accept many
    connections at once.
    """
    lines = [
        "# Written by xscontainer-testbed; sshd runs in the VM's network and mount namespaces.",
        "ListenAddress %s:%d" % ("0.0.0.0" if shared else address, SSH_PORT),
        "HostKey %s" % host_key_path,
        "PidFile %s" % SSHD_PIDFILE,
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "AllowUsers %s" % LOGIN_USER,
        "AuthorizedKeysFile .ssh/authorized_keys",
        "AllowStreamLocalForwarding %s" % ("yes" if allow_streamlocal else "no"),
        "AllowTcpForwarding yes",
        "UseDNS no",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
    ]
    if shared:
        lines += ["MaxStartups %s" % SHARED_MAX_STARTUPS, "MaxSessions %d" % SHARED_MAX_SESSIONS]
    lines.append("")
    return "\n".join(lines)


def dockerd_args(data_root: str, cgroup_parent: str) -> List[str]:
    """dockerd's arguments (without the binary).

    --live-restore: stopping dockerd for a fault test leaves the containers (and their state,
    including the paused one) exactly as they were. --iptables=false: the published port is
    served by docker-proxy, so nothing depends on the machine's firewall tooling.
    """
    return [
        "--data-root", data_root,
        "--exec-root", DOCKERD_EXEC_ROOT,
        "--pidfile", DOCKERD_PIDFILE,
        "-H", "unix://" + DOCKER_SOCKET,
        "--group", DOCKER_GROUP,
        "--iptables=false",
        "--ip-masq=false",
        "--userland-proxy=true",
        "--live-restore",
        "--shutdown-timeout", "1",
        "--cgroup-parent", "/" + cgroup_parent,
    ]


def sample_run_args(name: str, vm_address: str, burner_cpus: str = DEFAULT_BURNER_CPUS) -> List[str]:
    """`docker` arguments that create and start the sample container called name."""
    image = naming.IMAGE_TAG
    labels = ["--label", "xscontainer.testbed.sample=" + name]
    if name == "web":
        return ["run", "-d", "--name", name] + labels + [
            "-p", "%s:%d:%d" % (vm_address, naming.WEB_PUBLISHED_PORT, naming.WEB_CONTAINER_PORT),
            image, "httpd", "-f", "-p", str(naming.WEB_CONTAINER_PORT), "-h", "/www"]
    if name == "burner":
        cpus = ["--cpus", burner_cpus] if burner_cpus else []
        return ["run", "-d", "--name", name] + labels + cpus + [
            image, "sh", "-c", "while :; do :; done"]
    if name == "exited":
        # Not detached: `docker run` returns once it has exited with the known code.
        return ["run", "--name", name] + labels + [
            image, "sh", "-c", "exit %d" % naming.EXITED_CODE]
    # "sleeper" (paused afterwards) and the extra ones.
    return ["run", "-d", "--name", name] + labels + [image, "sleep", "100000000"]


def sample_description(name: str, vm_address: str) -> Dict[str, object]:
    """What info() says about a sample container: its expected state and port."""
    if name == "web":
        return {"name": name, "state": "running",
                "published": {"ip": vm_address, "port": naming.WEB_PUBLISHED_PORT,
                              "container_port": naming.WEB_CONTAINER_PORT, "protocol": "tcp"}}
    if name == "burner":
        return {"name": name, "state": "running"}
    if name == "sleeper":
        return {"name": name, "state": "paused"}
    if name == "exited":
        return {"name": name, "state": "exited", "exit_code": naming.EXITED_CODE}
    return {"name": name, "state": "running"}


def xe_script(python: str, xapi_socket: str) -> str:
    return ("#!/bin/sh\n"
            "# xe bound to this testbed's xapi simulator (written by xscontainer-testbed).\n"
            "XSCONTAINER_XAPI_SOCKET=%s\nexport XSCONTAINER_XAPI_SOCKET\n"
            "exec %s -m xscontainer.sim.xe \"$@\"\n") % (shlex.quote(xapi_socket), shlex.quote(python))
