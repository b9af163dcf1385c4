"""Client CPU of the monitor's write of one key (``VM.remove_from_other_config`` then
``VM.add_to_other_config``, ``maps.set_map_key``) over the local Unix socket of a simulator
started for the run: with the product's transport (xscontainer.xapi.localhttp) and, as the
baseline measured in the same run, with XenAPI's ``UDSTransport`` over http.client (given the
same C parser of replies, so that only the HTTP side differs).

Prints one JSON object: ms of the calling thread's CPU per write (the median of --rounds rounds
of --writes writes, the two transports alternating), and their ratio.

Usage: bench/xapi_call.py [--writes N] [--rounds N]
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import XenAPI  # noqa: E402

from xscontainer.monitor.coalesce import thread_cpu_time  # noqa: E402
from xscontainer.sim.process import SimulatorProcess  # noqa: E402
from xscontainer.xapi.localhttp import LocalSocketTransport  # noqa: E402
from xscontainer.xapi.maps import set_map_key  # noqa: E402
from xscontainer.xapi.xmlrpcparse import parse_reply, tree_parser  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


class HttpClientTransport(XenAPI.UDSTransport):
    """The baseline: XenAPI's transport, replies read whole and parsed as the product parses them."""

    def getparser(self):
        return tree_parser(self._use_datetime, self._use_builtin_types)

    def parse_response(self, response):
        return parse_reply(response.read(), self._use_datetime, self._use_builtin_types)


TRANSPORTS = {"http_client": HttpClientTransport, "local_socket": lambda: LocalSocketTransport(60.0)}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args(argv)


def cpu_per_write_ms(socket_path, make_transport, writes):
    session = XenAPI.Session("http://" + socket_path.replace("/", "_") + "/", transport=make_transport())
    session.xenapi.login_with_password("root", "", "1.0", "bench")
    try:
        vm = session.xenapi.VM.get_all()[0]
        set_map_key(session.xenapi.VM, vm, "bench_key", "warm-up")
        started = thread_cpu_time()
        for index in range(writes):
            set_map_key(session.xenapi.VM, vm, "bench_key", "value %d" % index)
        spent = thread_cpu_time() - started
        session.xenapi.VM.remove_from_other_config(vm, "bench_key")
        return spent / writes * 1000.0
    finally:
        session.xenapi.session.logout()


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="xscb-") as directory:
        sim = SimulatorProcess(directory)
        sim.start()
        try:
            samples = {name: [] for name in TRANSPORTS}
            for _ in range(args.rounds):
                for name, make in TRANSPORTS.items():
                    samples[name].append(cpu_per_write_ms(sim.socket_path, make, args.writes))
        finally:
            sim.stop()
    medians = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    _common.emit({
        "bench": "xapi_call", "python": "%d.%d.%d" % sys.version_info[:3], "writes": args.writes,
        "rounds": args.rounds, "cpu_ms_per_write": medians,
        "cpu_ms_per_write_rounds": {name: [round(v, 3) for v in values] for name, values in samples.items()},
        "baseline_over_product": round(medians["http_client"] / medians["local_socket"], 2),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
