"""One hostile guest must not hurt the host or the other VMs (issue 13): with a hostile engine on
one VM's Docker socket (``hostilebed.MODES``: endless body, 1-byte chunks, a 10,000-container
list, a value bomb, deep JSON, garbage, a 1 TB length, a slow drip, an event flood), the running
monitor (an ``xscontainer-monitor`` process for host 1 of the shared testbed) still reflects a
change on another VM while the hostile engine is active, and its RSS stays within its stated
budget: its peak with a quiet engine + the hostile VM's budget (256 MiB) + 32 MiB.

How fast the other VM is reflected (1 s) and what CPU the monitor spends are the bench's figures
(``bench/hostile.py``), never asserted here.
"""

import pytest

from monitor.hostilebed import HOSTILE_MODES, Hostile, Probe, Sampler, _common
from waiting import wait_for
from xscontainer.engine.budget import MIB, VM_BUDGET

SLACK_MB = 32.0


class HostileBed(object):
    def __init__(self, testbed, directory):
        self.testbed = testbed
        self.info = testbed.info()
        host = self.info["hosts"][0]
        vms = [vm for vm in self.info["vms"] if vm["host_uuid"] == host["uuid"]]
        self.hostile_vm, self.other_vm = vms[0]["name_label"], vms[1]["name_label"]
        self.session = _common.session(self.info)
        self.refs = [self.session.xenapi.VM.get_by_uuid(vm["uuid"]) for vm in vms[:2]]
        self.probe = Probe(testbed, self.other_vm)
        self.monitor = _common.MonitorProcess(self.info, host, directory, env={"MALLOC_ARENA_MAX": "2"})
        self.events = _common.VmEvents(self.info)
        self.monitor.wait_control()
        _common.set_registered(self.session, self.refs[1], True)
        assert self.events.wait(lambda ev: ev.statuses(self.refs[1]) is not None, 60.0) is not None, \
            "docker_ps never appeared; see %s" % self.monitor.log_path
        self.budget_mb = None

    def other_shows(self, prefix):
        return lambda ev: ((ev.statuses(self.refs[1]) or {}).get(self.probe.name) or "").startswith(prefix)

    def attack(self, mode):
        """Under ``mode``: the hostile VM is registered (afresh, no back-off left from the mode
        before) and the monitor meets its engine, then the probe on the other VM is started and
        stopped and each change reflected while the hostile engine is still there. Returns the
        monitor's peak RSS (MB) meanwhile."""
        with Hostile(self.testbed, self.hostile_vm, mode) as engine:
            sampler = Sampler(self.monitor.pid).start()
            _common.set_registered(self.session, self.refs[0], True)
            try:
                wait_for(lambda: engine.requests > 0, timeout=60, what="the monitor to meet the %s engine" % mode)
                for act, shown in ((self.probe.start, "Up"), (self.probe.stop, "Exited")):
                    act()
                    assert self.events.wait(self.other_shows(shown), 60.0) is not None, \
                        "%s: the other VM's change (%s) was not reflected; see %s" % (mode, shown,
                                                                                     self.monitor.log_path)
                    assert engine.active and engine.requests > 0
            finally:
                peak = sampler.stop()[0]
                _common.set_registered(self.session, self.refs[0], False)
                self.events.wait(lambda ev: "docker_ps" not in ev.configs.get(self.refs[0], {}), 30.0)
            assert self.monitor.alive(), "the monitor died under %s; see %s" % (mode, self.monitor.log_path)
        return peak

    def close(self):
        try:
            self.probe.remove()
            for ref in self.refs:
                _common.set_registered(self.session, ref, False)
            for ref in self.refs:
                self.events.wait(lambda ev: "docker_ps" not in ev.configs.get(ref, {}), 30.0)
        finally:
            self.monitor.stop()
            self.events.close()
            _common.close(self.session)


@pytest.fixture(scope="module")
def bed(testbed, tmp_path_factory):
    bed = HostileBed(testbed, str(tmp_path_factory.mktemp("hostile")))
    try:
        bed.budget_mb = bed.attack("quiet") + VM_BUDGET / MIB + SLACK_MB
        yield bed
    finally:
        bed.close()


@pytest.mark.parametrize("mode", HOSTILE_MODES)
def test_another_vm_is_reflected_and_the_monitor_stays_in_its_memory_budget(bed, mode):
    peak = bed.attack(mode)
    assert peak <= bed.budget_mb, "%s: the monitor's RSS peaked at %.1f MB, over its %.1f MB budget" % (
        mode, peak, bed.budget_mb)
