"""Writes the monitor's keys into VM.other_config key by key, and only when a value changed.

The writer remembers what it believes xapi holds, so an unchanged value costs no xapi call. That
belief must never outlive the truth: a failed write forgets it (the remove before the add may have
succeeded), and ``audit`` compares it with what xapi's events show, so keys that someone else
removed or replaced (another host's monitor after a migration, an administrator) are written again.
"""

import logging
import threading
from typing import Dict, Iterable, List, Mapping, Set, Tuple

from xscontainer.monitor.xapipool import SessionPool
from xscontainer.xapi import Failure
from xscontainer.xapi.maps import add_map_key_if_absent, remove_map_key, set_map_key

LOG = logging.getLogger(__name__)
DOCKER_KEYS = ("docker_ps", "docker_info", "docker_version")


class OtherConfigWriter:
    def __init__(self, sessions: SessionPool) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._written = {}  # type: Dict[Tuple[str, str], str]
        self._writing = {}  # type: Dict[Tuple[str, str], int]  # writes in flight
        self._generation = {}  # type: Dict[Tuple[str, str], int]  # writes started
        self._suspect = {}  # type: Dict[Tuple[str, str], int]  # generation seen mismatched
        # Keys xapi was last seen without: their first write is one add instead of remove + add
        # (a new VM's first refresh costs three xapi calls, not six).
        self._absent = set()  # type: Set[Tuple[str, str]]

    def seed(self, vm_ref: str, other_config: Dict[str, str]) -> None:
        """Remember what xapi already holds, so a restart does not rewrite unchanged values."""
        with self._lock:
            for key in DOCKER_KEYS:
                if key in other_config:
                    self._written[(vm_ref, key)] = other_config[key]
                    self._absent.discard((vm_ref, key))
                else:
                    self._absent.add((vm_ref, key))

    def write(self, vm_ref: str, key: str, value: str) -> bool:
        """Set the key if its value differs from what we last wrote; True if xapi was called.

        Raises what xapi raised; the key is then believed absent, so the next write of any value
        calls xapi again."""
        slot = (vm_ref, key)
        with self._lock:
            if self._written.get(slot) == value:
                return False
            self._written.pop(slot, None)
            self._writing[slot] = self._writing.get(slot, 0) + 1
            self._generation[slot] = self._generation.get(slot, 0) + 1
            absent = slot in self._absent
            self._absent.discard(slot)  # unknown until the write ends
        try:
            with self._sessions.session() as session:
                # Believed absent: an add alone, unless someone added the key meanwhile.
                if not (absent and add_map_key_if_absent(session.xenapi.VM, vm_ref, key, value)):
                    set_map_key(session.xenapi.VM, vm_ref, key, value)
            with self._lock:
                self._written[slot] = value
            return True
        finally:
            with self._lock:
                self._writing[slot] -= 1
                if not self._writing[slot]:
                    del self._writing[slot]

    def audit(self, vm_ref: str, other_config: Mapping[str, str]) -> List[str]:
        """The keys of ``vm_ref`` that xapi no longer holds as we wrote them, going by an event's
        view of its ``other_config``; the writer forgets them so that the next write of each calls
        xapi.

        One view is not proof: it may have been taken between our own remove and add. A key is lost
        when two successive views (of successive ``event.from`` batches) show it wrong with no
        write of ours started in between -- by then the view reflects our last write. Call it
        for every VM a batch changed and for every VM in ``suspects()``."""
        lost = []
        with self._lock:
            for key in DOCKER_KEYS:
                slot = (vm_ref, key)
                if slot not in self._written or slot in self._writing \
                        or other_config.get(key) == self._written[slot]:
                    self._suspect.pop(slot, None)
                    continue
                generation = self._generation.get(slot, 0)
                if self._suspect.get(slot) == generation:
                    del self._suspect[slot]
                    del self._written[slot]
                    lost.append(key)
                else:
                    self._suspect[slot] = generation
        return lost

    def suspects(self) -> Set[str]:
        """VMs with a key under suspicion (see ``audit``)."""
        with self._lock:
            return set(vm_ref for vm_ref, _ in self._suspect)

    def remove(self, vm_ref: str, keys: Iterable[str] = DOCKER_KEYS) -> None:
        keys = tuple(keys)
        self._drop(vm_ref, keys)
        try:
            with self._sessions.session() as session:
                for key in keys:
                    remove_map_key(session.xenapi.VM, vm_ref, key)
                    with self._lock:
                        self._absent.add((vm_ref, key))
        except Failure as exc:
            if exc.details[0] != "HANDLE_INVALID":  # the VM is gone: nothing to clean
                raise

    def forget(self, vm_ref: str) -> None:
        self._drop(vm_ref, DOCKER_KEYS)

    def _drop(self, vm_ref: str, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._written.pop((vm_ref, key), None)
                self._suspect.pop((vm_ref, key), None)
                self._absent.discard((vm_ref, key))
