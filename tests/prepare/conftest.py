"""Fixtures for prepare-vm: a simulated pool (the product's simulator, started as users start it)
and a runner for the command as a subprocess."""

import os
import subprocess
import sys
from typing import List, Optional

import pytest

from xscontainer.sim.process import SimulatorProcess

from xscontainer.xapi.session import close_session


class SimPool(SimulatorProcess):
    def __init__(self, directory):
        super().__init__(directory)
        self.start(30.0)

    def session(self):
        return self.local_session()


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
