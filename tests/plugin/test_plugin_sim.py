"""The xscontainer plugin in a simulated two-host pool, where no VM engine is needed: what the
plugin says when the host it must forward to is offline, unreachable or without xscontainer,
which VMs it refuses to act on, and that its internal forwarding key cannot be forged."""

import pytest
import XenAPI

from xscontainer.sim.process import SimulatorProcess
from xscontainer.xapi.session import close_session

PLUGIN = "xscontainer"


class Pool:
    def __init__(self, directory):
        self.sim = SimulatorProcess(directory, hosts=2)
        self.info = self.sim.start(30.0)
        self.session = self.sim.local_session()
        api = self.session.xenapi
        self.hosts = [api.host.get_by_uuid(h["uuid"]) for h in self.info["hosts"]]
        self.running = self.vm("web", start_on=self.hosts[1])
        self.halted = self.vm("halted-vm")

    def vm(self, name, start_on=None, **fields):
        api = self.session.xenapi
        ref = api.VM.create(dict({"name_label": name}, **fields))
        if start_on:
            api.VM.start_on(ref, start_on, False, False)
        return ref

    def uuid(self, ref):
        return self.session.xenapi.VM.get_uuid(ref)

    def call(self, fn, args, host_index=0, session=None):
        return (session or self.session).xenapi.host.call_plugin(self.hosts[host_index], PLUGIN,
                                                                  fn, args)

    def failure(self, fn, args, host_index=0):
        with pytest.raises(XenAPI.Failure) as err:
            self.call(fn, args, host_index)
        return err.value.details

    def stop(self):
        close_session(self.session)
        assert self.sim.stop() == 0


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    pool = Pool(str(tmp_path_factory.mktemp("pool")))
    yield pool
    pool.stop()


@pytest.fixture
def member_state(pool):
    """Set the state of the member that runs the VM; back to live afterwards."""
    def set_state(state):
        pool.session.xenapi.sim.set_host_state(pool.hosts[1], state)
    yield set_state
    set_state("live")


def _member(pool):
    return pool.info["hosts"][1]


def test_forwarding_to_an_offline_host(pool, member_state):
    member_state("offline")
    details = pool.failure("get_status", {"vmuuid": pool.uuid(pool.running)})
    assert details[:3] == ["XENAPI_PLUGIN_FAILURE", "get_status", "HOST_OFFLINE"]
    message = details[3]
    assert message.startswith("Host %s (%s) that runs VM web (%s) is offline"
                              % (_member(pool)["name_label"], _member(pool)["uuid"],
                                 pool.uuid(pool.running)))


def test_forwarding_to_a_host_that_cannot_be_contacted(pool, member_state):
    member_state("unreachable")
    details = pool.failure("get_logs", {"vmuuid": pool.uuid(pool.running), "container": "c"})
    assert details[:3] == ["XENAPI_PLUGIN_FAILURE", "get_logs", "CANNOT_CONTACT_HOST"]
    assert "%s (%s)" % (_member(pool)["name_label"], _member(pool)["uuid"]) in details[3]
    assert "cannot be contacted" in details[3]


def test_forwarding_to_a_host_without_xscontainer(pool):
    pool.session.xenapi.sim.remove_plugin(pool.hosts[1], PLUGIN)
    try:
        details = pool.failure("get_status", {"vmuuid": pool.uuid(pool.running)})
    finally:
        pool.session.xenapi.sim.restore_plugin(pool.hosts[1], PLUGIN)
    assert details[:3] == ["XENAPI_PLUGIN_FAILURE", "get_status", "PLUGIN_NOT_INSTALLED"]
    assert details[3].startswith("xscontainer is not installed on host %s (%s): install it there"
                                 % (_member(pool)["name_label"], _member(pool)["uuid"]))


def test_a_forged_forwarding_key_does_not_run_the_call_on_the_wrong_host(pool):
    details = pool.failure("get_status", {"vmuuid": pool.uuid(pool.running),
                                          "xscontainer-forwarded": "1"}, host_index=0)
    assert details[:3] == ["XENAPI_PLUGIN_FAILURE", "get_status", "WRONG_HOST"]
    assert _member(pool)["uuid"] in details[3]


def test_the_forwarding_key_on_the_right_host_is_accepted(pool):
    result = pool.call("get_status", {"vmuuid": pool.uuid(pool.running),
                                      "xscontainer-forwarded": "1"}, host_index=1)
    assert result.startswith("True")


def test_operations_on_a_halted_vm_say_it_is_not_running(pool):
    uuid = pool.uuid(pool.halted)
    for fn, args in [("get_logs", {"container": "web"}), ("get_top", {"object": "web"}),
                     ("restart", {"container": "web"}), ("get_stats", {}), ("refresh", {})]:
        details = pool.failure(fn, dict(args, vmuuid=uuid))
        assert details[:3] == ["XENAPI_PLUGIN_FAILURE", fn, "VM_NOT_RUNNING"], details
        assert details[3].startswith("VM halted-vm (%s) is not running (Halted)" % uuid)


def test_a_halted_vm_can_be_registered_for_later(pool):
    uuid = pool.uuid(pool.halted)
    assert pool.call("register", {"vmuuid": uuid}) == "TrueNone"
    assert pool.session.xenapi.VM.get_other_config(pool.halted)["xscontainer-monitor"] == "True"
    assert pool.call("deregister", {"vmuuid": uuid}) == "TrueNone"


def _control_domain(pool):
    return pool.session.xenapi.host.get_control_domain(pool.hosts[0])


def _template(pool):
    api = pool.session.xenapi
    return next(ref for ref, r in api.VM.get_all_records().items()
                if r["is_a_template"] and not r["is_a_snapshot"])


@pytest.mark.parametrize("target,what", [("dom0", "control domain"), ("template", "a template"),
                                         ("snapshot", "a snapshot")])
def test_register_refuses_what_is_not_a_guest(pool, target, what):
    ref = {"dom0": lambda: _control_domain(pool), "template": lambda: _template(pool),
           "snapshot": lambda: pool.vm("snap", is_a_snapshot=True, is_a_template=True)}[target]()
    details = pool.failure("register", {"vmuuid": pool.uuid(ref)})
    assert details[:3] == ["XENAPI_PLUGIN_FAILURE", "register", "VM_NOT_SUITABLE"]
    assert pool.uuid(ref) in details[3] and what in details[3]
    assert "xscontainer-monitor" not in pool.session.xenapi.VM.get_other_config(ref)


@pytest.mark.parametrize("target,what", [("dom0", "control domain"), ("template", "template")])
def test_no_config_drive_for_a_template_or_dom0(pool, target, what):
    api = pool.session.xenapi
    ref = _control_domain(pool) if target == "dom0" else _template(pool)
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    vdis_before = set(api.VDI.get_all())
    details = pool.failure("create_config_drive", {
        "vmuuid": pool.uuid(ref), "sruuid": api.SR.get_uuid(sr),
        "configuration": "#cloud-config\nhostname: x\n"})
    assert details[:3] == ["XENAPI_PLUGIN_FAILURE", "create_config_drive", "VM_NOT_SUITABLE"]
    assert what in details[3]
    assert set(api.VDI.get_all()) == vdis_before


def test_a_call_that_fits_here_but_not_once_forwarded_is_refused_with_a_code(pool):
    from xscontainer import plugincall
    from xscontainer.plugin import validate
    uuid = pool.uuid(pool.running)
    container = "a" * validate.MAX_ARGUMENT_BYTES
    base = plugincall.plugin_call_bytes("get_logs", pool.session.handle,
                                      {"vmuuid": uuid, "container": container, "tail": "1"})
    args = {"vmuuid": uuid, "container": container,
            "tail": "1" * (1 + plugincall.MAX_CALL_BYTES - base)}
    assert plugincall.plugin_call_bytes("get_logs", pool.session.handle, args) == \
        plugincall.MAX_CALL_BYTES  # reaches the plugin on the first host...
    details = pool.failure("get_logs", args)  # ...which cannot forward it: E2BIG on the second
    assert details[:3] == ["XENAPI_PLUGIN_FAILURE", "get_logs", "ARGUMENT_TOO_LARGE"]
