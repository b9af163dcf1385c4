"""The back-off schedule and the gate, driven by a fake clock."""

import pytest

from xscontainer.backoff import Backoff, BackoffGate, backoff_delay
from xscontainer.errors import ConnectionFailure


def test_delays_double_up_to_the_cap():
    assert [backoff_delay(n) for n in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_delay(10 ** 6) == 30.0  # no overflow however long it fails
    assert backoff_delay(3, initial=1, maximum=5, factor=3) == 5
    assert backoff_delay(5, initial=0) == 0.0


def test_jitter_only_ever_shortens_and_uses_the_injected_source():
    assert backoff_delay(6, jitter=0.5, rand=lambda: 0.0) == 30.0
    assert backoff_delay(6, jitter=0.5, rand=lambda: 0.5) == 22.5
    assert backoff_delay(6, jitter=0.5, rand=lambda: 0.999999) == pytest.approx(15.0, abs=1e-4)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        backoff_delay(-1)
    with pytest.raises(ValueError):
        backoff_delay(0, jitter=2)
    with pytest.raises(ValueError):
        Backoff(initial=10, maximum=1)


def test_stateful_backoff_resets_after_success():
    backoff = Backoff(initial=1, maximum=4)
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next_delay() == 1
    assert backoff.attempts == 1


def test_the_gate_refuses_attempts_while_the_delay_runs_and_reraises_the_last_failure():
    now = [1000.0]
    gate = BackoffGate(lambda: now[0])
    gate.check()  # nothing failed yet
    gate.failed(ConnectionFailure("refused", code="VM_UNREACHABLE", address="169.254.0.2"))
    with pytest.raises(ConnectionFailure) as raised:
        gate.check()
    assert raised.value.code == "VM_UNREACHABLE" and raised.value.message == "refused"
    assert raised.value.details == {"address": "169.254.0.2", "backoff": True}
    now[0] += 0.5
    gate.check()  # the first delay (0.5 s) is over
    gate.failed(ConnectionFailure("refused again"))
    now[0] += 0.9
    with pytest.raises(ConnectionFailure):
        gate.check()  # the second delay is 1 s
    now[0] += 0.1
    gate.check()
    assert gate.failures == 2


def test_the_gate_follows_the_schedule_up_to_its_cap_and_a_success_resets_it():
    now = [1000.0]
    gate = BackoffGate(lambda: now[0], initial=1, maximum=4)
    waits = []
    for _ in range(5):
        gate.failed(ConnectionFailure("down"))
        waits.append(gate.retry_at - now[0])
    assert waits == [1, 2, 4, 4, 4]
    gate.succeeded()
    gate.check()
    assert gate.failures == 0
    gate.failed(ConnectionFailure("down"))
    assert gate.retry_at - now[0] == 1


def test_an_attempt_through_the_gate_counts_its_connection_failure_and_nothing_else():
    now = [1000.0]
    gate = BackoffGate(lambda: now[0])
    assert gate.attempt(lambda: "stream") == "stream"
    assert gate.failures == 0

    def refused():
        raise ConnectionFailure("refused", code="VM_UNREACHABLE")
    with pytest.raises(ConnectionFailure) as raised:
        gate.attempt(refused)
    assert raised.value.details == {} and gate.failures == 1
    calls = []
    with pytest.raises(ConnectionFailure) as raised:
        gate.attempt(lambda: calls.append(1))  # inside the delay: not even tried
    assert calls == [] and raised.value.details == {"backoff": True}
    now[0] += 0.5

    def broken():
        raise ValueError("a bug, not the VM")
    with pytest.raises(ValueError):
        gate.attempt(broken)
    assert gate.failures == 1
