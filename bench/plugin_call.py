"""Latency of xscontainer plugin calls through ``host.call_plugin`` on the xapi simulator, with the
official XenAPI client, against a no-op plugin call (``echo``'s ``main``) measured in the same run.

Phase "monitor": ``xscontainer-monitor`` runs for host 1 (control socket in /run/xscontainer,
where the plugin looks) and watches the VM, so calls go through its warm engine connection.
Phase "direct": no monitor runs; each plugin process connects to the VM itself.
Phase "direct_rsa4096": the same with the pool key of a pool upgraded from the original (RSA,
4096 bits), against the original's way measured in the same run ("original_rsa4096": a no-op
plugin call plus what the original's plugin did per call: a fresh SSH connection authenticated
with the RSA key parsed from its file, ``ncat`` to the engine socket, HTTP/1.0).
Target: get_top of "direct_rsa4096" at least 2x faster than "original_rsa4096".
In the first two phases: echo.main (baseline), get_top (container name), get_inspect (full id), pause and
unpause (the 10-character ``container`` value), each --calls times after a warm-up.
Prints one JSON object: median/p95 (ms) per call and phase and each call's ratio to that
phase's no-op median. Target: get_top with the monitor <= 2x the no-op.

Usage: bench/plugin_call.py [--testbed DIR] [--calls N]
Without --testbed it brings up a testbed (1 host, 1 VM) in a temporary directory and removes it.
"""

import argparse
import os
import sys
import time

import XenAPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from _common import LOG  # noqa: E402

CONTROL_DIR = "/run/xscontainer"  # the plugin's fixed place for the monitor's socket
TARGET_GET_TOP_RATIO = 2.0
TARGET_SPEEDUP_OVER_ORIGINAL = 2.0
WARMUP = 3
POOL_KEY_ENTRIES = ("xscontainer-private-secret-uuid", "xscontainer-public-secret-uuid")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--testbed", help="an up testbed's directory (default: bring one up)")
    parser.add_argument("--calls", type=int, default=30, help="calls of each kind per phase (default 30)")
    parser.add_argument("--container", default="web", help="the running container used (default web)")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


class Caller(object):
    """host.call_plugin on host 1 through the official XenAPI client, over the simulator's URL."""

    def __init__(self, info, host_uuid):
        self.session = XenAPI.Session(info["xapi_url"])
        self.session.xenapi.login_with_password(info["username"], info["password"], "1.0", "bench-plugin-call")
        self.host = self.session.xenapi.host.get_by_uuid(host_uuid)

    def call(self, plugin, fn, args):
        return self.session.xenapi.host.call_plugin(self.host, plugin, fn, args)

    def timed(self, plugin, fn, args, count, check=None):
        samples = []
        for index in range(WARMUP + count):
            started = time.monotonic()
            result = self.call(plugin, fn, args)
            elapsed = time.monotonic() - started
            if check is not None and not check(result):
                raise SystemExit("bench: %s.%s returned %r" % (plugin, fn, result[:300]))
            if index >= WARMUP:
                samples.append(elapsed)
        return samples

    def close(self):
        try:
            self.session.xenapi.session.logout()
        except Exception:
            pass


def true_result(result):
    return isinstance(result, str) and result.startswith("True")


def measure_phase(caller, vm_uuid, container, short_id, full_id, count):
    vm = {"vmuuid": vm_uuid}
    figures = {}
    figures["noop"] = caller.timed("echo", "main", {"bench": "1"}, count)
    figures["get_top"] = caller.timed("xscontainer", "get_top", dict(vm, object=container), count, true_result)
    figures["get_inspect"] = caller.timed("xscontainer", "get_inspect", dict(vm, object=full_id), count, true_result)
    pause, unpause, pair = [], [], []
    for index in range(WARMUP + count):
        started = time.monotonic()
        if not true_result(caller.call("xscontainer", "pause", dict(vm, container=short_id))):
            raise SystemExit("bench: pause failed")
        middle = time.monotonic()
        if not true_result(caller.call("xscontainer", "unpause", dict(vm, container=short_id))):
            raise SystemExit("bench: unpause failed")
        ended = time.monotonic()
        if index >= WARMUP:
            pause.append(middle - started)
            unpause.append(ended - middle)
            pair.append(ended - started)
    figures["pause"], figures["unpause"], figures["pause+unpause"] = pause, unpause, pair
    figures["noop_after"] = caller.timed("echo", "main", {"bench": "1"}, count)
    baseline = _common.percentiles(figures["noop"] + figures["noop_after"])["p50_ms"]
    summary = {}
    for name, samples in figures.items():
        stats = _common.percentiles(samples)
        summary[name] = {"median_ms": stats["p50_ms"], "p95_ms": stats["p95_ms"], "count": stats["count"],
                         "ratio_to_noop": round(stats["p50_ms"] / baseline, 2) if baseline else None}
    summary["noop_median_ms_used_for_ratios"] = baseline
    return summary


def rsa4096_pool_key(sess, bed, vm, directory):
    """Make the pool's key an RSA-4096 pair (an upgraded pool's) authorized in the VM; returns
    the key file for the original's way and a function that puts the previous key back."""
    import tunnel  # the original's way, shared with bench/tunnel.py
    from xscontainer.xapi.maps import set_map_key
    rsa_path, rsa_public = tunnel.rsa_key_file(directory)
    with open(rsa_path) as handle:
        private_pem = handle.read()
    pool = sess.xenapi.pool.get_all()[0]
    before = sess.xenapi.pool.get_other_config(pool)
    created = [sess.xenapi.secret.get_uuid(sess.xenapi.secret.create({"value": value, "other_config": {}}))
               for value in (private_pem, rsa_public)]
    for entry, uuid in zip(POOL_KEY_ENTRIES, created):
        set_map_key(sess.xenapi.pool, pool, entry, uuid)
    previous_public = _common.pool_public_line(sess, before)
    bed.authorize_key(vm["name_label"], rsa_public)

    def restore():
        for entry in POOL_KEY_ENTRIES:
            if entry in before:
                set_map_key(sess.xenapi.pool, pool, entry, before[entry])
        for uuid in created:
            sess.xenapi.secret.destroy(sess.xenapi.secret.get_by_uuid(uuid))
        bed.authorize_key(vm["name_label"], previous_public)
    return rsa_path, restore


def measure_rsa_phase(caller, sess, bed, vm, container, directory, count):
    import tunnel
    rsa_path, restore = rsa4096_pool_key(sess, bed, vm, directory)
    try:
        ours = caller.timed("xscontainer", "get_top", {"vmuuid": vm["uuid"], "object": container}, count,
                            true_result)
        original = []
        for index in range(WARMUP + count):
            started = time.monotonic()
            caller.call("echo", "main", {"bench": "1"})
            tunnel.original_call(vm["ip"], vm["ssh_user"], rsa_path)
            if index >= WARMUP:
                original.append(time.monotonic() - started)
    finally:
        restore()
    ours_ms = _common.percentiles(ours)["p50_ms"]
    original_ms = _common.percentiles(original)["p50_ms"]
    return {"direct_rsa4096": {"get_top_median_ms": ours_ms, "count": len(ours)},
            "original_rsa4096": {"median_ms": original_ms, "count": len(original)},
            "speedup_rsa4096_over_original": round(original_ms / ours_ms, 2) if ours_ms else None}


def run(args, bed):
    info = bed.info()
    host = _common.host_of(info, 0)
    vm = next((v for v in info["vms"] if v["host_uuid"] == host["uuid"]), None)
    if vm is None:
        raise SystemExit("bench: host 1 has no VM")
    engine = _common.engine_client(vm["docker_socket"])
    record = engine.inspect(args.container)
    if record["State"].get("Paused"):
        engine.unpause(args.container)
    full_id = record["Id"]
    short_id = full_id[:10]
    directory = _common.work_dir(bed, "plugin_call")
    sess = _common.session(info)
    vm_ref = sess.xenapi.VM.get_by_uuid(vm["uuid"])
    caller = Caller(info, host["uuid"])
    result = {"bench": "plugin_call", "calls": args.calls, "vm": vm["name_label"], "container": args.container,
              "target_get_top_ratio_with_monitor": TARGET_GET_TOP_RATIO}
    events = _common.VmEvents(info)
    monitor = _common.MonitorProcess(info, host, directory, control_dir=CONTROL_DIR)
    try:
        monitor.wait_control()
        _common.set_registered(sess, vm_ref, True)
        if events.wait(lambda ev: ev.statuses(vm_ref) is not None, 60.0) is None:
            raise SystemExit("bench: the monitor did not reflect %s; see %s" % (vm["name_label"], monitor.log_path))
        LOG.info("phase 'monitor': %d calls of each kind", args.calls)
        result["monitor"] = measure_phase(caller, vm["uuid"], args.container, short_id, full_id, args.calls)
        result["monitor_log"] = monitor.log_path
    finally:
        monitor.stop()
        events.close()
    try:
        if os.path.exists(monitor.control_path):
            raise SystemExit("bench: the monitor's control socket %s is still there" % monitor.control_path)
        LOG.info("phase 'direct' (no monitor): %d calls of each kind", args.calls)
        result["direct"] = measure_phase(caller, vm["uuid"], args.container, short_id, full_id, args.calls)
        LOG.info("phase 'direct_rsa4096' and the original's way: %d calls each", args.calls)
        result.update(measure_rsa_phase(caller, sess, bed, vm, args.container, directory, args.calls))
    finally:
        _common.set_registered(sess, vm_ref, False)
        for key in ("docker_ps", "docker_info", "docker_version"):  # no monitor is left to remove them
            sess.xenapi.VM.remove_from_other_config(vm_ref, key)
        caller.close()
        _common.close(sess)
    ratio = result["monitor"]["get_top"]["ratio_to_noop"]
    result["meets_target"] = ratio is not None and ratio <= TARGET_GET_TOP_RATIO
    speedup = result["speedup_rsa4096_over_original"]
    result["target_speedup_rsa4096_over_original"] = TARGET_SPEEDUP_OVER_ORIGINAL
    result["meets_rsa4096_target"] = speedup is not None and speedup >= TARGET_SPEEDUP_OVER_ORIGINAL
    result["speedup_monitor_vs_direct"] = {
        name: round(result["direct"][name]["median_ms"] / result["monitor"][name]["median_ms"], 2)
        for name in ("get_top", "get_inspect", "pause", "unpause", "pause+unpause")}
    return result


def main(argv=None):
    args = parse_args(argv)
    _common.setup_logging(not args.quiet)
    if args.calls < 1:
        raise SystemExit("bench: --calls must be at least 1")
    with _common.bench_testbed(args.testbed, hosts=1, vms=1, containers=4, monitor=False) as bed:
        document = run(args, bed)
    _common.emit(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
