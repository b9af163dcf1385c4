"""Fixtures for prepare-vm: a simulated pool (the product's simulator, started as users start it)
and a runner for the command as a subprocess."""

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Dict, List, Optional

import pytest

from xscontainer.xapi.session import close_session, open_local_session


class SimPool(object):
    def __init__(self, directory):
        self.directory = directory
        self._stderr = open(os.path.join(directory, "stderr.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "xscontainer.sim.cli", "--dir", directory, "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        result = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(30)
        if not result or not result[0]:
            self.stop()
            raise RuntimeError("the simulator did not start; see %s" % os.path.join(directory, "stderr.log"))
        self.info = json.loads(result[0].decode())

    def session(self):
        return open_local_session(self.info["unix_socket"])

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


@pytest.fixture(scope="module")
def simpool(tmp_path_factory):
    pool = SimPool(str(tmp_path_factory.mktemp("prepare-sim")))
    yield pool
    pool.stop()


@pytest.fixture(scope="module")
def sim_session(simpool):
    session = simpool.session()
    yield session
    close_session(session)


class Run(object):
    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        return "rc=%s\nstdout:\n%s\nstderr:\n%s" % (self.returncode, self.stdout, self.stderr)


def run_prepare(args: List[str], xapi_socket: Optional[str] = None, stdin_text: Optional[str] = None,
                timeout: float = 120) -> Run:
    """Run ``python -m xscontainer.prepare.cli`` (the xscontainer-prepare-vm entry point) with no
    terminal: stdin is a pipe (or /dev/null)."""
    env = dict(os.environ)  # type: Dict[str, str]
    if xapi_socket:
        env["XSCONTAINER_XAPI_SOCKET"] = xapi_socket
    proc = subprocess.Popen([sys.executable, "-m", "xscontainer.prepare.cli"] + list(args),
                            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, universal_newlines=True)
    out, err = proc.communicate(stdin_text, timeout=timeout)
    return Run(proc.returncode, out, err)
