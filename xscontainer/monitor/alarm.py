"""The "cannot monitor VM" alarm (pure; time comes from an injected clock, so the 120 s
threshold runs in microseconds in tests).

``FailureAlarm`` decides *when* the xapi message must be created or destroyed; the caller does the
xapi call (``alerts.py``) and reports an undelivered one with ``not_delivered`` so it is retried.
"""

import time
from typing import Callable, Optional

NOTHING = "nothing"
RAISE = "raise"  # create the message (body: ``FailureAlarm.diagnosis``)
CLEAR = "clear"  # destroy it

DEFAULT_THRESHOLD = 120.0  # seconds of failure before the message, as the original

__all__ = ["FailureAlarm", "NOTHING", "RAISE", "CLEAR"]


class FailureAlarm:
    """Failure time accounting for one VM.

    States: healthy; failing since T (no message); alerted (message exists). ``failure()`` /
    ``check()`` return ``RAISE`` once the VM has been failing for ``threshold`` seconds without a
    success in between; ``success()`` and ``stop()`` return ``CLEAR`` when a message exists. Every
    other call returns ``NOTHING``. The message is raised once per failure period: a changed
    diagnosis does not replace it.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD,
                 clock: Callable[[], float] = time.monotonic, alerted: bool = False) -> None:
        """``alerted``: a message already exists (left by an earlier run), so the next
        ``success()`` or ``stop()`` clears it."""
        if threshold < 0:
            raise ValueError("threshold must be >= 0")
        self.threshold = float(threshold)
        self._clock = clock
        self.failing_since = None  # type: Optional[float]
        self.diagnosis = ""
        self.alerted = alerted

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failure(self, diagnosis: str) -> str:
        """An attempt to monitor failed (``diagnosis``: what the message will say)."""
        now = self._clock()
        if self.failing_since is None:
            self.failing_since = now
        self.diagnosis = diagnosis
        return self._due(now)

    def success(self) -> str:
        """Monitoring works (connected and the keys written)."""
        self.failing_since = None
        self.diagnosis = ""
        return self._clear()

    def stop(self) -> str:
        """Monitoring of the VM stops (deregistered, shut down, migrated away)."""
        return self.success()

    def check(self) -> str:
        """Call when a timer fires (e.g. while waiting between retries)."""
        if self.failing_since is None:
            return NOTHING
        return self._due(self._clock())

    def seconds_until_alert(self) -> Optional[float]:
        """How long until ``check()`` returns ``RAISE``; None when no alert is coming (healthy
        or already alerted). Lets the caller wait ``min(back-off, this)``."""
        if self.failing_since is None or self.alerted:
            return None
        return max(0.0, self.failing_since + self.threshold - self._clock())

    def not_delivered(self, action: str) -> None:
        """The xapi call for ``action`` failed; the alarm returns it again on the next call."""
        if action == RAISE:
            self.alerted = False
        elif action == CLEAR:
            self.alerted = True

    def _due(self, now: float) -> str:
        if self.alerted or self.failing_since is None:
            return NOTHING
        if now - self.failing_since >= self.threshold:
            self.alerted = True
            return RAISE
        return NOTHING

    def _clear(self) -> str:
        if self.alerted:
            self.alerted = False
            return CLEAR
        return NOTHING
