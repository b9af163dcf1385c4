"""What the simulator needs of xcp-rrdd: the plugin registration interface, the protocol-v2
reader, a 5-second reading loop, and the VM data-source calls of xapi that read the result.
This module holds each host's registry and data sources (``HostRrdd``); the reader is
``rrdv2``, the socket and the reading loop ``rrddserver``, xapi's calls ``rrdxapi``.

Facts followed (xen-api HEAD e2ee48d688):

* Interface (ocaml/xapi-idl/rrd/rrd_interface.ml): XML-RPC over HTTP ``POST /`` on the Unix
  socket ``/var/lib/xcp/xcp-rrdd``; one struct of named arguments; answers
  ``{Status: Success, Value}`` or ``{Status: Failure, ErrorDescription: [variant, text]}``.
  ``Plugin.Local.register {uid, info: "Five_Seconds", protocol: "V1"|"V2"}`` returns the
  seconds until the next reading; ``Plugin.Local.deregister {uid}``;
  ``Plugin.Local.next_reading {uid}`` (-1 when not registered); ``Plugin.get_path {uid}`` =
  ``/dev/shm/metrics/<uid>`` (here: the host's own metrics directory).
* Registration opens the file at once (rrd_file_reader.ml ``init``): it must exist. The file is
  mapped with its size at that moment; a file replaced by rename(2) is not seen (the old inode
  stays mapped) until the plugin deregisters and registers again (rrdd_server.ml ``register``
  does nothing for a known uid).
* Reading (rrd_protocol_v2.ml ``make_payload_reader``): header; a data CRC equal to the last
  one is ``No_update``; data CRC over timestamp+values; the metadata is parsed only when its
  CRC changed, and checked then; values are read in the metadata's order. Any failure, even
  ``No_update``, doubles the plugin's skip count (at most 256 readings); a success resets it
  (rrdd_server.ml ``get_payload``).
* Data sources owned by ``vm <uuid>`` count only for VMs running on this host; ``default``
  ones are recorded at once, others after ``VM.record_data_source``; a recorded source missing
  from a reading becomes unknown (NaN) and stays listed (rrdd_monitor.ml ``update_rrds``).
* xapi (xapi_vm.ml, message_forwarding.ml, rrdd_helper.ml): ``VM.get_data_sources`` lists
  name_label, name_description, enabled, standard, units, min, max and value 0.0 (always);
  ``VM.query_data_source`` needs the VM running or paused (``VM_BAD_POWER_STATE``), and an
  unknown or unrecorded source is an ``INTERNAL_ERROR`` (rrdd's exception, unmapped by xapi).

Deviations: values are the last reading (gauge) or the rate since the previous reading
(derive, per second; absolute divided by the interval) instead of rrdd's consolidated 5-second
RRA; of rrdd's own VM statistics only ``memory`` (memory_dynamic_max) exists; the V1 protocol is
not read (a V1 plugin's readings always fail); no inotify discovery of files dropped into the
metrics directory; ``/rrd_updates`` (``handle_rrd_updates``, rrd_updates.ml's XML, newest row
first) answers for every simulated host at once, XML only, host-owned sources left out.
"""

import logging
import math
import os
import struct
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from xscontainer.sim.failures import XapiFailure
from xscontainer.sim.rrdv2 import (Ds, InvalidChecksum, InvalidHeader, InvalidPayload, NoUpdate, Payload, PayloadReader,
                                   ReadError)

log = logging.getLogger(__name__)

INTERVAL = 5.0
SKIP_MAX = 256
HISTORY_ROWS = 120  # readings kept for /rrd_updates: 10 minutes (rrdd's 5 s RRA holds 10 minutes too)


# -- the plugin registry and the VMs' live data sources ------------------------------------------

class _Plugin:
    def __init__(self, path: str) -> None:
        self.path = path
        self.reader = PayloadReader()
        self.skip_init = 1
        self.skip = 0
        self.fd = os.open(path, os.O_RDONLY)  # raises when missing, as rrdd's register does
        self.size = os.fstat(self.fd).st_size  # the mapping's size is fixed here

    def content(self) -> bytes:
        if self.size <= 0:  # an empty mapping is made again at each reading
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_RDONLY)
            self.size = os.fstat(self.fd).st_size
        return os.pread(self.fd, self.size, 0)

    def close(self) -> None:
        os.close(self.fd)


class _Live:
    """One VM data source: its last metadata, value and what a derive needs."""

    def __init__(self, ds: Ds) -> None:
        self.ds = ds
        self.value = math.nan
        self.last_raw = None  # type: Any
        self.last_time = 0.0


def _own_memory(vm: str, memory: int) -> Ds:
    return Ds("memory", ("vm", vm), "int64", "gauge", "Memory currently allocated to VM", "B", 0.0, math.inf,
              True, memory)


def _rate(live: _Live, ds: Ds, timestamp: float, interval: float) -> float:
    raw = float(ds.value)
    if ds.ds_type == "gauge":
        value = raw
    elif ds.ds_type == "absolute":
        value = raw / interval
    elif live.last_raw is None or timestamp <= live.last_time:
        value = math.nan
    else:
        value = (raw - float(live.last_raw)) / (timestamp - live.last_time)
    live.last_raw, live.last_time = ds.value, timestamp
    if math.isnan(value) or not ds.minimum <= value <= ds.maximum:
        return math.nan
    return value


class HostRrdd:
    """One host's rrdd: registered plugins, and per running VM its live data sources."""

    def __init__(self, host_uuid: str, metrics_dir: str, resident_vms: Callable[[], Dict[str, int]],
                 clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL,
                 wallclock: Callable[[], float] = time.time) -> None:
        self.host_uuid = host_uuid
        self._wallclock = wallclock
        self._rows = deque(maxlen=HISTORY_ROWS)  # type: Deque[Tuple[int, Dict[Tuple[str, str], float]]]
        self.metrics_dir = metrics_dir
        self._resident_vms = resident_vms
        self._clock = clock
        self.interval = interval
        self._lock = threading.Lock()
        self._plugins = {}  # type: Dict[str, _Plugin]
        self._vms = {}  # type: Dict[str, Dict[str, _Live]]
        self._enabled = {}  # type: Dict[str, Set[str]]
        self._origin = clock()
        self.readings = 0

    # Plugin interface
    def get_path(self, uid: str) -> str:
        if not uid or "/" in uid or uid in (".", ".."):
            raise RrddError("Rrdd_internal_error", "invalid plugin uid %r" % uid)
        return os.path.join(self.metrics_dir, uid)

    def next_reading(self, uid: Optional[str] = None) -> float:
        if uid is not None:
            with self._lock:
                if uid not in self._plugins:
                    return -1.0
        elapsed = self._clock() - self._origin
        return self.interval - (elapsed % self.interval)

    def register(self, uid: str, info: str, protocol: str) -> float:
        if info != "Five_Seconds":
            raise RrddError("Rrdd_internal_error", "unknown frequency %r" % info)
        if protocol not in ("V1", "V2"):
            raise RrddError("Invalid_protocol", protocol)
        path = self.get_path(uid)
        with self._lock:
            if uid not in self._plugins:
                try:
                    plugin = _Plugin(path)
                except OSError as exc:
                    raise RrddError("Rrdd_internal_error", "Unix.Unix_error(%s, \"open\", %r)" % (exc.strerror, path))
                if protocol == "V1":
                    plugin.reader = None  # type: ignore  # V1 is not simulated: every read fails
                self._plugins[uid] = plugin
                log.info("rrdd %s: plugin %s registered (%s)", self.host_uuid, uid, protocol)
        return self.next_reading(uid)

    def deregister(self, uid: str) -> None:
        with self._lock:
            plugin = self._plugins.pop(uid, None)
        if plugin is not None:
            plugin.close()
            log.info("rrdd %s: plugin %s deregistered", self.host_uuid, uid)

    def plugin_skip(self, uid: str) -> int:
        with self._lock:
            plugin = self._plugins.get(uid)
            return plugin.skip if plugin is not None else -1

    # The reading loop's one step
    def read_all(self) -> None:
        with self._lock:
            plugins = list(self._plugins.items())
        payloads = []
        for uid, plugin in plugins:
            if plugin.skip > 0:
                plugin.skip -= 1
            if plugin.skip > 0:
                continue
            payload = self._read_plugin(uid, plugin)
            if payload is not None:
                payloads.append(payload)
        self._update_vms(payloads)
        self.readings += 1

    def _read_plugin(self, uid: str, plugin: _Plugin) -> Optional[Payload]:
        try:
            if plugin.reader is None:
                raise ReadError("protocol V1 is not simulated")
            payload = plugin.reader.read(plugin.content())
        except (InvalidHeader, NoUpdate, InvalidChecksum, InvalidPayload, ReadError, OSError) as exc:
            plugin.skip_init = min(plugin.skip_init * 2, SKIP_MAX)
            plugin.skip = plugin.skip_init
            if not isinstance(exc, NoUpdate):
                log.info("rrdd %s: failed to process plugin metrics file: %s (%s)", self.host_uuid, uid,
                         type(exc).__name__)
            return None
        plugin.skip_init, plugin.skip = 1, 0
        return payload

    def _update_vms(self, payloads: List[Payload]) -> None:
        resident = self._resident_vms()
        # rrdd's own domain statistics: every running VM has data sources of its own each
        # reading, so a source this reading lacks (a failed plugin, a container gone) is unknown.
        own = Payload(time.time(), [_own_memory(vm, memory) for vm, memory in sorted(resident.items())])
        seen = {}  # type: Dict[str, Set[str]]
        with self._lock:
            for vm in [v for v in self._vms if v not in resident]:
                del self._vms[vm]  # rrdd archives the RRD of a VM that left
                self._enabled.pop(vm, None)
            for payload in [own] + payloads:
                for ds in payload.datasources:
                    if ds.owner[0] != "vm" or ds.owner[1] not in resident:
                        continue
                    self._update_ds(ds.owner[1], ds, payload.timestamp)
                    seen.setdefault(ds.owner[1], set()).add(ds.name)
            for vm, lives in self._vms.items():
                for name, live in lives.items():
                    if name not in seen.get(vm, set()):
                        live.value = math.nan
                        live.last_raw = None
            step = int(self.interval)
            self._rows.append((int(self._wallclock()) // step * step,
                               {(vm, name): live.value for vm, lives in self._vms.items()
                                for name, live in lives.items() if name in self._enabled.get(vm, set())}))

    def _update_ds(self, vm: str, ds: Ds, timestamp: float) -> None:
        lives = self._vms.setdefault(vm, {})
        enabled = self._enabled.setdefault(vm, set())
        live = lives.get(ds.name)
        if live is None:
            live = lives[ds.name] = _Live(ds)
            if ds.default:
                enabled.add(ds.name)
        live.ds = ds
        live.value = _rate(live, ds, timestamp, self.interval)

    # What xapi asks
    def vm_data_sources(self, vm_uuid: str) -> List[Dict[str, Any]]:
        with self._lock:
            lives = self._vms.get(vm_uuid, {})
            enabled = self._enabled.get(vm_uuid, set())
            return [{"name_label": name, "name_description": live.ds.description, "enabled": name in enabled,
                     "standard": live.ds.default, "units": live.ds.units, "min": live.ds.minimum,
                     "max": live.ds.maximum, "value": 0.0}
                    for name, live in sorted(lives.items())]

    def query_vm_ds(self, vm_uuid: str, name: str) -> float:
        with self._lock:
            lives = self._vms.get(vm_uuid)
            if lives is None:
                raise internal_error('Rrd_interface.Rrdd_error(Datasource_missing("VM: %s"))' % vm_uuid)
            if name not in self._enabled.get(vm_uuid, set()):
                raise internal_error('Rrd_interface.Rrdd_error(Rrdd_internal_error("Rrd.Invalid_data_source(\\"%s\\")"))'
                                % name)
            return lives[name].value

    def add_vm_ds(self, vm_uuid: str, name: str) -> None:
        with self._lock:
            lives = self._vms.get(vm_uuid)
            if lives is None or name not in lives:
                raise internal_error('Rrd_interface.Rrdd_error(Datasource_missing("%s"))'
                                % ("VM: " + vm_uuid if lives is None else name))
            self._enabled.setdefault(vm_uuid, set()).add(name)

    def forget_vm_ds(self, vm_uuid: str, name: str) -> None:
        with self._lock:
            self._enabled.get(vm_uuid, set()).discard(name)

    def updates(self, start: int, vm_uuids: Optional[Set[str]]) -> Tuple[List[str], List[Tuple[int, List[float]]]]:
        """(legend, rows newest first) of the recorded VM sources since ``start`` (rrd_updates)."""
        with self._lock:
            rows = [(t, values) for t, values in self._rows if t >= start]
        keys = sorted({key for _, values in rows for key in values
                       if vm_uuids is None or key[0] in vm_uuids})
        legend = ["AVERAGE:vm:%s:%s" % key for key in keys]
        return legend, [(t, [values.get(key, math.nan) for key in keys]) for t, values in reversed(rows)]

    def close(self) -> None:
        with self._lock:
            plugins, self._plugins = list(self._plugins.values()), {}
        for plugin in plugins:
            plugin.close()


def internal_error(text: str) -> XapiFailure:
    return XapiFailure("INTERNAL_ERROR", text)


class RrddError(Exception):
    def __init__(self, variant: str, text: str) -> None:
        super().__init__(variant, text)
        self.details = [variant, text]
