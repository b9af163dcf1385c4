"""The one exponential back-off schedule (pure), shared by the tunnels, the watchers and the
monitor's xapi loop."""

import random
from typing import Callable, Optional


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
