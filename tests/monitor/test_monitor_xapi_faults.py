"""The monitor against an xapi that fails in every way a client can see while it restarts or
breaks: ``event.from``'s answer cut short, missing, garbage, malformed. The monitor must keep
following xapi (reconnecting with back-off), never stop for good.

A proxy (``xapifront.py``) in front of a private simulator spoils one answer at a time; after
each, a newly registered VM must get a watcher: the monitor still reflects xapi.
"""

import os
import shutil
import threading
import uuid

import pytest

from waiting import wait_for
from xscontainer.monitor.service import Monitor, MonitorOptions
from xscontainer.sim.process import SimulatorProcess
from xscontainer.xapi.session import close_session, open_local_session

from .xapifront import MODES, XapiFront


class Rig(object):
    def __init__(self, directory):
        self.sim = SimulatorProcess(directory)
        self.sim.start()
        self.session = self.sim.local_session()
        # Unix socket paths must stay short, and XenAPI cannot address one with a '_'.
        self.dir = "/tmp/xscxf-" + uuid.uuid4().hex[:12]
        os.mkdir(self.dir, 0o700)
        self.front = XapiFront(self.dir + "/xapi", self.sim.socket_path)
        options = MonitorOptions(control_dir=self.dir, poll_timeout=0.2, backoff_initial=0.05, backoff_maximum=0.2)
        self.monitor = Monitor(lambda: open_local_session(self.front.path), self.sim.info["hosts"][0]["inventory"],
                               options)
        self.crash = []
        self.runner = threading.Thread(target=self._run, name="monitor-under-test")
        self.runner.start()
        wait_for(self.monitor.host.connected.is_set, timeout=10, what="the monitor to read xapi")

    def _run(self):
        try:
            self.monitor.run()
        except BaseException as exc:
            self.crash.append(exc)
            raise

    def register_new_vm(self, name):
        api = self.session.xenapi
        ref = api.VM.create({"name_label": name})
        api.VM.start_on(ref, api.host.get_all()[0], False, False)
        api.sim.set_guest_networks(ref, {"0/ip": "192.0.2.1", "0/ipv4/0": "192.0.2.1"})  # TEST-NET: no answer
        api.VM.add_to_other_config(ref, "xscontainer-monitor", "True")
        return api.VM.get_uuid(ref)

    def close(self):
        self.monitor.stop()
        self.runner.join(30)
        self.front.close()
        close_session(self.session)
        self.sim.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    rig = Rig(str(tmp_path_factory.mktemp("xapi")))
    try:
        yield rig
    finally:
        rig.close()
    assert not rig.runner.is_alive()


@pytest.mark.parametrize("mode", MODES)
def test_the_monitor_survives_a_spoiled_event_from_answer(rig, mode):
    count = len(rig.front.spoiled)
    rig.front.spoil(mode)
    wait_for(lambda: len(rig.front.spoiled) > count, timeout=10, what="the spoiled answer to be sent")
    uuid = rig.register_new_vm("after-" + mode)
    wait_for(lambda: uuid in rig.monitor.host.watchers() or not rig.runner.is_alive(), timeout=10,
             what="a watcher for the VM registered after the fault")
    assert rig.crash == [] and rig.runner.is_alive(), "the monitor stopped: %r" % rig.crash
    assert uuid in rig.monitor.host.watchers()
