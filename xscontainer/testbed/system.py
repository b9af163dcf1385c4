"""This machine as the testbed sees it: commands, child processes, namespaces, links and cgroups.

The only module of the testbed that runs commands or reads /proc; everything returns plain
values so the orchestration above it stays readable.
"""

import errno
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Callable, Dict, Iterable, List, Optional, Set

from xscontainer.errors import XSContainerError

LOG = logging.getLogger(__name__)

STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NETNS_DIR = "/run/netns"
CGROUP_ROOT = "/sys/fs/cgroup"
LOCK_PATH = "/run/xscontainer-testbed.lock"


class TestbedError(XSContainerError):
    """The testbed could not be built, used or removed; the message says which step failed."""

    code = "TESTBED_ERROR"

    __test__ = False  # not a pytest test class, despite the name


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = STANDARD_PATH
    env.update(extra or {})
    return env


def run(argv: List[str], check: bool = True, input_text: Optional[str] = None, timeout: float = 120,
        env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess":
    """Run a command to completion, capturing its output as text."""
    try:
        result = subprocess.run(argv, input=input_text, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, timeout=timeout,
                                env=env if env is not None else child_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TestbedError("Command %s could not run: %s" % (" ".join(argv), exc),
                           code="TESTBED_COMMAND_FAILED", argv=argv) from exc
    if check and result.returncode != 0:
        raise TestbedError("Command %s exited with %d: %s" % (" ".join(argv), result.returncode,
                                                             (result.stderr or result.stdout).strip()),
                           code="TESTBED_COMMAND_FAILED", argv=argv, returncode=result.returncode)
    return result


# Runs between us and a daemon, then exits: the daemon is reparented to init, as in a real VM,
# so whoever kills it (vm-exec, another process) never leaves a zombie behind in our process.
_DETACH = """
import subprocess, sys
out = open(sys.argv[1], "ab")
err = open(sys.argv[2], "ab") if sys.argv[2] else subprocess.STDOUT
proc = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                        start_new_session=True, close_fds=True)
sys.stdout.write("%d\\n" % proc.pid)
"""


def spawn(argv: List[str], log_path: str, env: Optional[Dict[str, str]] = None,
          stderr_path: Optional[str] = None, cwd: Optional[str] = None) -> int:
    """Start a daemon detached from this process (own session, parent init); return its pid.

    Output is appended to log_path (stderr to stderr_path when given).
    """
    try:
        result = subprocess.run([sys.executable, "-c", _DETACH, log_path, stderr_path or ""] + list(argv),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, env=env if env is not None else child_env(),
                                cwd=cwd, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TestbedError("Cannot start %s: %s" % (argv[0], exc), code="TESTBED_COMMAND_FAILED",
                           argv=argv) from exc
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        raise TestbedError("Cannot start %s: %s" % (argv[0], result.stderr.strip()[-2000:]),
                           code="TESTBED_COMMAND_FAILED", argv=argv)
    return int(result.stdout.strip())


def gone(pid: int) -> bool:
    """True once pid has no /proc entry at all (exited and reaped: not even a zombie)."""
    return not os.path.exists("/proc/%d" % pid)


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()[-8192:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


# ---------------------------------------------------------------- processes

def _stat_fields(pid: int) -> Optional[List[str]]:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1], starttime [19])."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def start_time(pid: int) -> Optional[int]:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, start: Optional[int] = None) -> bool:
    """True when pid runs (zombies count as gone) and, if start is given, is the same process."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return start is None or int(fields[19]) == start


def all_pids() -> List[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def parent_map() -> Dict[int, int]:
    parents = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields:
            parents[pid] = int(fields[1])
    return parents


def with_descendants(pids: Iterable[int]) -> Set[int]:
    result = set(pids)
    parents = parent_map()
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in result and pid not in result:
                result.add(pid)
                grew = True
    return result


def read_pidfile(path: str) -> Optional[int]:
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def command_line(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def signal_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise


def reap(pid: int) -> None:
    """Collect pid if it is our exited child; harmless otherwise."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_gone(pids: Iterable[int], timeout: float, clock: Callable[[], float] = time.monotonic) -> Set[int]:
    """Poll until none of pids runs; return the ones still running at the deadline."""
    remaining = set(pids)
    deadline = clock() + timeout
    while True:
        for pid in list(remaining):
            reap(pid)
            if not alive(pid):
                remaining.discard(pid)
        if not remaining or clock() >= deadline:
            return remaining
        time.sleep(0.02)


def stop_pids(pids: Iterable[int], grace: float, clock: Callable[[], float] = time.monotonic) -> Set[int]:
    """SIGTERM, up to grace seconds, then SIGKILL; return what survived even that."""
    pids = set(pids)
    signal_pids(pids, signal.SIGTERM)
    left = wait_gone(pids, grace, clock)
    if left:
        signal_pids(left, signal.SIGKILL)
        left = wait_gone(left, 10, clock)
    return left


# ---------------------------------------------------------------- waiting

def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               failed: Optional[Callable[[], Optional[str]]] = None,
               clock: Callable[[], float] = time.monotonic, interval: float = 0.05):
    """Poll predicate until it returns a true value, failing fast when ``failed()`` has a reason."""
    deadline = clock() + timeout
    while True:
        value = predicate()
        if value:
            return value
        reason = failed() if failed else None
        if reason:
            raise TestbedError("Gave up waiting for %s: %s" % (what, reason), code="TESTBED_NOT_READY")
        if clock() >= deadline:
            raise TestbedError("Gave up waiting for %s after %.0f s." % (what, timeout),
                               code="TESTBED_NOT_READY")
        time.sleep(interval)


def ssh_banner(address: str, port: int, timeout: float = 1.0) -> Optional[bytes]:
    """The server's SSH identification line, or None when nothing answers yet."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            line = sock.recv(256)
    except OSError:
        return None
    return line if line.startswith(b"SSH-") else None


def docker_pings(socket_path: str, timeout: float = 1.0) -> bool:
    """True when a Docker engine answers GET /_ping on the Unix socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        reply = sock.recv(1024)
    except OSError:
        return False
    finally:
        sock.close()
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


# ---------------------------------------------------------------- namespaces and links

def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def netns_names() -> List[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []


def link_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/sys/class/net", name))


def ns_inode(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_namespace(kind: str, inode: int) -> Set[int]:
    """Processes whose namespace of this kind ("net", "mnt") is the one with this inode."""
    found = set()
    for pid in all_pids():
        try:
            if os.stat("/proc/%d/ns/%s" % (pid, kind)).st_ino == inode:
                found.add(pid)
        except OSError:
            continue
    return found


def ipv4_addresses_and_routes() -> List[str]:
    """Every IPv4 address (CIDR) and route destination on this machine's root namespace."""
    found = []
    for line in run(["ip", "-4", "-o", "addr", "show"]).stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            found.append(parts[parts.index("inet") + 1])
    for line in run(["ip", "-4", "route", "show", "table", "all"]).stdout.splitlines():
        parts = line.split()
        if parts and parts[0] not in ("broadcast", "local", "unreachable", "blackhole", "prohibit"):
            found.append(parts[0])
        elif len(parts) > 1:
            found.append(parts[1])
    return found


class MachineLock:
    """An flock shared by every testbed of this machine while it picks and claims a subnet."""

    def __init__(self, path: str = LOCK_PATH) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> "MachineLock":
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = -1


# ---------------------------------------------------------------- cgroups

def cgroup_dirs(name: str) -> List[str]:
    """The directories of cgroup ``name`` (a top-level child) in every mounted hierarchy."""
    found = []
    if os.path.isdir(os.path.join(CGROUP_ROOT, name)):
        found.append(os.path.join(CGROUP_ROOT, name))  # cgroup v2, or a v1 single hierarchy
    try:
        entries = os.listdir(CGROUP_ROOT)
    except OSError:
        return found
    for entry in entries:
        candidate = os.path.join(CGROUP_ROOT, entry, name)
        if os.path.isdir(candidate):
            found.append(candidate)
    unique = {}  # type: Dict[str, str]
    for path in found:
        # v1 hierarchies mounted together appear twice ("cpu,cpuacct" and its "cpu" symlink).
        unique.setdefault(os.path.realpath(path), path)
    return sorted(unique)


def _walk_dirs(top: str) -> List[str]:
    """top and every directory below it, deepest first."""
    result = []
    for root, _dirs, _files in os.walk(top, topdown=False):
        result.append(root)
    return result


def cgroup_pids(name: str) -> Set[int]:
    pids = set()
    for top in cgroup_dirs(name):
        for directory in _walk_dirs(top):
            try:
                with open(os.path.join(directory, "cgroup.procs")) as handle:
                    pids.update(int(line) for line in handle if line.strip())
            except (OSError, ValueError):
                continue
    return pids


def thaw_cgroups(name: str) -> None:
    """Thaw paused containers: a frozen process cannot even die of SIGKILL."""
    for top in cgroup_dirs(name):
        for directory in _walk_dirs(top):
            for filename, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
                path = os.path.join(directory, filename)
                if os.path.exists(path):
                    try:
                        with open(path, "w") as handle:
                            handle.write(value)
                    except OSError:
                        pass


def remove_cgroups(name: str) -> List[str]:
    """rmdir the cgroup tree in every hierarchy; return the directories that stayed."""
    left = []
    for top in cgroup_dirs(name):
        for directory in _walk_dirs(top):
            try:
                os.rmdir(directory)
            except OSError:
                left.append(directory)
    return left
