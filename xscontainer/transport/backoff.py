"""Reconnect back-off shared by the SSH and TLS tunnels (time injected, so tests run instantly)."""

from typing import Callable, Optional

from xscontainer.backoff import backoff_delay
from xscontainer.errors import ConnectionFailure


class Backoff(object):
    """After ``n`` consecutive failures, refuse new attempts for ``min(base * 2**(n-1), cap)``
    seconds and re-raise the last failure instead: a VM that is down costs one attempt per
    period, not one per caller. A success resets it; losing an established connection does not
    count as a failure, so the first reconnect is immediate."""

    def __init__(self, clock: Callable[[], float], base: float = 0.5, cap: float = 30.0) -> None:
        self._clock = clock
        self._base = base
        self._cap = cap
        self.failures = 0
        self._retry_at = 0.0
        self._last = None  # type: Optional[ConnectionFailure]

    def check(self) -> None:
        """Raise the last failure while the back-off period runs."""
        if self._last is not None and self._clock() < self._retry_at:
            raise ConnectionFailure(self._last.message, code=self._last.code, backoff=True,
                                    **self._last.details)

    def failed(self, error: ConnectionFailure) -> None:
        self.failures += 1
        self._last = error
        self._retry_at = self._clock() + backoff_delay(self.failures - 1, self._base, self._cap)

    def succeeded(self) -> None:
        self.failures = 0
        self._last = None
        self._retry_at = 0.0

    @property
    def retry_at(self) -> float:
        return self._retry_at
