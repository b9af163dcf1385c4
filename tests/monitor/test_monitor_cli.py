"""xscontainer-monitor's exit status: systemd restarts it (Restart=on-failure) only when it is
non-zero, so a monitor that ends for any reason but a signal must exit non-zero."""

import threading

from xscontainer.errors import XapiError
from xscontainer.monitor.cli import run_monitor


class FakeMonitor(object):
    def __init__(self, behaviour):
        self._behaviour = behaviour
        self._stop = threading.Event()

    def run(self):
        self._behaviour(self._stop)

    def stop(self):
        self._stop.set()


def crash(stop):
    raise RuntimeError("a bug in a monitor thread")


def test_an_unexpected_error_exits_non_zero_and_says_why(capsys):
    assert run_monitor(FakeMonitor(crash), threading.Event()) == 1
    assert "RuntimeError: a bug in a monitor thread (INTERNAL_ERROR)" in capsys.readouterr().err


def test_a_known_failure_exits_non_zero_with_its_code(capsys):
    def fail(stop):
        raise XapiError("xapi is gone for good.", code="XAPI_UNREACHABLE")
    assert run_monitor(FakeMonitor(fail), threading.Event()) == 1
    assert "xapi is gone for good. (XAPI_UNREACHABLE)" in capsys.readouterr().err


def test_a_monitor_that_ends_by_itself_exits_non_zero():
    assert run_monitor(FakeMonitor(lambda stop: None), threading.Event()) == 1


def test_a_monitor_stopped_by_a_signal_exits_zero():
    stopping = threading.Event()
    stopping.set()  # the signal handler sets it and calls stop()
    assert run_monitor(FakeMonitor(lambda stop: stop.wait(10)), stopping) == 0
