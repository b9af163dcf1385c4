"""A simulated pool (the product's own simulator, started as users start it) for config drive tests."""

import os

import pytest

from xscontainer.sim.process import SimulatorProcess

from xscontainer.xapi.session import close_session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SimPool(SimulatorProcess):
    def __init__(self, directory):
        super().__init__(directory)
        self.start(30.0)

    def session(self):
        # The local socket, as the plugin in dom0 uses it.
        return self.local_session()


def _start(tmp_path_factory, name):
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
