"""Fixtures: one simulator per test module, sessions over TCP."""

import pytest

from simharness import Sim


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    simulator = Sim(str(tmp_path_factory.mktemp("sim")))
    yield simulator
    assert simulator.stop() == 0


@pytest.fixture(scope="module")
def session(sim):
    s = sim.session()
    yield s
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


@pytest.fixture
def make_sim(tmp_path):
    started = []

    def make(directory=None, extra=()):
        simulator = Sim(directory or str(tmp_path), extra)
        started.append(simulator)
        return simulator
    yield make
    for simulator in started:
        simulator.stop()
