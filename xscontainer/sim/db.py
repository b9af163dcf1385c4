"""The simulated xapi database: tables of records, refs, uuids, generations, persistence.

Every mutation bumps a generation counter and stamps the row, which is all ``event.from``
needs (created/modified generations per row, tombstones for deletions). Messages, as in xapi,
live outside the DB generation and use their own counter (the token's second half).
"""

import json
import logging
import os
import threading
import time
import uuid as uuidlib
from typing import Any, Callable, Dict, List, Optional, Tuple

from xscontainer.sim import datamodel as dm
from xscontainer.sim.failures import XapiFailure, handle_invalid

log = logging.getLogger(__name__)

DB_FORMAT = 1
MAX_TOMBSTONES = 5000


class CorruptDatabase(Exception):
    """The persistence file exists but cannot be loaded."""


def new_ref() -> str:
    return "OpaqueRef:" + str(uuidlib.uuid4())


class Database:
    """All tables behind one re-entrant lock; ``changed`` wakes event.from waiters."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.tables = {t: {} for t in dm.TABLES}   # type: Dict[str, Dict[str, Dict[str, Any]]]
        self.stamps = {t: {} for t in dm.TABLES}   # type: Dict[str, Dict[str, List[int]]]
        self.tombs = {t: {} for t in dm.TABLES}    # type: Dict[str, Dict[str, List[int]]]
        self.by_uuid = {t: {} for t in dm.TABLES}  # type: Dict[str, Dict[str, str]]
        self.generation = 0
        self.msg_generation = 0
        self.closing = False
        self.blocked_event_calls = 0  # event.from calls waiting for a change (sim.blocked_event_calls)
        self.on_persistent_change = None  # type: Optional[Callable[[], None]]
        # (table, ref) -> {kind: (stamp, row, value)}: see ``derived``
        self._derived = {}  # type: Dict[Tuple[str, str], Dict[str, Tuple[int, Dict[str, Any], Any]]]

    # ---- generations ----------------------------------------------------------------------
    def _bump(self, table: str) -> int:
        if table == "message":
            self.msg_generation += 1
            gen = self.msg_generation
        else:
            self.generation += 1
            gen = self.generation
        if table not in dm.VOLATILE_TABLES and self.on_persistent_change is not None:
            self.on_persistent_change()
        self.changed.notify_all()
        return gen

    def token(self) -> str:
        return "%020d,%020d" % (self.generation, self.msg_generation)

    # ---- reads ----------------------------------------------------------------------------
    def get(self, table: str, ref: Any) -> Dict[str, Any]:
        row = self.tables[table].get(ref) if isinstance(ref, str) else None
        if row is None:
            raise handle_invalid(table, ref)
        return row

    def exists(self, table: str, ref: Any) -> bool:
        return isinstance(ref, str) and ref in self.tables[table]

    def refs(self, table: str) -> List[str]:
        return list(self.tables[table])

    def by_uuid_ref(self, table: str, uuid: Any) -> str:
        ref = self.by_uuid[table].get(uuid) if isinstance(uuid, str) else None
        if ref is None:
            raise XapiFailure("UUID_INVALID", table, uuid)
        return ref

    def derived(self, table: str, ref: str, kind: str, make: Callable[[Dict[str, Any]], Any]) -> Any:
        """``make(row)``, kept until the row changes (its stamp) or is destroyed: what a row
        costs to encode (persistence, the wire) is paid once per change, not once per reader.
        Call with the lock held."""
        row = self.get(table, ref)
        stamp = self.stamps[table][ref][1]
        per_row = self._derived.setdefault((table, ref), {})
        entry = per_row.get(kind)
        if entry is None or entry[0] != stamp or entry[1] is not row:
            entry = per_row[kind] = (stamp, row, make(row))
        return entry[2]

    def find(self, table: str, **match: Any) -> List[str]:
        return [ref for ref, row in self.tables[table].items()
                if all(row.get(k) == v for k, v in match.items())]

    # ---- writes ---------------------------------------------------------------------------
    def create(self, table: str, values: Dict[str, Any], ref: Optional[str] = None) -> str:
        row = dm.default_record(table)
        row.update(values)
        if not row.get("uuid"):
            row["uuid"] = str(uuidlib.uuid4())
        ref = ref or new_ref()
        self.tables[table][ref] = row
        self.by_uuid[table][row["uuid"]] = ref
        gen = self._bump(table)
        self.stamps[table][ref] = [gen, gen]
        for name, value in row.items():
            self._link(table, ref, name, None, value)
        return ref

    def destroy(self, table: str, ref: str) -> None:
        row = self.get(table, ref)
        for name, value in row.items():
            self._link(table, ref, name, value, None)
        del self.tables[table][ref]
        self._derived.pop((table, ref), None)
        self.by_uuid[table].pop(row.get("uuid"), None)
        created = self.stamps[table].pop(ref, [0, 0])[0]
        gen = self._bump(table)
        tombs = self.tombs[table]
        tombs[ref] = [created, gen]
        if len(tombs) > MAX_TOMBSTONES:
            for old in sorted(tombs, key=lambda r: tombs[r][1])[:len(tombs) - MAX_TOMBSTONES]:
                del tombs[old]

    def set(self, table: str, ref: str, name: str, value: Any) -> None:
        row = self.get(table, ref)
        old = row.get(name)
        row[name] = value
        self._link(table, ref, name, old, value)
        self.touch(table, ref)

    def touch(self, table: str, ref: str) -> int:
        self.get(table, ref)
        gen = self._bump(table)
        self.stamps[table][ref][1] = gen
        return gen

    def _link(self, table: str, ref: str, name: str, old: Any, new: Any) -> None:
        """Keep a parent's back-reference set in step with a child's ref field."""
        rel = dm.RELATIONS.get((table, name))
        if rel is None or old == new:
            return
        parent_table, parent_field = rel
        if old and old in self.tables[parent_table]:
            refs = self.tables[parent_table][old][parent_field]
            if ref in refs:
                refs.remove(ref)
                self.touch(parent_table, old)
        if new and new in self.tables[parent_table]:
            refs = self.tables[parent_table][new][parent_field]
            if ref not in refs:
                refs.append(ref)
                self.touch(parent_table, new)

    # ---- events ---------------------------------------------------------------------------
    def changes_since(self, table: str, last: int) -> Tuple[List[str], List[str], List[str]]:
        """(added, modified, deleted) refs after generation ``last``, coalesced as xapi does."""
        added, modified, deleted = [], [], []
        for ref, (created, changed) in self.stamps[table].items():
            if created > last:
                added.append(ref)
            elif changed > last:
                modified.append(ref)
        for ref, (created, gone) in self.tombs[table].items():
            if gone > last and created <= last:
                deleted.append(ref)
        return added, modified, deleted

    # ---- persistence ----------------------------------------------------------------------
    def dump(self) -> str:
        """The persistent state as JSON text (call with the lock held).

        Each row's text is kept until the row changes (``derived``): with a thousand VMs carrying
        docker_* keys the whole state is 9 MB and encoding it took ~55 ms holding the GIL, a
        third of the simulator's busy time while a monitor reflected changes (bench/sim_persist.py)."""
        keep = sorted(t for t in dm.TABLES if t not in dm.VOLATILE_TABLES)
        head = json.dumps({
            "format": DB_FORMAT,
            "generation": self.generation,
            "msg_generation": self.msg_generation,
            "stamps": {t: self.stamps[t] for t in keep},
            "tombs": {t: self.tombs[t] for t in keep},
        }, sort_keys=True)
        parts = [head[:-1], ', "tables": {']  # joined once: the rows are megabytes
        for index, table in enumerate(keep):
            parts.append('%s%s: {' % (", " if index else "", json.dumps(table)))
            for position, ref in enumerate(sorted(self.tables[table])):
                if position:
                    parts.append(", ")
                parts.append(self.derived(table, ref, "json", lambda row: _row_json(ref, row)))
            parts.append("}")
        parts.append("}}")
        return "".join(parts)

    def load(self, text: str) -> None:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != DB_FORMAT:
                raise ValueError("unknown format %r" % (data.get("format")
                                                         if isinstance(data, dict) else None))
            self.generation = int(data["generation"])
            self.msg_generation = int(data["msg_generation"])
            for table, rows in data["tables"].items():
                if table not in self.tables or table in dm.VOLATILE_TABLES:
                    continue
                for ref, row in rows.items():
                    if not isinstance(row, dict) or not isinstance(row.get("uuid"), str):
                        raise ValueError("bad row %s in table %s" % (ref, table))
                    full = dm.default_record(table)
                    full.update(row)
                    self.tables[table][ref] = full
                    self.by_uuid[table][full["uuid"]] = ref
                    stamp = data["stamps"].get(table, {}).get(ref, [0, 0])
                    self.stamps[table][ref] = [int(stamp[0]), int(stamp[1])]
                for ref, stamp in data["tombs"].get(table, {}).items():
                    self.tombs[table][ref] = [int(stamp[0]), int(stamp[1])]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise CorruptDatabase(str(exc)) from exc
        # resident_VMs lists only VMs that still exist.
        for row in self.tables["host"].values():
            row["resident_VMs"] = [r for r in row["resident_VMs"] if r in self.tables["VM"]]


def _row_json(ref: str, row: Dict[str, Any]) -> str:
    """``"ref": {row}``, a row as it sits in db.json's table."""
    return "%s: %s" % (json.dumps(ref), json.dumps(row, sort_keys=True))


class Persister:
    """Owns the thread that writes db.json (temp file + rename) at most every ``delay`` seconds
    while the database changes: 2 s, xapi's own flush period (db_FLUSH_TIMER in
    ocaml/database/db_backend.ml). A thousand VMs with docker_* keys are a 9 MB file, and
    writing it each 0.05 s of a busy minute was ~100 MB/s of synced writes on a shared disk.

    The dump holds the database lock, and it grows with the pool: the wait between dumps is
    also at least ``lock_share``'s inverse times the last dump's lock time, so persistence takes
    at most ~5 % of the lock however large the database is (before rows were encoded once per
    change, see ``Database.dump``, every xapi call waited behind it: 9 ms per call at 300 VMs).
    ``stop`` still writes the final state.
    """

    def __init__(self, db: Database, path: str, delay: float = 2.0, lock_share: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.path = path
        self.delay = delay
        self._lock_share = lock_share
        self._clock = clock
        self._held = 0.0  # seconds the last dump held the lock
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-persist", daemon=True)

    def start(self) -> None:
        self.db.on_persistent_change = self._kick.set
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._kick.wait()
            if self._stop.is_set():
                break
            self._stop.wait(self.next_wait())  # coalesce a burst of changes into one write
            self._kick.clear()
            self.flush()

    def next_wait(self) -> float:
        """Seconds between a change and the dump that writes it."""
        return max(self.delay, self._held / self._lock_share)

    def flush(self) -> None:
        with self.db.lock:
            started = self._clock()
            text = self.db.dump()
            self._held = self._clock() - started
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError:
            log.exception("cannot write the database to %s", self.path)

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        self._thread.join()
        self.flush()
