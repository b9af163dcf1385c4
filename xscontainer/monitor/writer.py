"""Writes the monitor's keys into VM.other_config key by key, and only when a value changed."""

import logging
import threading
from typing import Dict, Iterable, Tuple

import XenAPI

from xscontainer.monitor.xapipool import SessionPool
from xscontainer.xapi.maps import remove_map_key, set_map_key

LOG = logging.getLogger(__name__)
DOCKER_KEYS = ("docker_ps", "docker_info", "docker_version")


class OtherConfigWriter:
    def __init__(self, sessions: SessionPool) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._written = {}  # type: Dict[Tuple[str, str], str]

    def seed(self, vm_ref: str, other_config: Dict[str, str]) -> None:
        """Remember what xapi already holds, so a restart does not rewrite unchanged values."""
        with self._lock:
            for key in DOCKER_KEYS:
                if key in other_config:
                    self._written[(vm_ref, key)] = other_config[key]

    def write(self, vm_ref: str, key: str, value: str) -> bool:
        """Set the key if its value differs from what we last wrote; True if xapi was called."""
        with self._lock:
            if self._written.get((vm_ref, key)) == value:
                return False
        with self._sessions.session() as session:
            set_map_key(session.xenapi.VM, vm_ref, key, value)
        with self._lock:
            self._written[(vm_ref, key)] = value
        return True

    def remove(self, vm_ref: str, keys: Iterable[str] = DOCKER_KEYS) -> None:
        with self._lock:
            for key in keys:
                self._written.pop((vm_ref, key), None)
        try:
            with self._sessions.session() as session:
                for key in keys:
                    remove_map_key(session.xenapi.VM, vm_ref, key)
        except XenAPI.Failure as exc:
            if exc.details[0] != "HANDLE_INVALID":  # the VM is gone: nothing to clean
                raise

    def forget(self, vm_ref: str) -> None:
        with self._lock:
            for key in DOCKER_KEYS:
                self._written.pop((vm_ref, key), None)
