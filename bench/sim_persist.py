"""CPU cost of one persistence dump of the xapi simulator's database (``Database.dump``, run
holding the database lock and the GIL) with N VMs carrying the monitor's keys, after --changed of
them changed, against the baseline measured in the same run: encoding the whole state at once,
as every dump did before rows were encoded once per change.

Each VM is the simulator's VM record whose other_config holds docker_ps, docker_info and
docker_version as the monitor renders them (the records of bench/xapi_parse.py).

Prints one JSON object: ms of CPU per dump (``_common.best_cpu``: best of --repeat), the dump's
size, and the ratio.

Usage: bench/sim_persist.py [--vms N] [--changed N] [--repeat N]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xscontainer.consumerxml.documents import render_docker_info, render_docker_version  # noqa: E402
from xscontainer.consumerxml.ps import render_docker_ps  # noqa: E402
from xscontainer.sim import datamodel as dm  # noqa: E402
from xscontainer.sim.db import DB_FORMAT, Database  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from xapi_parse import INFO, VERSION, container  # noqa: E402


def populated(vms):
    db = Database()
    keys = {"xscontainer-monitor": "True", "docker_ps": render_docker_ps([container(0)]),
            "docker_info": render_docker_info(INFO), "docker_version": render_docker_version(VERSION)}
    with db.lock:
        refs = [db.create("VM", {"name_label": "vm%d" % index, "other_config": dict(keys)}) for index in range(vms)]
    return db, refs


def whole_state(db):
    """The baseline: the whole persistent state encoded in one go."""
    keep = [t for t in dm.TABLES if t not in dm.VOLATILE_TABLES]
    return json.dumps({"format": DB_FORMAT, "generation": db.generation, "msg_generation": db.msg_generation,
                       "tables": {t: db.tables[t] for t in keep}, "stamps": {t: db.stamps[t] for t in keep},
                       "tombs": {t: db.tombs[t] for t in keep}}, sort_keys=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=100, help="VMs changed between two dumps")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    db, refs = populated(args.vms)
    counter = [0]

    def change_and_dump():
        counter[0] += 1
        for ref in refs[:args.changed]:
            db.get("VM", ref)["other_config"]["docker_ps"] = "<docker_ps><n>%d</n></docker_ps>" % counter[0]
            db.touch("VM", ref)
        return db.dump()

    with db.lock:
        text = db.dump()  # the first dump encodes every row
        if json.loads(text) != json.loads(whole_state(db)):
            raise SystemExit("bench: the dump differs from the whole state")
        baseline_s = _common.best_cpu(args.repeat, whole_state, db)
        ours_s = _common.best_cpu(args.repeat, change_and_dump)
    _common.emit({
        "bench": "sim_persist", "python": "%d.%d.%d" % sys.version_info[:3], "vms": args.vms,
        "changed": args.changed, "dump_bytes": len(text),
        "whole_state_ms": round(1000.0 * baseline_s, 2), "dump_ms": round(1000.0 * ours_s, 2),
        "ratio": round(ours_s / baseline_s, 3),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
