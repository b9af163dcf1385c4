"""Calls to xapi over its Unix socket are bounded: an xapi that accepts but never answers gives
an error the monitor's loop handles (and reconnects after), never a thread blocked forever."""

import os
import socket
import threading
import uuid

import pytest

from xscontainer.errors import XapiError
from xscontainer.monitor.daemon import XAPI_ERRORS
from xscontainer.xapi.session import local_session_object, open_local_session


@pytest.fixture
def silent_xapi():
    """A Unix socket that accepts connections and reads, but never answers."""
    directory = "/tmp/xscsilent-" + uuid.uuid4().hex[:12]  # XenAPI cannot address a path with '_'
    os.mkdir(directory, 0o700)
    path = os.path.join(directory, "xapi")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
    thread = threading.Thread(target=accept)
    thread.start()
    yield path
    stop.set()
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join()
    for conn in accepted:
        conn.close()
    os.unlink(path)
    os.rmdir(directory)


def _in_thread(call):
    """Run ``call``; what it raised, or a failure if it is still blocked after a generous bound."""
    result = []

    def run():
        try:
            call()
            result.append(None)
        except BaseException as exc:
            result.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)  # bounds a failing test only
    assert result, "the call is still blocked"
    return result[0]


def test_a_login_to_a_silent_xapi_fails_with_a_code(silent_xapi):
    exc = _in_thread(lambda: open_local_session(silent_xapi, timeout=0.2))
    assert isinstance(exc, XapiError) and exc.code == "XAPI_UNREACHABLE"


def test_a_call_to_a_silent_xapi_is_an_error_the_monitor_survives(silent_xapi):
    session = local_session_object(silent_xapi, timeout=0.2)
    session._session = "OpaqueRef:some-session"
    exc = _in_thread(lambda: session.xenapi.event_from(["vm"], "", 2.0))
    assert isinstance(exc, XAPI_ERRORS), repr(exc)
