"""What the simulator needs of xcp-rrdd: the plugin registration interface, the protocol-v2
reader, a 5-second reading loop, and the VM data-source calls of xapi that read the result.

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

import hashlib
import json
import logging
import math
import os
import socketserver
import struct
import threading
import time
import xmlrpc.client
import zlib
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Set, Tuple
from xml.sax.saxutils import escape

from xscontainer.sim.dom0 import MAX_SOCKET_PATH
from xscontainer.sim.failures import XapiFailure

log = logging.getLogger(__name__)

HEADER = b"DATASOURCES"
INTERVAL = 5.0
SKIP_MAX = 256
HISTORY_ROWS = 120  # readings kept for /rrd_updates: 10 minutes (rrdd's 5 s RRA holds 10 minutes too)
MAX_BODY = 1 << 20


# -- the protocol-v2 reader (pure) -------------------------------------------------------------

class InvalidHeader(Exception):
    pass


class NoUpdate(Exception):
    pass


class InvalidChecksum(Exception):
    pass


class InvalidPayload(Exception):
    pass


class ReadError(Exception):
    pass


class Ds(NamedTuple):
    name: str
    owner: Tuple[str, ...]    # ("host",), ("vm", uuid) or ("sr", uuid)
    value_type: str
    ds_type: str
    description: str
    units: str
    minimum: float
    maximum: float
    default: bool
    value: Any = None


class Payload(NamedTuple):
    timestamp: float
    datasources: List[Ds]


def _text(entry: Dict[str, Any], key: str, default: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str):  # Rpc.string_of_rpc accepts only strings
        raise InvalidPayload("%s is not a string" % key)
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidPayload("not a float: %r" % text)


def _ds_of_entry(name: str, entry: Any) -> Ds:
    if not isinstance(entry, list):
        raise InvalidPayload("data source %r is not an object" % name)
    fields = dict(entry)
    if "value_type" not in fields:
        raise InvalidPayload("data source %r has no value_type" % name)
    value_type = _text(fields, "value_type", "")
    if value_type not in ("float", "int64"):
        raise InvalidPayload("bad value_type %r" % value_type)
    ds_type = _text(fields, "type", "absolute").lower()
    if ds_type not in ("gauge", "absolute", "derive"):
        raise InvalidPayload("bad type %r" % ds_type)
    owner = tuple(_text(fields, "owner", "host").lower().split(" "))
    if not (owner == ("host",) or (len(owner) == 2 and owner[0] in ("vm", "sr"))):
        raise InvalidPayload("bad owner %r" % (owner,))
    default = _text(fields, "default", "false")
    if default not in ("true", "false"):  # OCaml's bool_of_string
        raise InvalidPayload("bad default %r" % default)
    if _text(fields, "transform", "identity") not in ("identity", "inverse"):
        raise InvalidPayload("bad transform")
    return Ds(name, owner, value_type, ds_type, _text(fields, "description", ""), _text(fields, "units", ""),
              _float(_text(fields, "min", "-infinity")), _float(_text(fields, "max", "infinity")),
              default == "true")


def parse_metadata(text: bytes) -> List[Ds]:
    # The C library counted a trailing NUL; rrdd trims NULs before parsing.
    try:
        doc = json.loads(text.strip(b"\0").decode("utf-8"), object_pairs_hook=list)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload("metadata is not JSON: %s" % exc)
    sources = dict(doc).get("datasources") if isinstance(doc, list) else None
    if not isinstance(sources, list):
        raise InvalidPayload("no datasources object")
    return [_ds_of_entry(name, entry) for name, entry in sources]


class PayloadReader:
    """One plugin's reader: remembers the last CRCs and the parsed metadata, as rrdd does."""

    def __init__(self) -> None:
        self.last_data_crc = 0
        self.last_metadata_crc = 0
        self.cached = []  # type: List[Ds]

    def read(self, buf: bytes) -> Payload:
        try:
            return self._read(buf)
        except (InvalidHeader, NoUpdate, InvalidChecksum, InvalidPayload):
            raise
        except (struct.error, IndexError, ValueError) as exc:  # Cstruct's bounds checks
            raise ReadError(str(exc))

    def _read(self, buf: bytes) -> Payload:
        if buf[:len(HEADER)] != HEADER:
            raise InvalidHeader()
        start = len(HEADER)
        data_crc, metadata_crc, count = struct.unpack_from(">III", buf, start)
        if data_crc == self.last_data_crc:
            raise NoUpdate()
        stamped_start = start + 12
        stamped = buf[stamped_start:stamped_start + 8 + 8 * count]
        if len(stamped) != 8 + 8 * count:
            raise ReadError("file shorter than its %d values" % count)
        (timestamp,) = struct.unpack_from(">d", stamped, 0)
        if zlib.crc32(stamped) & 0xFFFFFFFF != data_crc:
            raise InvalidChecksum("data")
        self.last_data_crc = data_crc
        if metadata_crc != self.last_metadata_crc:
            length_at = stamped_start + 8 + 8 * count
            (length,) = struct.unpack_from(">I", buf, length_at)
            metadata = buf[length_at + 4:length_at + 4 + length]
            if len(metadata) != length:
                raise ReadError("file shorter than its metadata")
            if zlib.crc32(metadata) & 0xFFFFFFFF != metadata_crc:
                raise InvalidChecksum("metadata")
            self.last_metadata_crc = metadata_crc
            self.cached = parse_metadata(metadata)
        values = []
        for index, ds in enumerate(self.cached):
            fmt = ">q" if ds.value_type == "int64" else ">d"
            (value,) = struct.unpack_from(fmt, buf, stamped_start + 8 + 8 * index)
            values.append(ds._replace(value=value))
        self.cached = values
        return Payload(timestamp, values)


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
                raise _internal('Rrd_interface.Rrdd_error(Datasource_missing("VM: %s"))' % vm_uuid)
            if name not in self._enabled.get(vm_uuid, set()):
                raise _internal('Rrd_interface.Rrdd_error(Rrdd_internal_error("Rrd.Invalid_data_source(\\"%s\\")"))'
                                % name)
            return lives[name].value

    def add_vm_ds(self, vm_uuid: str, name: str) -> None:
        with self._lock:
            lives = self._vms.get(vm_uuid)
            if lives is None or name not in lives:
                raise _internal('Rrd_interface.Rrdd_error(Datasource_missing("%s"))'
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


def _internal(text: str) -> XapiFailure:
    return XapiFailure("INTERNAL_ERROR", text)


class RrddError(Exception):
    def __init__(self, variant: str, text: str) -> None:
        super().__init__(variant, text)
        self.details = [variant, text]


# -- rrdd's XML-RPC on a Unix socket ---------------------------------------------------------------

def _arg(args: Dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise RrddError("Rrdd_internal_error", "missing or bad argument %r" % name)
    return value


def dispatch(rrdd: HostRrdd, method: str, params: Tuple[Any, ...]) -> Any:
    args = params[0] if len(params) == 1 and isinstance(params[0], dict) else {}
    if method == "Plugin.get_header":
        return "DATASOURCES\n"
    if method == "Plugin.get_path":
        return rrdd.get_path(_arg(args, "uid"))
    if method == "Plugin.Local.register":
        return rrdd.register(_arg(args, "uid"), _arg(args, "info"), _arg(args, "protocol"))
    if method in ("Plugin.Local.deregister", "Plugin.deregister"):
        rrdd.deregister(_arg(args, "uid"))
        return None
    if method in ("Plugin.Local.next_reading", "Plugin.next_reading"):
        return rrdd.next_reading(_arg(args, "uid"))
    if method == "Plugin.register":  # kept by rrdd for old plugins: V1
        return rrdd.register(_arg(args, "uid"), _arg(args, "frequency"), "V1")
    raise RrddError("Rrdd_internal_error", "Unknown RPC: %s" % method)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.disable_nagle_algorithm = False  # a Unix socket has no TCP_NODELAY
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("rrdd %s", fmt % args)

    def address_string(self) -> str:
        return "unix"

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_error(411, "Length Required")
            return
        if self.path.split("?")[0] != "/" or not 0 <= length <= MAX_BODY:
            self.send_error(404 if self.path.split("?")[0] != "/" else 413)
            return
        try:
            params, method = xmlrpc.client.loads(self.rfile.read(length))
        except Exception:  # any malformed body: rrdd answers an HTTP error, never a traceback
            self.send_error(400, "Bad Request")
            return
        try:
            envelope = {"Status": "Success", "Value": dispatch(self.server.rrdd, method or "", params)}
        except RrddError as exc:
            envelope = {"Status": "Failure", "ErrorDescription": exc.details}
        body = xmlrpc.client.dumps((envelope,), methodresponse=True, allow_none=True).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    rrdd = None  # type: Any


def rrdd_socket_path(xapi_socket: str, host_uuid: str) -> str:
    """Beside the simulator's xapi socket, or a short /tmp path when that would be too long."""
    name = "xcp-rrdd-" + host_uuid[:8]
    path = os.path.join(os.path.dirname(xapi_socket), name)
    if len(path.encode()) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.path.realpath(xapi_socket).encode("utf-8")).hexdigest()[:12]
    return os.path.join("/tmp", "xsc-rrdd-%s-%s" % (digest, host_uuid[:8]))


class RrddHub:
    """Every host's rrdd: sockets, metrics directories and the reading thread. Owned by main()."""

    def __init__(self, api: Any, clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL) -> None:
        self._api = api
        self._clock = clock
        self.interval = interval
        self.hosts = {}  # type: Dict[str, HostRrdd]
        self.sockets = {}  # type: Dict[str, str]
        self._servers = []  # type: List[_UnixServer]
        self._threads = []  # type: List[threading.Thread]
        self._stop = threading.Event()

    def add_host(self, host_uuid: str, metrics_dir: str) -> HostRrdd:
        os.makedirs(metrics_dir, mode=0o700, exist_ok=True)
        rrdd = HostRrdd(host_uuid, metrics_dir, lambda: resident_running_vms(self._api, host_uuid),
                        self._clock, self.interval)
        self.hosts[host_uuid] = rrdd
        return rrdd

    def listen(self, host_uuid: str, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        server = _UnixServer(path, _Handler)
        server.rrdd = self.hosts[host_uuid]
        self._servers.append(server)
        self.sockets[host_uuid] = path

    def start(self) -> None:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name="sim-rrdd", daemon=True)
            thread.start()
            self._threads.append(thread)
        reader = threading.Thread(target=self._loop, name="sim-rrdd-read", daemon=True)
        reader.start()
        self._threads.append(reader)

    def _loop(self) -> None:
        while True:
            wait = min(r.next_reading() for r in self.hosts.values()) if self.hosts else self.interval
            if self._stop.wait(wait):
                return
            for rrdd in self.hosts.values():
                try:
                    rrdd.read_all()
                except Exception:  # one host's bug must not stop the others' readings
                    log.exception("rrdd %s: reading failed", rrdd.host_uuid)

    def stop(self) -> None:
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)
        for path in self.sockets.values():
            try:
                os.unlink(path)
            except OSError:
                pass
        for rrdd in self.hosts.values():
            rrdd.close()


def resident_running_vms(api: Any, host_uuid: str) -> Dict[str, int]:
    """uuid -> memory (bytes) of the VMs running on the host."""
    with api.db.lock:
        hosts = api.db.tables["host"]
        host_ref = next((r for r, row in hosts.items() if row["uuid"] == host_uuid), None)
        return {row["uuid"]: _int(row.get("memory_dynamic_max")) for row in api.db.tables["VM"].values()
                if row.get("resident_on") == host_ref and row.get("power_state") in ("Running", "Paused")}


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def start_hub(api: Any, xapi_socket: str, directory: str) -> RrddHub:
    """One rrdd per simulated host: socket beside xapi's, files in DIR/hosts/<uuid>/metrics."""
    hub = RrddHub(api)
    with api.db.lock:
        uuids = [row["uuid"] for row in api.db.tables["host"].values()]
    for uuid in uuids:
        hub.add_host(uuid, os.path.join(directory, "hosts", uuid, "metrics"))
        hub.listen(uuid, rrdd_socket_path(xapi_socket, uuid))
    hub.start()
    api.rrdd_hub = hub
    return hub


# -- xapi's VM data-source calls -------------------------------------------------------------------

def _vm_host_rrdd(api: Any, vm: Any) -> Tuple[Dict[str, Any], Optional[HostRrdd]]:
    row = api.db.get("VM", vm)
    hub = getattr(api, "rrdd_hub", None)
    if hub is None or row.get("power_state") not in ("Running", "Paused"):
        return row, None
    host = api.db.tables["host"].get(row.get("resident_on"))
    return row, hub.hosts.get(host["uuid"]) if host else None


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise XapiFailure("FIELD_TYPE_ERROR", "data_source")
    return value


def get_data_sources(api: Any, ctx: Any, vm: Any) -> List[Dict[str, Any]]:
    row, rrdd = _vm_host_rrdd(api, vm)
    return rrdd.vm_data_sources(row["uuid"]) if rrdd is not None else []


def query_data_source(api: Any, ctx: Any, vm: Any, name: Any) -> float:
    row, rrdd = _vm_host_rrdd(api, vm)
    if row.get("power_state") not in ("Running", "Paused"):
        raise XapiFailure("VM_BAD_POWER_STATE", vm, "running;paused", str(row.get("power_state", "")).lower())
    if rrdd is None:
        raise _internal('Rrd_interface.Rrdd_error(Datasource_missing("VM: %s"))' % row["uuid"])
    return rrdd.query_vm_ds(row["uuid"], _name(name))


def record_data_source(api: Any, ctx: Any, vm: Any, name: Any) -> None:
    row, rrdd = _vm_host_rrdd(api, vm)
    if rrdd is None:
        raise _internal('Rrd_interface.Rrdd_error(Datasource_missing("VM: %s"))' % row["uuid"])
    rrdd.add_vm_ds(row["uuid"], _name(name))


def forget_data_source_archives(api: Any, ctx: Any, vm: Any, name: Any) -> None:
    row, rrdd = _vm_host_rrdd(api, vm)
    if rrdd is not None:
        rrdd.forget_vm_ds(row["uuid"], _name(name))


# -- xapi's /rrd_updates ------------------------------------------------------------------------

def f_to_s(value: float) -> str:
    """rrd_utils.ml f_to_s."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return "0.0" if value == 0 else "%0.15g" % value


def updates_xml(legend: List[str], rows: List[Tuple[int, List[float]]], step: int) -> bytes:
    """rrd_updates.ml xml_of: <xport><meta>...</meta><data><row><t/><v/>...</row></data></xport>."""
    times = [t for t, _ in rows]
    parts = ['<?xml version="1.0" encoding="UTF-8"?><xport><meta>',
             "<start>%d</start><step>%d</step><end>%d</end>" % (min(times or [0]), step, max(times or [0])),
             "<rows>%d</rows><columns>%d</columns><legend>" % (len(rows), len(legend))]
    parts.extend("<entry>%s</entry>" % escape(entry) for entry in legend)
    parts.append("</legend></meta><data>")
    for t, values in rows:
        parts.append("<row><t>%d</t>%s</row>" % (t, "".join("<v>%s</v>" % f_to_s(v) for v in values)))
    parts.append("</data></xport>")
    return "".join(parts).encode("utf-8")


def handle_rrd_updates(api: Any, handler: Any) -> None:
    """GET /rrd_updates?session_id=&start=[&vm_uuid=...]: every simulated host's VMs at once (a
    real host answers for its own VMs). ``cf``, ``interval`` and ``host`` are accepted and ignored
    (one 5 s average; the simulator has no host data sources)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    session = (query.get("session_id") or [""])[0]
    with api.db.lock:
        valid = bool(session) and api.db.exists("session", session)
    if not valid:
        handler.send_error(401, "Unauthorized")
        return
    try:
        start = int((query.get("start") or [""])[0])
    except ValueError:
        handler.send_error(400, "get_rrd_updates: missing the 'start' parameter")
        return
    vm_uuids = set(query["vm_uuid"]) if "vm_uuid" in query else None
    legend = []  # type: List[str]
    rows = {}  # type: Dict[int, List[float]]
    hub = getattr(api, "rrdd_hub", None)
    for rrdd in (hub.hosts.values() if hub is not None else []):
        host_legend, host_rows = rrdd.updates(start, vm_uuids)
        for t, values in host_rows:
            rows.setdefault(t, [math.nan] * len(legend)).extend(values)
        for t in rows:
            rows[t] += [math.nan] * (len(legend) + len(host_legend) - len(rows[t]))
        legend += host_legend
    body = updates_xml(legend, sorted(rows.items(), reverse=True), int(INTERVAL))
    handler.send_response(200)
    handler.send_header("Content-Type", "text/xml")
    handler.send_header("Access-Control-Allow-Origin", "*")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def register(api: Any) -> None:
    api.rrdd_hub = None  # set by start_hub when the simulator serves
    api.add("VM", "get_data_sources", lambda ctx, vm: get_data_sources(api, ctx, vm), 1)
    api.add("VM", "query_data_source", lambda ctx, vm, n: query_data_source(api, ctx, vm, n), 2)
    api.add("VM", "record_data_source", lambda ctx, vm, n: record_data_source(api, ctx, vm, n), 2)
    api.add("VM", "forget_data_source_archives",
            lambda ctx, vm, n: forget_data_source_archives(api, ctx, vm, n), 2)
