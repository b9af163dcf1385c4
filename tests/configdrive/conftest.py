"""A simulated pool (the product's own simulator, started as users start it) for config drive tests."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from xscontainer.xapi.session import close_session, open_local_session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SimPool:
    def __init__(self, directory):
        self.directory = directory
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._stderr = open(os.path.join(directory, "stderr.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "xscontainer.sim.cli", "--dir", directory],
                                     stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        line = self._readline(30.0)
        if not line:
            self.stop()
            with open(os.path.join(directory, "stderr.log"), "rb") as handle:
                raise RuntimeError("the simulator did not start: %s" % handle.read()[-2000:])
        self.info = json.loads(line.decode())

    def _readline(self, timeout):
        result = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        return result[0] if result else b""

    @property
    def socket_path(self):
        return self.info["unix_socket"]

    def session(self):
        # The local socket, as the plugin in dom0 uses it.
        return open_local_session(self.socket_path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()


def _start(tmp_path_factory, name):
    try:
        import xscontainer.sim.cli  # noqa: F401
    except ImportError as exc:
        pytest.skip("the xapi simulator is not available: %s" % exc)
    return SimPool(str(tmp_path_factory.mktemp(name)))


@pytest.fixture()
def sim_factory():
    """Start a further simulator in a given directory (stop it yourself)."""
    return SimPool


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    pool = _start(tmp_path_factory, "sim")
    yield pool
    pool.stop()


@pytest.fixture(scope="module")
def session(sim):
    session = sim.session()
    yield session
    close_session(session)
