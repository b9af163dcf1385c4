"""Shared, session-scoped fixtures.

``testbed``: one pool of 2 simulated hosts and 3 VMs (real sshd and dockerd in namespaces, 4
sample containers each: web, burner, sleeper (paused), exited (code 3)), no monitor. Tests that
use it must leave it as they found it (restart what they stop, restore what they change).
"""

import pytest


@pytest.fixture(scope="session")
def testbed(tmp_path_factory):
    """An up xscontainer.testbed.Testbed; ``testbed.info()`` describes it (see its docstring)."""
    from xscontainer.testbed import Testbed, missing_prerequisites
    reasons = missing_prerequisites()
    if reasons:
        pytest.skip("testbed unavailable on this machine: " + "; ".join(reasons))
    bed = Testbed(str(tmp_path_factory.mktemp("testbed")))
    try:
        bed.up(hosts=2, vms=3, containers=4, monitor=False)
        yield bed
    finally:
        bed.down()
