"""The per-host reporter: every running container of every monitored VM, as data sources owned
by that VM, published through xcp-rrdd's plugin protocol v2: one plugin (file) per VM,
``<uid>-vm-<vm uuid>``, and the host's ``<uid>`` (its count of containers) that gives the timing.

Each cycle wakes ``lead`` seconds before rrdd's next reading (``Plugin.Local.register``
answers how long until then, as xen-api's rrdd.py uses it), samples every VM in parallel
through the monitor's warm engine connections (one container list plus one one-shot stats
read per container, the reads of a VM at once, CPU computed against the previous cycle's read; a new container is read a
second time ``FIRST_WINDOW`` later, so its CPU is known in its first cycle, sooner and more
surely than the engine's own two samples, which take up to two seconds), writes the shared
file at least ``margin`` seconds before the reading, and sleeps past it. rrdd counts a reading
without news as a failure and then skips readings: exactly one write per reading, never late.
A VM that answers late is published from its last result while that is fresh.
"""

import concurrent.futures
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from xscontainer.backoff import Backoff
from xscontainer.errors import XSContainerError
from xscontainer.metrics.names import METRICS
from xscontainer.metrics.protocol import HEADER_SIZE, DataSource, encode_payload
from xscontainer.metrics.rrddclient import RrddClient, RrddError
from xscontainer.metrics.sample import Sample, Summary, has_cpu_sample, ids_and_names, summarize, \
    vm_datasources
from xscontainer.metrics.shmfile import PluginFile

LOG = logging.getLogger(__name__)
INTERVAL = 5.0  # rrdd's only frequency, Five_Seconds
FIRST_WINDOW = 1.0  # seconds between a new container's two first reads (docker stats' window)
READ_LANES = 4  # stats reads in flight per VM being sampled


class ReporterOptions(NamedTuple):
    uid: str = "xscontainer"
    # Seconds before rrdd's reading that sampling starts: lead - margin is the sampling's budget,
    # room for a new container's two reads FIRST_WINDOW apart on a loaded host.
    lead: float = 4.0
    margin: float = 1.0        # the file is written at least this long before the reading
    workers: int = 8
    stale_after: float = 2 * INTERVAL
    # Seconds the stop waits for xcp-rrdd's deregistrations: the interpreter joins their
    # threads at exit, so a hung rrdd must not keep a thousand of them queued.
    drop_deadline: float = 10.0


def vm_uid(main_uid: str, vm_uuid: str) -> str:
    """One plugin per VM: data-source names are unique within a plugin's metadata, and two VMs
    may well both run a container called "web"."""
    return "%s-vm-%s" % (main_uid, vm_uuid)


class _Plugin:
    def __init__(self, file: PluginFile) -> None:
        self.file = file
        self.registered = False


class _AllDone:
    """``future`` is done once ``count`` futures are, each with ``one_done`` as a done callback."""

    def __init__(self, count: int) -> None:
        self.future = concurrent.futures.Future()  # type: concurrent.futures.Future
        self._left = count
        self._lock = threading.Lock()

    def one_done(self, _: concurrent.futures.Future) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self.future.set_result(None)


class VmResult(NamedTuple):
    taken: float
    summaries: List[Summary]


class Reporter:
    """Owns its threads: ``start()``; ``stop()`` (deregisters, removes the files, joins the cycle
    thread); ``join()`` once the engine connections are closed (joins the sampling workers, which
    may be inside an engine call until then)."""

    def __init__(self, vms: Callable[[], List[str]], client_for: Callable[[str], Any], rrdd: RrddClient,
                 options: ReporterOptions = ReporterOptions(), wallclock: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic,
                 running_for: Optional[Callable[[str], Optional[List[Tuple[str, str]]]]] = None) -> None:
        """``running_for(vm)``: the VM's running containers as (id, name), when the caller
        keeps them current (the monitor's watchers do, from the engines' events), else None:
        the reporter then asks the engine for its list."""
        self._vms = vms
        self._client_for = client_for
        self._running_for = running_for
        self._rrdd = rrdd
        self.options = options
        self._wallclock = wallclock
        self._clock = clock
        self._stop = threading.Event()
        self._stopped = concurrent.futures.Future()  # type: concurrent.futures.Future  # done at stop()
        self._thread = None  # type: Optional[threading.Thread]
        self._pool = concurrent.futures.ThreadPoolExecutor(options.workers, thread_name_prefix="metrics")
        # The VMs' stats reads: a pool of their own, as a VM's sampling waits on them.
        self._reads = concurrent.futures.ThreadPoolExecutor(options.workers * (READ_LANES - 1),
                                                            thread_name_prefix="metrics-read")
        self._lock = threading.Lock()
        self._previous = {}  # type: Dict[str, Dict[str, Any]]  # vm -> container id -> cpu_stats
        self._results = {}  # type: Dict[str, VmResult]
        self._pending = {}  # type: Dict[str, concurrent.futures.Future]
        self._plugins = {}  # type: Dict[str, _Plugin]  # uid -> its file, registered or not
        self._directory = None  # type: Optional[str]
        self.published = 0  # readings written (for tests and the bench)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Reporter":
        self._thread = threading.Thread(target=self._run, name="metrics-reporter", daemon=True)
        self._thread.start()
        return self

    def signal_stop(self) -> None:
        """Stop sampling, without waiting: the reporter's thread deregisters its plugins itself
        (a thousand xcp-rrdd calls), meanwhile the monitor closes its connections."""
        self._stop.set()
        with self._lock:
            if not self._stopped.done():
                self._stopped.set_result(None)

    def stop(self, timeout: float = 10.0) -> None:
        self.signal_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False)  # no new work; join() waits for the running
        self._reads.shutdown(wait=False)
        if self._thread is None or not self._thread.is_alive():
            self._drop_all()

    def _drop_all(self) -> None:
        # One xcp-rrdd call each: a thousand in series took 2.7 s of the monitor's stop. Several
        # at once may fill rrdd's listen backlog: UnixHTTPConnection then waits for room.
        uids = list(self._plugins)
        if not uids:
            return
        pool = concurrent.futures.ThreadPoolExecutor(min(len(uids), self.options.workers),
                                                     thread_name_prefix="metrics-drop")
        try:
            drops = [pool.submit(self._drop_quietly, uid) for uid in uids]
            _, late = concurrent.futures.wait(drops, timeout=self.options.drop_deadline)
            cancelled = sum(1 for drop in late if drop.cancel())
            if late:
                LOG.warning("metrics: xcp-rrdd did not deregister %d plugins within %gs (%d not tried)",
                            len(late), self.options.drop_deadline, cancelled)
        finally:
            pool.shutdown(wait=False)

    def _drop_quietly(self, uid: str) -> None:
        try:
            self._drop(uid)
        except (RrddError, OSError) as exc:
            LOG.warning("metrics: could not deregister %s from xcp-rrdd: %s", uid, exc)

    def join(self) -> None:
        self._pool.shutdown(wait=True)
        self._reads.shutdown(wait=True)

    def _run(self) -> None:
        retry = Backoff(1.0, 60.0)
        while not self._stop.is_set():
            try:
                delay = self.cycle()
                retry.reset()
            except (RrddError, OSError) as exc:
                for plugin in self._plugins.values():
                    plugin.registered = False
                delay = retry.next_delay()
                LOG.warning("metrics: %s; retrying in %.0fs", exc, delay)
            self._stop.wait(delay)
        self._drop_all()

    # -- one cycle ---------------------------------------------------------------------------
    def cycle(self) -> float:
        """Publish if rrdd reads soon; the seconds to wait before the next cycle."""
        main = self.options.uid
        if self._directory is None:
            # rrdd_server.ml get_path: base_path ^ uid, so the VMs' files are its neighbours.
            self._directory = os.path.dirname(self._rrdd.get_path(main))
        if main not in self._plugins:
            self._publish(main, [self._host_source(0)])  # rrdd opens a file at registration
        until = self._rrdd.next_reading(main)
        if until == -1.0:  # rrdd does not know us (it restarted): register every file again
            for plugin in self._plugins.values():
                plugin.registered = False
            self._register(main)
            until = self._rrdd.next_reading(main)
        if until < 0:
            until %= INTERVAL
        if until > self.options.lead:
            return until - self.options.lead
        started = self._clock()
        per_vm = self.collect(max(0.0, until - self.options.margin))
        if self._stop.is_set():  # the plugins go: nothing to publish
            return 0.0
        for vm, sources in per_vm.items():
            self._publish(vm_uid(main, vm), sources)
        published = set(vm_uid(main, vm) for vm in per_vm)
        for uid in [u for u in self._plugins if u != main and u not in published]:
            self._drop(uid)  # a VM no longer watched: its sources go
        self._publish(main, [self._host_source(sum(len(s) for s in per_vm.values()) // len(METRICS))])
        self.published += 1
        return max(0.0, until - (self._clock() - started)) + 0.2

    @staticmethod
    def _host_source(containers: int) -> DataSource:
        return DataSource("xscontainer_containers", containers, "int64", "gauge", "host", "",
                          "Running containers whose metrics xscontainer publishes", 0.0)

    def _publish(self, uid: str, datasources: List[DataSource]) -> None:
        plugin = self._plugins.get(uid)
        if plugin is None:
            plugin = self._plugins[uid] = _Plugin(PluginFile(os.path.join(self._directory or "", uid)))
        payload = encode_payload(self._wallclock(), datasources)
        if plugin.file.write(payload, HEADER_SIZE):
            # A new file: rrdd maps a file when it registers the uid and ignores a second
            # registration, so a uid it knows (ours before the file grew, or one a killed
            # monitor left behind) must be deregistered first or rrdd keeps the old inode.
            self._rrdd.deregister(uid)
            plugin.registered = False
        if not plugin.registered:
            self._register(uid)

    def _register(self, uid: str) -> None:
        self._rrdd.register(uid)
        self._plugins[uid].registered = True

    def _drop(self, uid: str) -> None:
        plugin = self._plugins.pop(uid)
        try:
            if plugin.registered:
                self._rrdd.deregister(uid)
        finally:
            plugin.file.remove()

    def collect(self, budget: float) -> Dict[str, List[DataSource]]:
        """Sample every VM for at most ``budget`` seconds; each watched VM's data sources (none
        while its engine has not answered lately)."""
        vms = sorted(set(self._vms()))
        self._forget_vms_except(vms)
        with self._lock:
            for vm in vms:
                if vm not in self._pending:
                    self._pending[vm] = self._pool.submit(self._sample_vm, vm)
            waiting = list(self._pending.values())
        self._wait_for_reads(waiting, budget)
        now = self._clock()
        result = {}  # type: Dict[str, List[DataSource]]
        with self._lock:
            for vm in vms:
                fresh = self._results.get(vm)
                usable = fresh is not None and now - fresh.taken <= self.options.stale_after
                result[vm] = vm_datasources(vm, fresh.summaries) if usable else []
        return result

    def _wait_for_reads(self, reads: List[concurrent.futures.Future], budget: float) -> None:
        """Until every read is done, ``budget`` seconds have passed or the reporter stops.

        One wake-up for all: waiting for the first of the pending reads again after each one
        re-armed a waiter on every pending future, 270 ms of CPU per cycle at 1,000 VMs."""
        if not reads:
            return
        finished = _AllDone(len(reads))
        for read in reads:
            read.add_done_callback(finished.one_done)
        concurrent.futures.wait([finished.future, self._stopped], timeout=budget,
                                return_when=concurrent.futures.FIRST_COMPLETED)

    def _forget_vms_except(self, vms: List[str]) -> None:
        kept = set(vms)
        with self._lock:
            for table in (self._previous, self._results):
                for vm in [v for v in table if v not in kept]:
                    del table[vm]

    # -- one VM (in the pool) ------------------------------------------------------------------
    def _sample_vm(self, vm: str) -> None:
        try:
            if self._stop.is_set():  # queued before the stop: the connections may be closed
                return
            summaries, cpu = self._read_vm(vm)
            with self._lock:
                self._results[vm] = VmResult(self._clock(), summaries)
                self._previous[vm] = cpu
        except (XSContainerError, OSError) as exc:
            LOG.debug("metrics: VM %s not sampled: %s", vm, exc)
        except Exception:  # a guest's odd answer must not end the reporter
            if not self._stop.is_set():  # stopping refuses new reads: not worth a traceback
                LOG.exception("metrics: VM %s not sampled", vm)
        finally:
            with self._lock:
                self._pending.pop(vm, None)

    def _read_vm(self, vm: str) -> Tuple[List[Summary], Dict[str, Any]]:
        client = self._client_for(vm)
        with self._lock:
            previous = dict(self._previous.get(vm, {}))
        known = self._running_for(vm) if self._running_for is not None else None
        containers = known if known is not None else ids_and_names(client.containers(all=False))
        raws = self._read_stats(client, [ident for ident, _ in containers])
        # Engines before API 1.41 ignore one-shot and send the previous sample themselves.
        new = [i for i, _ in containers if i not in previous and not has_cpu_sample(_get(raws[i], "precpu_stats"))]
        if new and not self._stop.wait(FIRST_WINDOW):
            for ident in new:
                previous[ident] = _get(raws[ident], "cpu_stats")
            raws.update(self._read_stats(client, new))
        summaries = []
        cpu = {}  # type: Dict[str, Any]
        for ident, name in containers:
            raw = raws[ident]
            summary = summarize(Sample(name, raw), previous.get(ident))
            if summary is not None:
                summaries.append(summary)
                cpu[ident] = _get(raw, "cpu_stats")
        return summaries, cpu

    def _read_stats(self, client: Any, idents: List[str]) -> Dict[str, Any]:
        """One one-shot stats read per container, in up to ``READ_LANES`` lanes at once: each
        read is a round trip (and a dockerd cgroup read) that would otherwise add up past the
        reading's deadline; lanes, not a task per read, keep the hand-offs few."""
        lanes = [idents[start::READ_LANES] for start in range(min(READ_LANES, len(idents)))]
        others = [self._reads.submit(_read_lane, client, lane) for lane in lanes[1:]]
        result = _read_lane(client, lanes[0]) if lanes else {}
        for future in others:
            result.update(future.result())
        return result


def _read_lane(client: Any, idents: List[str]) -> Dict[str, Any]:
    return {ident: client.stats(ident, one_shot=True) for ident in idents}


def _get(doc: Any, key: str) -> Any:
    return doc.get(key) if isinstance(doc, dict) else None
