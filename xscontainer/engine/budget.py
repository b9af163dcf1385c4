"""What a VM's engine answers may hold of dom0's memory: one budget per VM and one for the
process, so that a hostile guest's engine (or eight plugin calls at once) cannot make the monitor
spend more than that. Thread-safe; ``HttpPool`` reserves bytes as they arrive, ``hold`` the
decoded value of an answer for as long as its caller keeps it.

What a budget counts (an upper bound of what is really held):
- the bytes of a response being read, from the first byte until the whole body is read;
- then ``jsonbound.decoded_size_bound(body)`` for decoding it (the body, its text, the Python
  objects: about twice what a container list really takes), from before decoding until the
  caller drops the decoded list or dict.
A reservation that does not fit is refused at once (ENGINE_RESPONSE_TOO_LARGE naming the VM and
the budget): nothing waits, so nothing can wait for itself. The only thing outside: while a body
is joined, its pieces and the joined copy exist together for a moment (one body, at most the
call's bound).
"""

import threading
import weakref
from typing import Any, Callable, Optional

from xscontainer.engine.httpparse import TOO_LARGE
from xscontainer.errors import EngineError

MIB = 1024 * 1024
# Per VM: a 16 MiB /containers/json (about 13,000 containers) decodes within it on Python 3.6,
# whose objects are the largest; a hostile VM gets no more. For the process: two such VMs at once;
# eight VMs of 2,000 containers each.
VM_BUDGET = 256 * MIB
PROCESS_BUDGET = 512 * MIB


class _HeldList(list):
    """A decoded list whose reservation is given back when it is collected."""


class _HeldDict(dict):
    """A decoded dict whose reservation is given back when it is collected."""


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
                    "(%d bytes of answers being read or decoded); the answer was dropped."
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

    def hold(self, size: int, vm_uuid: str, make: Callable[[], Any]) -> Any:
        """``make()`` (a decoding) with ``size`` bytes reserved first; a list or dict it returns
        keeps them reserved until it is collected (a copy of the same type's subclass: only
        what the caller keeps of its contents outlives it), anything else gives them back now."""
        self.reserve(size, vm_uuid)
        try:
            value = make()
        except BaseException:
            self.release(size)
            raise
        if isinstance(value, list):
            value = _HeldList(value)
        elif isinstance(value, dict):
            value = _HeldDict(value)
        else:
            self.release(size)
            return value
        weakref.finalize(value, self.release, size)
        return value
