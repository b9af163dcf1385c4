"""What a hostile guest's engine makes the RUNNING monitor spend, and whether the other VMs stay
current meanwhile.

A testbed (1 host, 2 VMs: real sshd and dockerd) and an ``xscontainer-monitor`` process for the
host (with MALLOC_ARENA_MAX=2, as its systemd unit runs it), vm2 registered. For each mode
(``tests/monitor/hostilebed.py``: ``quiet`` first, the baseline of the same run, then one mode per
attack: endless body, 1-byte chunks, a 10,000-container list, a value bomb, deep JSON, garbage, a
1 TB Content-Length, a slow drip, an event flood) a fake engine is bound to vm1's Docker socket
and vm1 is registered (afresh: no back-off left from the mode before), so that the monitor meets
it at once; for ``--window`` seconds the monitor's RSS (sampled every 20 ms from /proc) and CPU
seconds are measured while a container on vm2 is started and stopped ``--samples`` times, each
time timed from the engine's reply to the ``event.from`` batch whose ``docker_ps`` shows the new
status. ``rss_start_mb`` is the RSS when the mode began (what earlier modes left allocated).

Budgets (stated in the README), each reported pass/fail per mode:
- memory: peak RSS <= the quiet peak + 256 MiB (the hostile VM's budget, engine/budget.py) + 32 MiB;
- CPU: at most 25 % of one core over the window (everything the monitor does, baseline included);
- reflection of the other VM: every sample within 1 s.

Prints one JSON object. Usage: bench/hostile.py [--testbed DIR] [--modes a,b] [--window S] [--samples N]
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import _common  # noqa: E402
from _common import LOG  # noqa: E402
from monitor.hostilebed import HOSTILE_MODES, MODES, Hostile, Probe, Sampler  # noqa: E402
from xscontainer.engine.budget import MIB, VM_BUDGET  # noqa: E402
from xscontainer.transport.control import control_call  # noqa: E402

MEMORY_SLACK_MB = 32.0
CPU_BUDGET = 0.25  # of one core, over the window
REFLECT_BUDGET_S = 1.0
UNIT_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}  # as the monitor's systemd unit runs it


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--testbed", help="an up testbed's directory with 2 VMs on host 1 (default: bring one up)")
    parser.add_argument("--modes", default=",".join(HOSTILE_MODES), help="hostile modes (default: all)")
    parser.add_argument("--window", type=float, default=12.0, help="seconds measured per mode (default 12)")
    parser.add_argument("--samples", type=int, default=3, help="reflections of vm2 per mode (default 3)")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser.parse_args(argv)


def measure(bed, sess, monitor, events, probe, refs, hostile_vm, hostile_uuid, mode, window, samples):
    """One mode: the hostile VM registered afresh (no back-off left from the mode before), the
    monitor's peak RSS and CPU over ``window`` and vm2's reflection times meanwhile."""
    figures = {"what": MODES[mode]}
    latencies, missed = [], 0
    other_ref = refs[1]
    with Hostile(bed, hostile_vm, mode) as engine:
        sampler = Sampler(monitor.pid).start()
        figures["rss_start_mb"] = sampler.peak_mb
        began = time.monotonic()
        _common.set_registered(sess, refs[0], True)
        for index in range(samples):
            started = index % 2 == 0
            called = time.monotonic()
            (probe.start if started else probe.stop)()
            done = time.monotonic()
            expected = "Up" if started else "Exited"
            arrived = events.wait(lambda ev: ((ev.statuses(other_ref) or {}).get(probe.name) or "")
                                  .startswith(expected), 30.0)
            if arrived is None:
                missed += 1
            else:
                latencies.append(arrived - done)
            LOG.info("%s: vm2 %s reflected in %s s (the call took %.3f s)", mode, expected,
                     None if arrived is None else round(arrived - done, 3), done - called)
            time.sleep(max(0.0, min(1.0, began + window - time.monotonic())))
        time.sleep(max(0.0, began + window - time.monotonic()))
        peak, cpu, seconds = sampler.stop()
        figures["requests_served"] = engine.requests
        figures["requests_by_kind"] = dict(engine.served)
        status = control_call(monitor.control_path, "status", {"vm": hostile_uuid}, timeout=30) or {}
        _common.set_registered(sess, refs[0], False)
        events.wait(lambda ev: "docker_ps" not in ev.configs.get(refs[0], {}), 30.0)
    if samples % 2:  # leave the probe stopped
        probe.stop()
        events.wait(lambda ev: ((ev.statuses(other_ref) or {}).get(probe.name) or "").startswith("Exited"), 30.0)
    figures.update({
        "rss_peak_mb": peak, "cpu_s": cpu, "window_s": seconds, "cpu_share": round(cpu / seconds, 3),
        "reflect_s": [round(x, 3) for x in latencies], "reflect_missed": missed,
        "reflect_max_s": round(max(latencies), 3) if latencies else None,
        "hostile_vm_state": status.get("state"), "hostile_vm_error": status.get("last_error_code"),
        "hostile_vm_message": (status.get("last_error") or "")[:200] or None,
    })
    return figures


def judge(document):
    quiet = document["modes"]["quiet"]
    memory_budget = round(quiet["rss_peak_mb"] + VM_BUDGET / MIB + MEMORY_SLACK_MB, 1)
    document["budgets"] = {"rss_peak_mb": memory_budget, "cpu_share": CPU_BUDGET, "reflect_max_s": REFLECT_BUDGET_S}
    verdicts = []
    for mode, figures in document["modes"].items():
        figures["pass"] = {
            "memory": figures["rss_peak_mb"] <= memory_budget,
            "cpu": figures["cpu_share"] <= CPU_BUDGET,
            "reflect": figures["reflect_missed"] == 0 and figures["reflect_max_s"] is not None
            and figures["reflect_max_s"] <= REFLECT_BUDGET_S,
        }
        figures["rss_over_quiet_mb"] = round(figures["rss_peak_mb"] - quiet["rss_peak_mb"], 1)
        verdicts.append(all(figures["pass"].values()))
    document["pass"] = all(verdicts)


def run(args, bed):
    info = bed.info()
    host = _common.host_of(info, 0)
    vms = [vm for vm in info["vms"] if vm["host_uuid"] == host["uuid"]]
    if len(vms) < 2:
        raise SystemExit("bench: host 1 needs two VMs")
    hostile_vm, other_vm = vms[0], vms[1]
    modes = ["quiet"] + [m for m in args.modes.split(",") if m and m != "quiet"]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit("bench: unknown modes %s (known: %s)" % (unknown, ", ".join(MODES)))
    sess = _common.session(info)
    refs = [sess.xenapi.VM.get_by_uuid(vm["uuid"]) for vm in (hostile_vm, other_vm)]
    probe = Probe(bed, other_vm["name_label"])
    monitor = _common.MonitorProcess(info, host, _common.work_dir(bed, "hostile"), env=UNIT_ENVIRONMENT)
    events = _common.VmEvents(info)
    document = {"bench": "hostile", "window_s": args.window, "samples": args.samples, "python": sys.version.split()[0],
                "hostile_vm": hostile_vm["name_label"], "other_vm": other_vm["name_label"], "modes": {}}
    try:
        monitor.wait_control()
        _common.set_registered(sess, refs[1], True)
        if events.wait(lambda ev: ev.statuses(refs[1]) is not None, 60.0) is None:
            raise SystemExit("bench: docker_ps never appeared; see %s" % monitor.log_path)
        document["rss_registered_mb"] = _common.rss_mb(monitor.pid)
        for mode in modes:
            LOG.info("mode %s: %s", mode, MODES[mode])
            document["modes"][mode] = measure(bed, sess, monitor, events, probe, refs, hostile_vm["name_label"],
                                              hostile_vm["uuid"], mode, args.window, args.samples)
            if not monitor.alive():
                raise SystemExit("bench: the monitor died under %s; see %s" % (mode, monitor.log_path))
        document["rss_end_mb"] = _common.rss_mb(monitor.pid)
    finally:
        try:
            probe.remove()
            for ref in refs:
                _common.set_registered(sess, ref, False)
            for ref in refs:
                events.wait(lambda ev: "docker_ps" not in ev.configs.get(ref, {}), 10.0)
        finally:
            monitor.stop()
            events.close()
            _common.close(sess)
    document["monitor_log"] = monitor.log_path
    judge(document)
    return document


def main(argv=None):
    args = parse_args(argv)
    _common.setup_logging(not args.quiet)
    with _common.bench_testbed(args.testbed, hosts=1, vms=2, containers=1, monitor=False) as bed:
        document = run(args, bed)
    _common.emit(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
