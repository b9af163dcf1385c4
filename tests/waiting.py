"""Waiting for an asynchronous effect in tests: the deadline only bounds a failing test, it is
never a performance assertion."""

import time


def wait_for(predicate, timeout=30.0, what="condition", interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)
