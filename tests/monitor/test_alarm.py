"""The 'cannot monitor VM' alarm, driven by a fake clock."""

import pytest

from xscontainer.monitor.alarm import CLEAR, NOTHING, RAISE, FailureAlarm


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_invalid_threshold():
    with pytest.raises(ValueError):
        FailureAlarm(threshold=-1)


def test_message_after_the_threshold_of_continuous_failure_and_cleared_on_recovery():
    clock = FakeClock()
    alarm = FailureAlarm(threshold=120, clock=clock)
    assert alarm.failure("VM unreachable: connection refused") == NOTHING
    assert alarm.seconds_until_alert() == 120
    clock.advance(60)
    assert alarm.failure("VM unreachable: connection refused") == NOTHING
    assert alarm.check() == NOTHING
    assert alarm.seconds_until_alert() == 60
    clock.advance(59.9)
    assert alarm.check() == NOTHING
    clock.advance(0.1)
    assert alarm.check() == RAISE
    assert alarm.diagnosis == "VM unreachable: connection refused"
    assert alarm.seconds_until_alert() is None
    # raised once per failure period, however many failures follow
    clock.advance(500)
    assert alarm.failure("SSH authentication failed") == NOTHING
    assert alarm.check() == NOTHING
    assert alarm.success() == CLEAR
    assert alarm.success() == NOTHING
    assert not alarm.failing and not alarm.alerted


def test_a_success_restarts_the_count():
    clock = FakeClock()
    alarm = FailureAlarm(threshold=120, clock=clock)
    alarm.failure("down")
    clock.advance(100)
    assert alarm.success() == NOTHING  # never alerted: nothing to clear
    clock.advance(100)
    assert alarm.failure("down again") == NOTHING
    clock.advance(119)
    assert alarm.check() == NOTHING
    clock.advance(1)
    assert alarm.failure("down again") == RAISE


def test_stop_clears_a_raised_message():
    clock = FakeClock()
    alarm = FailureAlarm(threshold=5, clock=clock)
    alarm.failure("down")
    clock.advance(5)
    assert alarm.check() == RAISE
    assert alarm.stop() == CLEAR
    assert alarm.stop() == NOTHING


def test_zero_threshold_raises_at_the_first_failure():
    alarm = FailureAlarm(threshold=0, clock=FakeClock())
    assert alarm.failure("down") == RAISE


def test_undelivered_actions_are_returned_again():
    clock = FakeClock()
    alarm = FailureAlarm(threshold=10, clock=clock)
    alarm.failure("down")
    clock.advance(10)
    assert alarm.check() == RAISE
    alarm.not_delivered(RAISE)  # xapi was away
    assert alarm.check() == RAISE
    assert alarm.success() == CLEAR
    alarm.not_delivered(CLEAR)
    assert alarm.success() == CLEAR
    # an undelivered clear followed by a new failure: the old message still stands, no second one
    alarm.not_delivered(CLEAR)
    assert alarm.failure("down") == NOTHING
    clock.advance(100)
    assert alarm.check() == NOTHING
    assert alarm.success() == CLEAR


def test_a_message_left_by_an_earlier_run_is_cleared_on_first_success():
    alarm = FailureAlarm(threshold=120, clock=FakeClock(), alerted=True)
    assert alarm.success() == CLEAR


def test_check_while_healthy_does_nothing():
    alarm = FailureAlarm(clock=FakeClock())
    assert alarm.check() == NOTHING
    assert alarm.seconds_until_alert() is None
    assert alarm.threshold == 120.0
