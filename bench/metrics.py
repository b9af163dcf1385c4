"""The metrics reporter's own CPU cost: 100 VMs x 10 running containers by default.

The engines are one fake Docker engine in a child process (HTTP on a Unix socket, realistic
``/containers/json`` and one-shot ``stats`` documents, counters that grow), reached through the
product's DockerClient and HttpPool, one pool per VM as the monitor holds them. rrdd is a stub
that always says "reading soon", so each measured cycle samples every VM and writes the
protocol-v2 file. CPU is this process's (every thread), measured over whole cycles.

Baseline, measured in the same run: the same engine reads alone (container list plus one
one-shot stats per container, same threads), without the reporter's summaries, payload and
file. Prints one JSON object: CPU seconds per cycle for both, and the reporter's share of one
core at rrdd's 5-second interval.

Usage: bench/metrics.py [--vms N] [--containers N] [--cycles N] [--quiet]
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from _common import LOG  # noqa: E402
from xscontainer.engine.client import DockerClient  # noqa: E402
from xscontainer.engine.http import HttpPool  # noqa: E402
from xscontainer.metrics.reporter import INTERVAL, Reporter, ReporterOptions  # noqa: E402
from xscontainer.transport.stream import SocketStream  # noqa: E402

API = "1.43"


# -- the fake engine (child process) ------------------------------------------------------------

def stats_document(ident: str, tick: int) -> dict:
    """What dockerd 24 sends for one-shot stats (shape and size), counters growing with tick."""
    cpus = 4
    return {
        "read": "2026-12-02T08:00:00.000000000Z", "preread": "0001-01-01T00:00:00Z", "name": "/c-" + ident[:8],
        "id": ident, "pids_stats": {"current": 3, "limit": 4915},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "read", "value": 4096 * tick},
            {"major": 8, "minor": 0, "op": "write", "value": 8192 * tick}],
            "io_serviced_recursive": None, "io_queue_recursive": None, "io_service_time_recursive": None,
            "io_wait_time_recursive": None, "io_merged_recursive": None, "io_time_recursive": None,
            "sectors_recursive": None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 10 ** 7 * tick, "usage_in_kernelmode": 10 ** 6 * tick,
                                    "usage_in_usermode": 9 * 10 ** 6 * tick},
                      "system_cpu_usage": 10 ** 9 * tick, "online_cpus": cpus,
                      "throttling_data": {"periods": tick, "throttled_periods": 0, "throttled_time": 0}},
        "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                         "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
        "memory_stats": {"usage": 50 << 20, "stats": {
            "active_anon": 0, "active_file": 1 << 20, "anon": 40 << 20, "anon_thp": 0, "file": 8 << 20,
            "file_dirty": 0, "file_mapped": 2 << 20, "file_writeback": 0, "inactive_anon": 40 << 20,
            "inactive_file": 7 << 20, "kernel_stack": 32768, "pgactivate": 10, "pgdeactivate": 0,
            "pgfault": 12345 * tick, "pglazyfree": 0, "pglazyfreed": 0, "pgmajfault": 3, "pgrefill": 0,
            "pgscan": 0, "pgsteal": 0, "shmem": 0, "slab": 300000, "slab_reclaimable": 200000,
            "slab_unreclaimable": 100000, "sock": 0, "thp_collapse_alloc": 0, "thp_fault_alloc": 0,
            "unevictable": 0, "workingset_activate": 0, "workingset_nodereclaim": 0, "workingset_refault": 0},
            "limit": 2 << 30},
        "networks": {"eth0": {"rx_bytes": 1500 * tick, "rx_packets": tick, "rx_errors": 0, "rx_dropped": 0,
                              "tx_bytes": 900 * tick, "tx_packets": tick, "tx_errors": 0, "tx_dropped": 0}},
    }


class EngineHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.disable_nagle_algorithm = False
        super().setup()

    def log_message(self, fmt, *args) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _send(self, body: bytes, headers=()) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", API)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        server = self.server
        if path == "/_ping":
            self._send(b"OK")
        elif path.endswith("/containers/json"):
            self._send(json.dumps([{"Id": ident, "Names": ["/c-" + ident[:8]], "State": "running"}
                                   for ident in server.containers]).encode())
        elif path.endswith("/stats"):
            server.tick += 1
            self._send(json.dumps(stats_document(path.split("/")[-2], server.tick)).encode())
        else:
            self.send_error(404)


class EngineServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve_engine(path: str, containers: int) -> None:
    server = EngineServer(path, EngineHandler)
    server.containers = ["%064x" % (0xC0DE0000 + i) for i in range(containers)]
    server.tick = 0
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.serve_forever()


# -- the measurement ----------------------------------------------------------------------------

class StubRrdd:
    """Always "the reading is soon": every cycle samples and writes."""

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def get_path(self, uid: str) -> str:
        return os.path.join(self._directory, uid)

    def register(self, uid: str, protocol: str = "V2") -> float:
        return 30.0

    def next_reading(self, uid: str) -> float:
        return 30.0

    def deregister(self, uid: str) -> None:
        pass


def engine_client(path: str) -> DockerClient:
    def open_stream():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return SocketStream(sock, "bench-engine")
    return DockerClient(HttpPool(open_stream, max_idle=4), "bench")


def raw_reads(client: DockerClient) -> int:
    containers = client.containers(all=False)
    for item in containers:
        client.stats(item["Id"], one_shot=True)
    return len(containers)


def measure(run_once, cycles: int):
    cpu0, wall0 = time.process_time(), time.monotonic()
    for _ in range(cycles):
        run_once()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    return {"cpu_s_per_cycle": round(cpu / cycles, 4), "wall_s_per_cycle": round(wall / cycles, 4),
            "core_percent_at_5s": round(100.0 * cpu / cycles / INTERVAL, 2)}


def run(args) -> dict:
    work = tempfile.mkdtemp(prefix="xsc-bench-metrics-")
    engine_path = os.path.join(work, "engine.sock")
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-engine", engine_path,
                              "--containers", str(args.containers)], stdout=subprocess.PIPE)
    try:
        if child.stdout.readline().strip() != b"ready":
            raise SystemExit("bench: the fake engine did not start")
        vms = ["%08x-0000-4000-8000-%012x" % (i, i) for i in range(args.vms)]
        clients = {vm: engine_client(engine_path) for vm in vms}
        options = ReporterOptions(lead=60.0, margin=0.0)
        reporter = Reporter(lambda: vms, clients.__getitem__, StubRrdd(work), options)
        for _ in range(2):  # warm-up: connections, API negotiation, new containers' double reads
            reporter.cycle()
        LOG.info("warm: %d data sources", args.vms * args.containers * 7)
        with concurrent.futures.ThreadPoolExecutor(options.workers) as pool:
            list(pool.map(raw_reads, clients.values()))
            baseline = measure(lambda: list(pool.map(raw_reads, clients.values())), args.cycles)
        measured = measure(reporter.cycle, args.cycles)
        size = sum(os.path.getsize(os.path.join(work, name)) for name in os.listdir(work)
                   if name.startswith(options.uid))
        reporter.stop()
        for client in clients.values():
            client.close()
        return {"bench": "metrics", "vms": args.vms, "containers_per_vm": args.containers,
                "datasources": args.vms * args.containers * 7, "cycles": args.cycles,
                "shared_files_bytes": size, "reporter": measured, "baseline_engine_reads_only": baseline,
                "reporter_overhead_cpu_s_per_cycle": round(measured["cpu_s_per_cycle"]
                                                           - baseline["cpu_s_per_cycle"], 4),
                "load_average": os.getloadavg()[0]}
    finally:
        child.terminate()
        child.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--containers", type=int, default=10, help="running containers per VM")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--serve-engine", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_engine:
        serve_engine(args.serve_engine, args.containers)
        return 0
    _common.setup_logging(not args.quiet)
    _common.emit(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
