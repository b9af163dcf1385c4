"""Reflect latency: from a container state change made with the engine directly to the new state in
``VM.other_config:docker_ps``, as seen through xapi events.

A monitor (the ``xscontainer-monitor`` command) runs for host 1; one VM of host 1 is registered.
N times, alternately, ``web`` is paused or unpaused over the VM's Docker socket (no SSH, no
monitor involved) and the time from the engine's acknowledgement of the call until an
``event.from`` batch (on a second session, no polling) carries a ``docker_ps`` whose ``web``
entry shows the new status is recorded. Prints one JSON object: p50/p95/max (ms) and the count.
Target: p95 <= 1000 ms.

Usage: bench/reflect.py [--testbed DIR] [--changes N] [--container NAME]
Without --testbed it brings up a testbed (1 host, 1 VM) in a temporary directory and removes it.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from _common import LOG  # noqa: E402

PAUSED, RUNNING = "Up (Paused)", "Up"
TARGET_P95_MS = 1000.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--testbed", help="an up testbed's directory (default: bring one up)")
    parser.add_argument("--changes", type=int, default=100, help="number of state changes (default 100)")
    parser.add_argument("--container", default="web", help="the running container to toggle (default web)")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up on one change after this long")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser.parse_args(argv)


def pick_vm(info):
    host = _common.host_of(info, 0)
    for vm in info["vms"]:
        if vm["host_uuid"] == host["uuid"]:
            return host, vm
    raise SystemExit("bench: host 1 has no VM")


def run(args, bed):
    info = bed.info()
    host, vm = pick_vm(info)
    directory = _common.work_dir(bed, "reflect")
    sess = _common.session(info)
    vm_ref = sess.xenapi.VM.get_by_uuid(vm["uuid"])
    engine = _common.engine_client(vm["docker_socket"])
    name = args.container
    # A known starting point: running.
    state = engine.inspect(name)["State"]
    if state.get("Paused"):
        engine.unpause(name)
    monitor = _common.MonitorProcess(info, host, directory)
    events = _common.VmEvents(info)
    samples, call_samples, missed = [], [], 0
    try:
        monitor.wait_control()
        registered_at = time.monotonic()
        _common.set_registered(sess, vm_ref, True)

        def shows(status):
            return lambda ev: (ev.statuses(vm_ref) or {}).get(name) == status

        if events.wait(shows(RUNNING), 60.0) is None:
            raise SystemExit("bench: docker_ps of %s never appeared; see %s" % (vm["name_label"], monitor.log_path))
        first_reflection = time.monotonic() - registered_at
        LOG.info("registered and reflected in %.2f s; making %d changes", first_reflection, args.changes)
        for index in range(args.changes):
            pause = index % 2 == 0
            expected = PAUSED if pause else RUNNING
            called = time.monotonic()
            (engine.pause if pause else engine.unpause)(name)
            done = time.monotonic()
            call_samples.append(done - called)
            arrived = events.wait(shows(expected), args.timeout)
            if arrived is None:
                missed += 1
                LOG.warning("change %d (%s) not reflected within %.0f s", index, expected, args.timeout)
                continue
            samples.append(arrived - done)
    finally:
        try:
            if (engine.inspect(name)["State"] or {}).get("Paused"):
                engine.unpause(name)
        finally:
            _common.set_registered(sess, vm_ref, False)
            # The monitor removes the VM's docker_* keys on deregistration: leave the testbed clean.
            events.wait(lambda ev: "docker_ps" not in ev.configs.get(vm_ref, {}), 10.0)
            stop_seconds = monitor.stop()
            events.close()
            _common.close(sess)
    result = _common.percentiles(samples)
    return {
        "bench": "reflect",
        "changes": args.changes,
        "reflected": len(samples),
        "missed": missed,
        "latency": result,
        "engine_call": _common.percentiles(call_samples),
        "first_reflection_s": round(first_reflection, 3),
        "monitor_stop_s": stop_seconds,
        "target_p95_ms": TARGET_P95_MS,
        "meets_target": missed == 0 and result["p95_ms"] is not None and result["p95_ms"] <= TARGET_P95_MS,
        "vm": vm["name_label"],
        "monitor_log": monitor.log_path,
        "measured_from": "the engine's reply to pause/unpause (direct Docker socket)",
        "measured_to": "the event.from batch carrying docker_ps with the new status",
    }


def main(argv=None):
    args = parse_args(argv)
    _common.setup_logging(not args.quiet)
    if args.changes < 1:
        raise SystemExit("bench: --changes must be at least 1")
    with _common.bench_testbed(args.testbed, hosts=1, vms=1, containers=4, monitor=False) as bed:
        document = run(args, bed)
    _common.emit(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
