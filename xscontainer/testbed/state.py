"""DIR/testbed.json: what a testbed created, recorded before or as soon as it exists.

So that `down` in another process, or after a crash half-way through `up`, knows what to remove.
"""

import copy
import json
import os
import threading
from typing import Any, Dict, Optional

STATE_FILE = "testbed.json"
STATE_VERSION = 1


class State:
    """A JSON document saved atomically after every change; safe to use from several threads."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.RLock()
        self._data = self._load()  # type: Dict[str, Any]

    def _load(self) -> Dict[str, Any]:
        try:
            with open(self._path) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def reload(self) -> None:
        with self._lock:
            self._data = self._load()

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return copy.deepcopy(self._data.get(key, default))

    def reset(self, **fields: Any) -> None:
        with self._lock:
            self._data = {"version": STATE_VERSION, "processes": [], "vms": {}}
            self._data.update(fields)
            self._save()

    def set(self, **fields: Any) -> None:
        with self._lock:
            self._data.update(fields)
            self._save()

    def set_vm(self, vm_name: str, **fields: Any) -> None:
        with self._lock:
            self._data.setdefault("vms", {}).setdefault(vm_name, {}).update(fields)
            self._save()

    def set_vms(self, updates: Dict[str, Dict[str, Any]]) -> None:
        """set_vm for many VMs with one save (a thousand saves of a thousand records are slow)."""
        with self._lock:
            vms = self._data.setdefault("vms", {})
            for vm_name, fields in updates.items():
                vms.setdefault(vm_name, {}).update(fields)
            self._save()

    def vm(self, name: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            record = self._data.get("vms", {}).get(name)
            return copy.deepcopy(record) if record is not None else None

    def add_process(self, role: str, pid: int, start: Optional[int], vm: Optional[str] = None) -> None:
        with self._lock:
            self._data.setdefault("processes", []).append(
                {"role": role, "vm": vm, "pid": pid, "start": start})
            self._save()

    def _save(self) -> None:
        tmp = self._path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(self._data, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, self._path)
