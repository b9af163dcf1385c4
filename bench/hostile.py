"""What a hostile guest's engine can make the monitor's side spend: memory (peak and retained RSS)
and CPU seconds of a client process reading, as the monitor does (``DockerClient`` over
``HttpPool`` with the per-VM and process budgets ``EngineConnections`` gives), from a fake engine
on a Unix socket:

- ``sane``: a 100-container ``/containers/json`` (the baseline, measured in the same run);
- ``list_10000``: 10,000 containers (~12 MB), within the 16 MiB bound on the list;
- ``list_20000``: 20,000 containers (~23 MB), refused by the 16 MiB bound on the list;
- ``endless``: a chunked ``/containers/json`` that never ends;
- ``one_byte_chunks``: a 1,000-container list (~1.2 MB) in 1-byte chunks;
- ``parallel_8``: eight VMs' 10,000-container lists read at once (the process budget).

Each scenario runs in a fresh child process; its RSS is read from /proc (VmRSS before and after,
VmHWM for the peak): as is, with ``malloc_trim(0)`` once everything read was dropped, and with
MALLOC_ARENA_MAX=2 (as the monitor's systemd unit sets it), to show whether glibc gives freed
memory back. Prints one JSON object. Linux only.

Usage: bench/hostile.py [--containers N] [--scenarios a,b,...]
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from engine.unixserver import UnixServer, read_request  # noqa: E402
from xscontainer.engine.budget import ByteBudget  # noqa: E402
from xscontainer.engine.client import DockerClient  # noqa: E402
from xscontainer.engine.http import HttpPool  # noqa: E402
from xscontainer.errors import XSContainerError  # noqa: E402
from xscontainer.transport.stream import SocketStream  # noqa: E402

MIB = 1024 * 1024
SCENARIOS = ("sane", "list_10000", "list_20000", "endless", "one_byte_chunks", "parallel_8")
ENDLESS_CAP = 1024 * MIB  # the fake engine stops by itself after this much


def container(index):
    """One ``/containers/json`` entry as Docker 24 writes it (~1.5 KB)."""
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


def head(extra):
    return ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s\r\n" % extra).encode()


def serve(conn, scenario, bodies):
    """The fake engine: answers every request of one connection as ``scenario`` says."""
    while True:
        if read_request(conn) is None:
            return
        if scenario == "endless":
            conn.sendall(head("Transfer-Encoding: chunked\r\n") + b"1\r\n[\r\n")
            piece = json.dumps(container(0)).encode() + b","
            chunk = b"%x\r\n" % len(piece * 40) + piece * 40 + b"\r\n"
            for _ in range(ENDLESS_CAP // len(chunk)):
                conn.sendall(chunk)  # raises once the client has closed: the handler ends
            return
        body = bodies[scenario]
        if scenario == "one_byte_chunks":
            conn.sendall(head("Transfer-Encoding: chunked\r\n")
                         + b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body))) + b"0\r\n\r\n")
        else:
            conn.sendall(head("Content-Length: %d\r\n" % len(body)) + body)


# -- the child: one scenario in a fresh process ------------------------------------------------

def status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Api(DockerClient):
    def _negotiate(self):
        return (1, 41)


def child(scenario, path, trim):
    def open_stream():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return SocketStream(sock, path)
    process = ByteBudget(128 * MIB, "all VMs")  # as EngineConnections gives them
    clients = [Api(HttpPool(open_stream, budget=ByteBudget(32 * MIB, "VM vm%d" % i, process),
                            vm_uuid="vm%d" % i), "vm%d" % i) for i in range(8 if scenario == "parallel_8" else 1)]
    outcomes = []

    def read(client):
        try:
            outcomes.append(len(client.containers()))
        except XSContainerError as exc:
            outcomes.append(exc.code)
    before = status_kib("VmRSS")
    cpu = time.process_time()
    threads = [threading.Thread(target=read, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu
    for client in clients:
        client.close()
    if trim:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    result = {"rss_before_mb": round(before / 1024.0, 1), "rss_peak_mb": round(status_kib("VmHWM") / 1024.0, 1),
              "rss_after_mb": round(status_kib("VmRSS") / 1024.0, 1), "cpu_s": round(cpu, 3),
              "outcomes": sorted(set(str(o) for o in outcomes))}
    sys.stdout.write(json.dumps(result) + "\n")


def run_child(scenario, path, trim, arenas=None):
    command = [sys.executable, os.path.abspath(__file__), "--child", scenario, "--socket", path]
    env = dict(os.environ)
    env.pop("MALLOC_ARENA_MAX", None)
    if arenas:
        env["MALLOC_ARENA_MAX"] = str(arenas)  # as the monitor's systemd unit sets it
    output = subprocess.check_output(command + (["--trim"] if trim else []), universal_newlines=True,
                                     timeout=600, env=env)
    return json.loads(output.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--containers", type=int, default=20000, help="the big list's size (default 20000)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--socket", help=argparse.SUPPRESS)
    parser.add_argument("--trim", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.socket, args.trim)
    scenarios = [s for s in args.scenarios.split(",") if s]
    bodies = {"sane": listing(100), "list_10000": listing(args.containers // 2),
              "list_20000": listing(args.containers), "one_byte_chunks": listing(args.containers // 20),
              "parallel_8": listing(args.containers // 2)}
    directory = tempfile.mkdtemp(prefix="xsc-hostile-")
    document = {"bench": "hostile", "containers": args.containers,
                "body_mb": {name: round(len(body) / float(MIB), 1) for name, body in bodies.items()}}
    try:
        for scenario in scenarios:
            path = os.path.join(directory, scenario + ".sock")
            server = UnixServer(path, lambda conn, s=scenario: serve(conn, s, bodies))
            try:
                document[scenario] = {"as_is": run_child(scenario, path, False),
                                      "malloc_trim": run_child(scenario, path, True),
                                      "arena_max_2": run_child(scenario, path, False, 2)}
            finally:
                server.close()
    finally:
        os.rmdir(directory)
    sane = document.get("sane", {}).get("as_is")
    if sane:
        for scenario in scenarios:
            figures = document[scenario]["as_is"]
            figures["peak_over_sane"] = round(figures["rss_peak_mb"] / sane["rss_peak_mb"], 2)
            figures["cpu_over_sane"] = round(figures["cpu_s"] / max(sane["cpu_s"], 1e-3), 1)
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
