"""Shared helpers of the benchmarks: a testbed (brought up and removed, or given with --testbed),
a monitor subprocess, /proc figures, docker_ps watching through xapi events, percentiles, JSON.

Every bench prints ONE JSON object on stdout; logs go to stderr.
"""

import contextlib
import gc
import json
import logging
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from xscontainer.engine.client import DockerClient
from xscontainer.engine.http import HttpPool
from xscontainer.transport.stream import SocketStream

LOG = logging.getLogger("bench")

MONITOR_KEY = "xscontainer-monitor"
SETTLE_POLL = 0.05


def setup_logging(verbose: bool = True) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def emit(document: Dict[str, Any]) -> None:
    """The bench's single JSON object on stdout."""
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
    sys.stdout.flush()


def percentiles(samples: List[float]) -> Dict[str, Any]:
    """Nearest-rank p50/p95 and max of durations in seconds, reported in milliseconds."""
    if not samples:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[max(0, int(math.ceil(p * len(ordered))) - 1)]

    return {"count": len(ordered), "p50_ms": round(rank(0.50) * 1000, 2), "p95_ms": round(rank(0.95) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2), "mean_ms": round(sum(ordered) / len(ordered) * 1000, 2)}


def median_ms(samples: List[float]) -> Optional[float]:
    return percentiles(samples)["p50_ms"]


# ---------------------------------------------------------------- the testbed

@contextlib.contextmanager
def bench_testbed(directory: Optional[str], **up_args: Any) -> Iterator[Any]:
    """A Testbed that is up: the given one (left as it is), or a fresh one removed afterwards."""
    from xscontainer.testbed import Testbed
    if directory:
        bed = Testbed(directory)
        if bed.info()["status"] != "up":
            raise SystemExit("bench: the testbed in %s is not up" % directory)
        yield bed
        return
    scratch = tempfile.mkdtemp(prefix="xsc-bench-")
    bed = Testbed(scratch)
    started = time.monotonic()
    try:
        LOG.info("bringing up a testbed in %s (%s)", scratch, up_args)
        bed.up(**up_args)
        LOG.info("testbed up in %.1f s", time.monotonic() - started)
        yield bed
    finally:
        try:
            bed.down()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def work_dir(bed: Any, name: str) -> str:
    """A fresh directory for this bench's files (monitor log, control socket) inside the testbed."""
    path = os.path.join(bed.directory, "bench", "%s-%d" % (name, os.getpid()))
    os.makedirs(path, exist_ok=True)
    return path


def host_of(info: Dict[str, Any], index: int = 0) -> Dict[str, Any]:
    return info["hosts"][index]


def engine_client(docker_socket: str) -> DockerClient:
    """A Docker client straight on the VM's engine socket (the bench's way to change state)."""
    def open_unix():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(docker_socket)
        return SocketStream(sock, "bench-direct")
    return DockerClient(HttpPool(open_unix), "bench")


# ---------------------------------------------------------------- xapi

def session(info: Dict[str, Any]):
    from xscontainer.xapi.session import open_local_session
    return open_local_session(info["unix_socket"])


def close(sess) -> None:
    from xscontainer.xapi.session import close_session
    close_session(sess)


def pool_public_line(sess, pool_other_config: Dict[str, str]) -> str:
    """The pool key's public line named by a pool.other_config (what the testbed authorized)."""
    uuid = pool_other_config["xscontainer-public-secret-uuid"]
    return sess.xenapi.secret.get_value(sess.xenapi.secret.get_by_uuid(uuid))


def set_registered(sess, vm_ref: str, registered: bool) -> None:
    """Register (or deregister) a VM for monitoring, key by key, as the plugin does."""
    api = sess.xenapi.VM
    try:
        api.remove_from_other_config(vm_ref, MONITOR_KEY)
    except Exception:  # absent: fine
        pass
    if registered:
        api.add_to_other_config(vm_ref, MONITOR_KEY, "True")


def container_statuses(docker_ps: Optional[str]) -> Optional[Dict[str, str]]:
    """name -> status from a docker_ps value, read as XenCenter does (every `entry`, direct
    children `names` and `status`); None when absent or not well-formed."""
    if not docker_ps:
        return None
    try:
        root = ElementTree.fromstring(docker_ps.encode("utf-8"))
    except ElementTree.ParseError:
        return None
    result = {}
    for entry in root.iter("entry"):
        name = entry.find("names")
        status = entry.find("status")
        if name is not None:
            result[(name.text or "").strip()] = (status.text or "").strip() if status is not None else ""
    return result


class VmEvents(object):
    """Follows VM records through ``event.from`` on its own session (no polling).

    ``other_config`` of every VM seen is kept in ``self.configs`` (ref -> dict); ``wait(check,
    timeout)`` blocks on events until ``check(self)`` is true and returns the monotonic time at
    which the deciding batch arrived (None on timeout).
    """

    def __init__(self, info: Dict[str, Any], poll: float = 5.0, vm_refs: Optional[List[str]] = None) -> None:
        self._session = session(info)
        self._poll = poll
        # Only the VMs sampled, when given: parsing the records of VMs not looked at delayed the
        # arrival times measured (each change brings the VM's whole record).
        self._classes = ["vm/" + ref for ref in vm_refs] if vm_refs else ["vm"]
        batch = self._session.xenapi.event_from(self._classes, "", 0.0)
        self.token = batch["token"]
        self.configs = {}  # type: Dict[str, Dict[str, str]]
        self._absorb(batch)

    def _absorb(self, batch: Dict[str, Any]) -> None:
        for event in batch.get("events", []):
            if event.get("class", "").lower() != "vm":
                continue
            if event.get("operation") == "del":
                self.configs.pop(event["ref"], None)
            elif isinstance(event.get("snapshot"), dict):
                self.configs[event["ref"]] = dict(event["snapshot"].get("other_config", {}))

    def next_batch(self, timeout: float) -> float:
        batch = self._session.xenapi.event_from(self._classes, self.token, max(0.05, timeout))
        arrived = time.monotonic()
        self.token = batch["token"]
        self._absorb(batch)
        return arrived

    def wait(self, check: Callable[["VmEvents"], bool], timeout: float) -> Optional[float]:
        deadline = time.monotonic() + timeout
        if check(self):
            return time.monotonic()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            arrived = self.next_batch(min(self._poll, remaining))
            if check(self):
                return arrived

    def statuses(self, vm_ref: str) -> Optional[Dict[str, str]]:
        return container_statuses(self.configs.get(vm_ref, {}).get("docker_ps"))

    def close(self) -> None:
        close(self._session)


# ---------------------------------------------------------------- the monitor process

def monitor_command() -> List[str]:
    """``xscontainer-monitor`` of this interpreter's environment (or the module when not installed)."""
    script = os.path.join(os.path.dirname(sys.executable), "xscontainer-monitor")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "xscontainer.monitor.cli"]


def _raise_nofile(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    return preexec


class MonitorProcess(object):
    """An ``xscontainer-monitor`` subprocess for one host of the testbed."""

    def __init__(self, info: Dict[str, Any], host: Dict[str, Any], directory: str,
                 extra_args: Optional[List[str]] = None, nofile: int = 65536,
                 control_dir: Optional[str] = None, command: Optional[List[str]] = None,
                 env: Optional[Dict[str, str]] = None) -> None:
        """control_dir: where the control socket goes (default: a private directory in
        `directory`; the plugin looks only in /run/xscontainer, so plugin benches pass that).
        command: the monitor's command (default ``xscontainer-monitor``), for A/B experiments.
        env: variables added to this process's environment for the monitor."""
        self.log_path = os.path.join(directory, "monitor-%s.log" % host["uuid"][:8])
        # A short private directory: AF_UNIX paths are limited to 107 bytes.
        self._own_control_dir = control_dir is None
        self.control_dir = control_dir or tempfile.mkdtemp(prefix="xscb-")
        os.makedirs(self.control_dir, exist_ok=True)
        argv = list(command or monitor_command()) + ["--inventory", host["inventory"], "--xapi-socket", info["unix_socket"],
                                    "--log-file", self.log_path, "--control-dir", self.control_dir]
        argv += list(extra_args or [])
        if host.get("rrdd_socket") and "--rrdd-socket" not in argv:
            argv += ["--rrdd-socket", host["rrdd_socket"]]  # as on a host: its metrics work counts too
        LOG.info("starting the monitor: %s", " ".join(argv))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path + ".stderr", "ab"),
                                     preexec_fn=_raise_nofile(nofile), env=dict(os.environ, **(env or {})))
        self.pid = self.proc.pid
        self.control_path = os.path.join(self.control_dir, "monitor-%s.sock" % host["uuid"])

    def wait_control(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.control_path):
            if self.proc.poll() is not None:
                raise RuntimeError("the monitor exited with %s; see %s" % (self.proc.returncode, self.log_path))
            if time.monotonic() > deadline:
                raise RuntimeError("the monitor's control socket %s did not appear" % self.control_path)
            time.sleep(SETTLE_POLL)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> Optional[float]:
        """SIGTERM and wait; returns the seconds it took (None if it had to be killed)."""
        try:
            if self.proc.poll() is not None:
                return 0.0
            started = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
                return round(time.monotonic() - started, 2)
            except subprocess.TimeoutExpired:
                LOG.warning("the monitor did not stop within %.0f s of SIGTERM; killing it", timeout)
                self.proc.kill()
                self.proc.wait()
                return None
        finally:
            if self._own_control_dir and self.proc.poll() is not None:
                shutil.rmtree(self.control_dir, ignore_errors=True)


# ---------------------------------------------------------------- /proc

def _status_field(pid: int, field: str) -> Optional[str]:
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> Optional[float]:
    value = _status_field(pid, "VmRSS")  # "123456 kB"
    return round(int(value.split()[0]) / 1024.0, 1) if value else None


def thread_count(pid: int) -> Optional[int]:
    value = _status_field(pid, "Threads")
    return int(value) if value else None


def cpu_seconds(pid: int) -> Optional[float]:
    """utime + stime of the process (all its threads), in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def machine_cpu_seconds() -> Tuple[float, float]:
    """(busy, stolen): CPU seconds all cores spent busy since boot (not idle, not waiting for
    I/O, not stolen by the hypervisor for other machines), and seconds stolen."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]] + [0] * 8
    hertz = float(os.sysconf("SC_CLK_TCK"))
    idle, iowait, steal = fields[3], fields[4], fields[7]
    return (sum(fields[:8]) - idle - iowait - steal) / hertz, steal / hertz


def best_cpu(repeat: int, work: Callable[..., Any], *args: Any) -> float:
    """The least CPU seconds (``time.process_time``) of ``repeat`` calls of ``work(*args)``, after
    one warm-up call, with the cyclic garbage collector off (its pauses are not the work's)."""
    work(*args)
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.process_time()
            work(*args)
            best = min(best, time.process_time() - started)
    finally:
        gc.enable()
    return best


def reference_work_ms() -> float:
    """CPU milliseconds this process needs now for a fixed piece of pure-Python work: the same-run
    yardstick of the machine's speed. A shared virtual machine's vCPU delivers up to twice as
    much work per CPU second at some minutes as at others (measured here: 28 to 54 ms for the
    same loop, nothing else running, no steal reported), so figures of runs minutes apart
    compare only beside this one."""
    started = time.process_time()
    total = 0
    for number in range(200000):
        total += number * number
    return round((time.process_time() - started) * 1000.0, 1)


def idle_cpu_percent(pid: int, seconds: float) -> Optional[float]:
    """CPU used by pid over `seconds`, as a percentage of one core."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    after, elapsed = cpu_seconds(pid), time.monotonic() - started
    if before is None or after is None:
        return None
    return round(100.0 * (after - before) / elapsed, 2)


def open_fds(pid: int) -> Optional[int]:
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
