"""Back-off, once for the whole product (pure; time is injected): the schedule
(``backoff_delay``, and ``Backoff`` which counts the attempts), the gate that refuses
attempts while the schedule's delay runs (``BackoffGate``, the SSH and TLS tunnels'), and the
pace kept with a peer that sends too much (``RateLimit``, a VM's event stream)."""

import random
import time
from typing import Callable, Optional, TypeVar

from xscontainer.errors import ConnectionFailure

T = TypeVar("T")


def backoff_delay(attempt: int, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0,
                  jitter: float = 0.0, rand: Optional[Callable[[], float]] = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = after the first failure):
    ``initial * factor**attempt`` capped at ``maximum``, then reduced by up to ``jitter`` (a
    fraction) times ``rand()`` (a value in [0, 1)) so that a thousand VMs that failed together do
    not retry together."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter must be within [0, 1]")
    if initial <= 0:
        return 0.0
    try:
        delay = min(float(initial) * float(factor) ** attempt, float(maximum))
    except OverflowError:
        delay = float(maximum)
    if jitter and delay:
        value = (rand or random.random)()
        delay *= 1.0 - jitter * min(max(value, 0.0), 1.0)
    return delay


class Backoff(object):
    """The schedule with its count: ``next_delay()`` after each failure, ``reset()`` after a
    success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0,
                 jitter: float = 0.0, rand: Optional[Callable[[], float]] = None) -> None:
        if initial < 0 or maximum < initial or factor < 1:
            raise ValueError("need 0 <= initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rand = rand
        self.attempts = 0

    def delay(self, attempt: int) -> float:
        return backoff_delay(attempt, self.initial, self.maximum, self.factor, self.jitter, self._rand)

    def next_delay(self) -> float:
        delay = self.delay(self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


class BackoffGate(object):
    """After ``n`` consecutive failures, refuse new attempts for the schedule's delay
    (``min(initial * 2**(n-1), maximum)`` seconds) and re-raise the last failure instead: a VM
    that is down costs one attempt per period, not one per caller. A success resets it; losing an
    established connection does not count as a failure, so the first reconnect is immediate."""

    def __init__(self, clock: Callable[[], float], initial: float = 0.5, maximum: float = 30.0) -> None:
        self._clock = clock
        self._schedule = Backoff(initial, maximum)
        self._retry_at = 0.0
        self._last = None  # type: Optional[ConnectionFailure]

    @property
    def failures(self) -> int:
        """Consecutive failures since the last success."""
        return self._schedule.attempts

    def check(self) -> None:
        """Raise the last failure while the back-off period runs."""
        if self._last is not None and self._clock() < self._retry_at:
            raise ConnectionFailure(self._last.message, code=self._last.code, backoff=True,
                                    **self._last.details)

    def attempt(self, connect: Callable[[], T]) -> T:
        """``connect()`` unless the back-off period runs (``check``); a ConnectionFailure it
        raises counts as a failure. The caller says ``succeeded()`` once the connection is its."""
        self.check()
        try:
            return connect()
        except ConnectionFailure as exc:
            self.failed(exc)
            raise

    def failed(self, error: ConnectionFailure) -> None:
        self._last = error
        self._retry_at = self._clock() + self._schedule.next_delay()

    def succeeded(self) -> None:
        self._schedule.reset()
        self._last = None
        self._retry_at = 0.0

    @property
    def retry_at(self) -> float:
        return self._retry_at


class RateLimit(object):
    """At most ``rate`` takes a second on average and ``burst`` at once (a token bucket):
    ``wait_time()`` takes one and returns 0, or takes nothing and returns the seconds until one
    is there."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("need rate > 0 and burst >= 1")
        self._rate = float(rate)
        self._burst = float(burst)
        self._clock = clock
        self._tokens = self._burst
        self._at = clock()

    def wait_time(self) -> float:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate
