"""Bytes that responses in flight may hold at once: one budget per VM and one for the process, so
a hostile guest's engine (or eight plugin calls at once) cannot make dom0 spend more than that on
bodies still being read. Pure and thread-safe; ``HttpPool`` reserves as bytes arrive."""

import threading
from typing import Optional

from xscontainer.engine.httpparse import TOO_LARGE
from xscontainer.errors import EngineError



class ByteBudget(object):
    """At most ``limit`` bytes reserved at once, here and in ``parent`` (the process-wide budget
    a VM's budget is part of). ``what`` names the budget in the refusal ("VM <uuid>", "all VMs")."""

    def __init__(self, limit: int, what: str, parent: Optional["ByteBudget"] = None) -> None:
        self.limit = limit
        self.what = what
        self.parent = parent
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def _take(self, size: int, vm_uuid: str) -> None:
        with self._lock:
            if self._used + size > self.limit:
                raise EngineError(
                    "The Docker engine in VM %s sent more than xscontainer holds at once for %s "
                    "(%d bytes of responses being read); the response was dropped."
                    % (vm_uuid or "?", self.what, self.limit), code=TOO_LARGE, vm=vm_uuid)
            self._used += size

    def _give(self, size: int) -> None:
        with self._lock:
            self._used = max(0, self._used - size)

    def reserve(self, size: int, vm_uuid: str = "") -> None:
        """Reserve ``size`` more bytes for a response from ``vm_uuid``'s engine, here and in the
        parent, or raise ENGINE_RESPONSE_TOO_LARGE and reserve nothing."""
        if self.parent is not None:
            self.parent.reserve(size, vm_uuid)
        try:
            self._take(size, vm_uuid)
        except EngineError:
            if self.parent is not None:
                self.parent.release(size)
            raise

    def release(self, size: int) -> None:
        """Give back bytes reserved earlier (the response is done with, or failed)."""
        self._give(size)
        if self.parent is not None:
            self.parent.release(size)
