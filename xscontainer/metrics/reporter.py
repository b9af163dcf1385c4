"""The per-host reporter: every running container of every monitored VM, as data sources owned
by that VM, published through xcp-rrdd's plugin protocol v2.

Each cycle wakes ``lead`` seconds before rrdd's next reading (``Plugin.Local.register``
answers how long until then, as xen-api's rrdd.py uses it), samples every VM in parallel
through the monitor's warm engine connections (one container list plus one one-shot stats
read per container; a new container's first read lets the engine take its two samples, so its
CPU is known at once), writes the shared file, and sleeps past the reading. rrdd counts a
reading without news as a failure and then skips readings, so exactly one write per reading.
A VM that answers late is published from its last result while that is fresh.
"""

import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from xscontainer.backoff import backoff_delay
from xscontainer.errors import XSContainerError
from xscontainer.metrics.protocol import HEADER_SIZE, DataSource, encode_payload
from xscontainer.metrics.rrddclient import RrddClient, RrddError
from xscontainer.metrics.sample import MAX_CONTAINERS_PER_VM, Sample, Summary, summarize, vm_datasources
from xscontainer.metrics.shmfile import PluginFile

LOG = logging.getLogger(__name__)
INTERVAL = 5.0  # rrdd's only frequency, Five_Seconds


class ReporterOptions(NamedTuple):
    uid: str = "xscontainer"
    lead: float = 2.0          # seconds before rrdd's reading that sampling starts
    workers: int = 8
    fresh_workers: int = 4     # first samples of new containers (the engine takes ~1 s each)
    stale_after: float = 2 * INTERVAL


class VmResult(NamedTuple):
    taken: float
    summaries: List[Summary]


def _running(containers: Any) -> List[Tuple[str, str]]:
    """(id, name) of each container in a ``/containers/json`` reply; anything odd is skipped."""
    result = []
    for item in containers if isinstance(containers, list) else []:
        if not isinstance(item, dict):
            continue
        ident, names = item.get("Id"), item.get("Names")
        if isinstance(ident, str) and isinstance(names, list) and names and isinstance(names[0], str):
            result.append((ident, names[0]))
    return result[:MAX_CONTAINERS_PER_VM]


class Reporter:
    """Owns one thread; ``start()`` then ``stop()`` (deregisters, removes the file, joins)."""

    def __init__(self, vms: Callable[[], List[str]], client_for: Callable[[str], Any], rrdd: RrddClient,
                 options: ReporterOptions = ReporterOptions(), wallclock: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._vms = vms
        self._client_for = client_for
        self._rrdd = rrdd
        self.options = options
        self._wallclock = wallclock
        self._clock = clock
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._pool = concurrent.futures.ThreadPoolExecutor(options.workers, thread_name_prefix="metrics")
        self._fresh = concurrent.futures.ThreadPoolExecutor(options.fresh_workers, thread_name_prefix="metrics-first")
        self._lock = threading.Lock()
        self._previous = {}  # type: Dict[str, Dict[str, Any]]  # vm -> container id -> cpu_stats
        self._results = {}  # type: Dict[str, VmResult]
        self._pending = {}  # type: Dict[str, concurrent.futures.Future]
        self._file = None  # type: Optional[PluginFile]
        self._registered = False
        self.published = 0  # readings written (for tests and the bench)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Reporter":
        self._thread = threading.Thread(target=self._run, name="metrics-reporter", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False)
        self._fresh.shutdown(wait=False)
        if self._registered:
            try:
                self._rrdd.deregister(self.options.uid)
            except RrddError as exc:
                LOG.warning("metrics: could not deregister from xcp-rrdd: %s", exc)
        if self._file is not None:
            self._file.remove()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                delay = self.cycle()
                failures = 0
            except (RrddError, OSError) as exc:
                self._registered = False
                delay = backoff_delay(failures, 1.0, 60.0)
                failures += 1
                LOG.warning("metrics: %s; retrying in %.0fs", exc, delay)
            self._stop.wait(delay)

    # -- one cycle ---------------------------------------------------------------------------
    def cycle(self) -> float:
        """Publish if rrdd reads soon; the seconds to wait before the next cycle."""
        if self._file is None:
            self._file = PluginFile(self._rrdd.get_path(self.options.uid))
            self._write([])  # rrdd opens the file when we register: it must exist first
        until = self._rrdd.register(self.options.uid)
        self._registered = True
        if until < 0:
            until %= INTERVAL
        if until > self.options.lead:
            return until - self.options.lead
        started = self._clock()
        datasources = self.collect(max(0.0, until - 0.3))
        self._write(datasources)
        self.published += 1
        return max(0.0, until - (self._clock() - started)) + 0.2

    def _write(self, datasources: List[DataSource]) -> None:
        payload = encode_payload(self._wallclock(), datasources)
        if self._file.write(payload, HEADER_SIZE) and self._registered:
            # A larger file: rrdd still maps the old one until it registers us again.
            self._rrdd.deregister(self.options.uid)
            self._registered = False
            self._rrdd.register(self.options.uid)
            self._registered = True

    def collect(self, budget: float) -> List[DataSource]:
        """Sample every VM for at most ``budget`` seconds; every fresh VM's data sources."""
        vms = sorted(set(self._vms()))
        self._forget_vms_except(vms)
        with self._lock:
            for vm in vms:
                if vm not in self._pending:
                    self._pending[vm] = self._pool.submit(self._sample_vm, vm)
            waiting = list(self._pending.values())
        concurrent.futures.wait(waiting, timeout=budget)
        now = self._clock()
        result = []  # type: List[DataSource]
        with self._lock:
            for vm in vms:
                fresh = self._results.get(vm)
                if fresh is not None and now - fresh.taken <= self.options.stale_after:
                    result.extend(vm_datasources(vm, fresh.summaries))
        return result

    def _forget_vms_except(self, vms: List[str]) -> None:
        with self._lock:
            for table in (self._previous, self._results):
                for vm in [v for v in table if v not in vms]:
                    del table[vm]

    # -- one VM (in the pool) ------------------------------------------------------------------
    def _sample_vm(self, vm: str) -> None:
        try:
            summaries, cpu = self._read_vm(vm)
            with self._lock:
                self._results[vm] = VmResult(self._clock(), summaries)
                self._previous[vm] = cpu
        except (XSContainerError, OSError) as exc:
            LOG.debug("metrics: VM %s not sampled: %s", vm, exc)
        except Exception:  # a guest's odd answer must not end the reporter
            LOG.exception("metrics: VM %s not sampled", vm)
        finally:
            with self._lock:
                self._pending.pop(vm, None)

    def _read_vm(self, vm: str) -> Tuple[List[Summary], Dict[str, Any]]:
        client = self._client_for(vm)
        with self._lock:
            previous = dict(self._previous.get(vm, {}))
        containers = _running(client.containers(all=False))
        first = {ident: self._fresh.submit(client.stats, ident) for ident, _ in containers if ident not in previous}
        summaries = []
        cpu = {}  # type: Dict[str, Any]
        for ident, name in containers:
            raw = first[ident].result() if ident in first else client.stats(ident, one_shot=True)
            summary = summarize(Sample(name, raw), previous.get(ident))
            if summary is not None:
                summaries.append(summary)
                cpu[ident] = raw.get("cpu_stats")
        return summaries, cpu
