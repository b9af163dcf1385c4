"""Hostile engines on a testbed VM's Docker socket, and the running monitor process measured from
/proc: shared by ``test_hostile_live.py`` and ``bench/hostile.py``.

A fake engine (``FakeEngine``) is put where the VM's sshd forwards to (the VM's
``/var/run/docker.sock``: the real dockerd's socket is moved aside, it keeps running) and the VM's
SSH sessions are ended, so that the monitor reconnects and meets it. It answers ``/_ping``,
``/version``, ``/info``, ``/events`` and ``/containers/json`` as ``MODES`` says.
"""

import json
import os
import signal
import sys
import threading
import time

from engine.unixserver import UnixServer, read_request
from xscontainer.testbed import system
from xscontainer.testbed.naming import IMAGE_TAG

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bench"))
import _common  # noqa: E402  (bench/_common.py: the monitor process, /proc, xapi events)

MIB = 1024 * 1024

MODES = {
    "quiet": "a sane engine of 100 containers whose events stream stays silent (the baseline)",
    "endless": "a chunked /containers/json that never ends",
    "one_byte_chunks": "a 1,000-container list (1.2 MB) in 1-byte chunks",
    "huge_list": "a 10,000-container list (12 MB), within the 16 MiB bound: decoded and held",
    "value_bomb": "a list of 1.9 million empty objects (5.7 MB): the most values a body may hold",
    "deep_json": "a list nested 100,000 levels deep",
    "garbage": "bytes that are not HTTP, to every request",
    "oversize": "a /containers/json announcing a 1 TB body",
    "slow_drip": "every answer and the event stream one byte every 50 ms",
    "event_flood": "container events as fast as the monitor reads them, a sane list",
}
HOSTILE_MODES = [mode for mode in MODES if mode != "quiet"]

PING = b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
VERSION = json.dumps({"Version": "24.0.7", "ApiVersion": "1.43", "MinAPIVersion": "1.12", "Os": "linux",
                      "Arch": "amd64", "KernelVersion": "6.1.0", "GitCommit": "311b9ff"}).encode()
INFO = json.dumps({"ID": "hostile", "Containers": 100, "Driver": "overlay2", "NCPU": 2, "MemTotal": 2 * 1024 ** 3,
                   "Name": "hostile", "ServerVersion": "24.0.7", "OperatingSystem": "Hostile Linux"}).encode()
EVENTS_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
ENDLESS_CAP = 1024 * MIB  # the fake engine stops by itself after this much


def container(index):
    """One ``/containers/json`` entry as Docker 24 writes it (~1.2 KB)."""
    ident = "%064x" % (index + 1)
    return {"Id": ident, "Names": ["/app-%d" % index], "Image": "registry.example/app:1.2.%d" % index,
            "ImageID": "sha256:" + ident, "Command": "/usr/local/bin/docker-entrypoint.sh server --port 8080",
            "Created": 1700000000 + index, "Ports": [{"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": 30000,
                                                       "Type": "tcp"}],
            "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "app%d" % index,
                       "org.opencontainers.image.source": "https://example.invalid/shop/app"},
            "State": "running", "Status": "Up 3 days", "HostConfig": {"NetworkMode": "shop_default"},
            "NetworkSettings": {"Networks": {"shop_default": {
                "NetworkID": "%064x" % 7, "EndpointID": "%064x" % index, "Gateway": "172.18.0.1",
                "IPAddress": "172.18.%d.%d" % (index // 250 % 256, index % 250 + 2), "IPPrefixLen": 16,
                "MacAddress": "02:42:ac:12:00:02"}}},
            "Mounts": [{"Type": "volume", "Name": "%064x" % (index + 9), "Source": "/var/lib/docker/volumes/x/_data",
                        "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}]}


def listing(count):
    return json.dumps([container(i) for i in range(count)]).encode()


def response(body, content_type="application/json"):
    return (("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (content_type, len(body)))
            .encode() + body)


def chunked(body, size):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n" % len(body[i:i + size]) + body[i:i + size] + b"\r\n"
                       for i in range(0, len(body), size)) + b"0\r\n\r\n")


def _list_answers():
    """The prepared /containers/json answers of each mode (built once per process)."""
    sane = response(listing(100))
    return {
        "quiet": sane, "event_flood": sane, "slow_drip": sane,
        "one_byte_chunks": chunked(listing(1000), 1),
        "huge_list": response(listing(10000)),
        "value_bomb": response(b"[" + b"{}," * 1900000 + b"{}]"),
        "deep_json": response(b"[" * 100000 + b"]" * 100000),
        "oversize": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n",
    }


def _kind(line):
    """``GET /v1.43/containers/abc/stats?... HTTP/1.1`` -> ``stats`` (``list``, ``inspect``, ...)."""
    path = line.split(" ")[1].split("?")[0] if " " in line else ""
    parts = [part for part in path.split("/") if part and not part.startswith("v1.")]
    if parts[:2] == ["containers", "json"]:
        return "list"
    if parts[:1] == ["containers"] and len(parts) == 3:
        return "inspect" if parts[2] == "json" else parts[2]
    return parts[0].lstrip("_") if parts else "other"


class FakeEngine(object):
    """A Docker engine on ``path`` that behaves as ``mode`` says (see MODES); ``requests`` counts
    the requests it answered, ``active`` is True until ``close()``."""

    _answers = None

    def __init__(self, path, mode):
        if FakeEngine._answers is None:
            FakeEngine._answers = _list_answers()
        self.mode = mode
        self.requests = 0
        self.served = {}  # what was asked, by kind of request (see _kind)
        self.active = True
        self._stop = threading.Event()
        self.server = UnixServer(path, self._handle)
        os.chmod(path, 0o666)  # the VM's sshd forwards as the login user

    def _drip(self, conn, data, interval=0.05):
        for index in range(len(data)):
            if self._stop.wait(interval):
                return
            conn.sendall(data[index:index + 1])

    def _events(self, conn):
        if self.mode == "slow_drip":
            event = json.dumps({"Type": "container", "Action": "start", "Actor": {"ID": "%064x" % 1}}).encode()
            self._drip(conn, EVENTS_HEAD + (b"%x\r\n" % len(event) + event + b"\r\n") * 1000)
            return
        conn.sendall(EVENTS_HEAD)
        if self.mode != "event_flood":
            conn.recv(1)  # quiet until the peer goes away
            return
        count = 0
        while not self._stop.is_set():
            count += 1
            event = json.dumps({"status": "start", "id": "%064x" % (count % 100 + 1), "Type": "container",
                                "Action": "start", "Actor": {"ID": "%064x" % (count % 100 + 1),
                                                             "Attributes": {"name": "app-%d" % (count % 100)}},
                                "time": int(time.time()), "timeNano": time.time_ns() if hasattr(time, "time_ns")
                                else int(time.time() * 1e9)}).encode() + b"\n"
            conn.sendall(b"%x\r\n" % len(event) + event + b"\r\n")

    def _endless(self, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"1\r\n[\r\n")
        piece = json.dumps(container(0)).encode() + b","
        chunk = b"%x\r\n" % len(piece * 40) + piece * 40 + b"\r\n"
        for _ in range(ENDLESS_CAP // len(chunk)):
            if self._stop.is_set():
                return
            conn.sendall(chunk)  # raises once the client has closed: the handler ends

    def _handle(self, conn):
        while not self._stop.is_set():
            line = read_request(conn)
            if line is None:
                return
            self.requests += 1
            kind = _kind(line)
            self.served[kind] = self.served.get(kind, 0) + 1
            if self.mode == "garbage":
                conn.sendall(b"\x00\xffSSH-2.0-not-an-engine\r\n\x00garbage" * 4)
                return
            if "/_ping" in line:
                answer = PING
            elif "/version" in line:
                answer = response(VERSION)
            elif "/info" in line:
                answer = response(INFO)
            elif "/events" in line:
                return self._events(conn)
            elif "/containers/json" in line:
                if self.mode == "endless":
                    return self._endless(conn)
                answer = self._answers[self.mode]
            else:
                answer = response(b'{"message": "no such container"}').replace(b"200 OK", b"404 Not Found", 1)
            if self.mode == "slow_drip":
                self._drip(conn, answer)
            else:
                conn.sendall(answer)

    def close(self):
        self.active = False
        self._stop.set()
        self.server.close()


def end_ssh_sessions(testbed, vm):
    """End every SSH session of ``vm``'s sshd (its listener stays): clients reconnect."""
    pidfile = os.path.join(testbed.vm_dir(vm), "run", "sshd.pid")
    listeners = set(pid for pid in [system.read_pidfile(pidfile)] if pid)
    parents = system.parent_map()
    sessions = set()
    for listener in listeners:
        sessions |= system.with_descendants([pid for pid, parent in parents.items() if parent == listener])
    for pid in sessions:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return sorted(sessions)


class Hostile(object):
    """``with Hostile(testbed, vm, mode):`` the VM's engine is a FakeEngine in ``mode``; after the
    block the real one is back (and the sessions end again so the monitor returns to it)."""

    def __init__(self, testbed, vm, mode):
        self.testbed = testbed
        self.vm = vm
        self.mode = mode
        self.path = testbed.docker_socket(vm)
        self.engine = None

    def __enter__(self):
        os.rename(self.path, self.path + ".real")
        try:
            self.engine = FakeEngine(self.path, self.mode)
        except BaseException:
            os.rename(self.path + ".real", self.path)
            raise
        end_ssh_sessions(self.testbed, self.vm)
        return self.engine

    def __exit__(self, *exc_info):
        self.engine.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.rename(self.path + ".real", self.path)
        end_ssh_sessions(self.testbed, self.vm)


# -- the monitor process and the other VM -------------------------------------------------------

class Sampler(object):
    """The RSS of process ``pid`` sampled every ``interval`` s in a thread, and the CPU seconds it
    used, from ``start()`` to ``stop()`` (which returns ``peak_mb, cpu_s, seconds``)."""

    def __init__(self, pid, interval=0.02):
        self.pid = pid
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self.peak_mb = _common.rss_mb(self.pid) or 0.0
        self._cpu = _common.cpu_seconds(self.pid)
        self._clock = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rss-sampler")
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, _common.rss_mb(self.pid) or 0.0)

    def stop(self):
        self._stop.set()
        self._thread.join()
        seconds = time.monotonic() - self._clock
        return self.peak_mb, round(_common.cpu_seconds(self.pid) - self._cpu, 3), round(seconds, 2)


class Probe(object):
    """A stopped container ``name`` on the other VM, started and killed (straight on its engine)
    to see the monitor reflect the change while the hostile VM attacks."""

    def __init__(self, testbed, vm, name="hostile-probe"):
        self.name = name
        self.testbed = testbed
        self.vm = vm
        testbed.docker(vm, ["rm", "-f", name], check=False)
        testbed.docker(vm, ["create", "--name", name, IMAGE_TAG, "sleep", "100000"])
        self.engine = _common.engine_client(testbed.docker_socket(vm))

    def start(self):
        self.engine.start(self.name)

    def stop(self):
        self.engine.stop(self.name, timeout=0)

    def remove(self):
        self.engine.close()
        self.testbed.docker(self.vm, ["rm", "-f", self.name], check=False)
