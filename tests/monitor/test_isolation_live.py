"""A connection made for VM A only ever reaches VM A's engine, whatever A's guest reports.

The shared testbed's VMs have host keys pinned by a dom0-side act (the testbed stands for the
administrator who verified them). An attacker VM on host 1 makes its guest metrics report
another VM's address, or the address of an impostor sshd that authorizes the pool key: the
monitor must not reach that engine for the attacker (status says why, no docker_ps, a lifecycle
call fails without touching anything), and the victim keeps being monitored.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

from waiting import wait_for
from xscontainer.errors import XSContainerError
from xscontainer.monitor.service import Monitor, MonitorOptions
from xscontainer.hostkeys import fingerprint
from xscontainer.vmsettings import HOSTKEY_FINGERPRINT_KEY, HOSTKEY_KEY, HOSTKEY_VM_KEY
from xscontainer.xapi.session import close_session, open_local_session

from tests.monitor.test_monitor_live import engine_view

MONITOR_KEY = "xscontainer-monitor"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class Bed(object):
    def __init__(self, testbed, control_dir):
        self.testbed = testbed
        self.info = testbed.info()
        self.socket = self.info["unix_socket"]
        self.host1 = self.info["hosts"][0]
        self.session = open_local_session(self.socket)
        self.api = self.session.xenapi
        options = MonitorOptions(warn_after=120.0, control_dir=control_dir, poll_timeout=1.0,
                                 backoff_initial=0.2, backoff_maximum=1.0)
        self.monitor = Monitor(lambda: open_local_session(self.socket), self.host1["inventory"], options)
        self.thread = threading.Thread(target=self.monitor.run, name="isolation-monitor")
        self.thread.start()
        wait_for(self.monitor.host.connected.is_set, what="the monitor to read xapi")

    def victim(self):
        record = [v for v in self.info["vms"] if v["host_uuid"] == self.host1["uuid"]][0]
        return record, self.api.VM.get_by_uuid(record["uuid"])

    def other_config(self, ref):
        return self.api.VM.get_other_config(ref)

    def set_monitor(self, ref, value):
        self.api.VM.remove_from_other_config(ref, MONITOR_KEY)
        if value is not None:
            self.api.VM.add_to_other_config(ref, MONITOR_KEY, value)

    def status(self, uuid):
        return self.monitor.handle_control("status", {"vm": uuid}) or {}

    def attacker(self, address):
        """A new VM on host 1 whose guest reports ``address``."""
        ref = self.api.VM.create({"name_label": "attacker-%d" % random.randint(0, 1 << 30)})
        self.api.VM.start_on(ref, self.api.host.get_by_uuid(self.host1["uuid"]), False, False)
        self.api.sim.set_guest_networks(ref, {"0/ip": address, "0/ipv4/0": address})
        return self.api.VM.get_uuid(ref), ref

    def remove(self, ref):
        self.set_monitor(ref, None)
        self.api.VM.hard_shutdown(ref)
        self.api.VM.destroy(ref)

    def close(self):
        self.monitor.stop()
        self.thread.join(30)
        close_session(self.session)


@pytest.fixture(scope="module")
def bed(testbed, tmp_path_factory):
    value = Bed(testbed, str(tmp_path_factory.mktemp("ctl")))
    try:
        yield value
    finally:
        value.close()


@pytest.fixture
def victim(bed):
    record, ref = bed.victim()
    yield record, ref
    bed.set_monitor(ref, None)
    wait_for(lambda: "docker_ps" not in bed.other_config(ref), what="the victim's keys to go")


def refused_for(bed, uuid, codes):
    status = bed.status(uuid)
    return status.get("last_error_code") in codes and status.get("state") != "monitored"


def assert_attacker_gets_nothing(bed, uuid, ref, victim_record, codes, copied=False):
    wait_for(lambda: refused_for(bed, uuid, codes), what="the attacker's VM to be refused with %s" % (codes,))
    status = bed.status(uuid)
    assert status["state"] == "failing" and status["last_error"], status  # says why
    config = bed.other_config(ref)
    assert "docker_ps" not in config and "docker_info" not in config
    if not copied:
        assert config.get(HOSTKEY_KEY) != victim_record["ssh_host_key"]
    before = engine_view(bed.testbed, victim_record["name_label"])
    assert before["web"] == "Up"
    with pytest.raises(XSContainerError):
        bed.monitor.handle_control("pause", {"vm": uuid, "container": "web"})
    assert engine_view(bed.testbed, victim_record["name_label"]) == before  # untouched


def test_vm_reporting_a_monitored_vms_address_reaches_nothing(bed, victim):
    record, ref = victim
    bed.set_monitor(ref, "True")
    wait_for(lambda: "docker_ps" in bed.other_config(ref), what="the victim reflected")
    uuid, attacker = bed.attacker(record["ip"])
    try:
        bed.set_monitor(attacker, "True")
        assert_attacker_gets_nothing(bed, uuid, attacker, record, ("SSH_HOSTKEY_UNVERIFIED",))
        assert bed.status(record["uuid"])["state"] == "monitored"
        assert "docker_ps" in bed.other_config(ref)
    finally:
        bed.remove(attacker)


def test_attacker_acting_first_reaches_nothing_and_the_victim_is_monitored_after(bed, victim):
    record, ref = victim
    assert MONITOR_KEY not in bed.other_config(ref)
    uuid, attacker = bed.attacker(record["ip"])
    try:
        bed.set_monitor(attacker, "True")
        assert_attacker_gets_nothing(bed, uuid, attacker, record, ("SSH_HOSTKEY_UNVERIFIED",))
        bed.set_monitor(ref, "True")
        wait_for(lambda: "docker_ps" in bed.other_config(ref), what="the victim reflected")
        assert bed.status(record["uuid"])["state"] == "monitored"
        assert "docker_ps" not in bed.other_config(attacker)
    finally:
        bed.remove(attacker)


def test_a_managed_vm_with_a_pinned_key_reporting_another_address_is_refused(bed, victim):
    """The attacker is itself a managed VM whose own key is pinned: the victim's key is not it."""
    record, ref = victim
    bed.set_monitor(ref, "True")
    wait_for(lambda: "docker_ps" in bed.other_config(ref), what="the victim reflected")
    own = bed.testbed.info()["vms"][-1]["ssh_host_key"]
    assert own != record["ssh_host_key"]
    uuid, attacker = bed.attacker(record["ip"])
    try:
        bed.api.VM.add_to_other_config(attacker, HOSTKEY_KEY, own)
        bed.set_monitor(attacker, "True")
        assert_attacker_gets_nothing(bed, uuid, attacker, record, ("SSH_HOSTKEY_MISMATCH",))
        assert bed.other_config(attacker)[HOSTKEY_KEY] == own
        assert bed.status(record["uuid"])["state"] == "monitored"
    finally:
        bed.remove(attacker)


class Impostor(object):
    """An OpenSSH sshd on a loopback address, port 22, authorizing the pool key, forwarding to
    the victim's engine socket (so an attacker who reached it would see real containers)."""

    def __init__(self, address, pool_line):
        self.dir = tempfile.mkdtemp(prefix="xsc-impostor-")
        os.makedirs("/run/sshd", exist_ok=True)
        key = os.path.join(self.dir, "host_ed25519")
        subprocess.check_call(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        authorized = os.path.join(self.dir, "authorized_keys")
        with open(authorized, "w") as handle:
            handle.write(pool_line + "\n")
        self.log = os.path.join(self.dir, "sshd.log")
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as handle:
            handle.write("\n".join([
                "ListenAddress %s:22" % address, "HostKey %s" % key, "PidFile %s/sshd.pid" % self.dir,
                "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "AuthorizedKeysFile %s" % authorized, "LogLevel VERBOSE", "UseDNS no", ""]))
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stderr=open(self.log, "a"))
        wait_for(lambda: subprocess.call(["ss", "-ltnH", "src", address], stdout=subprocess.DEVNULL) == 0
                 and ":22" in subprocess.check_output(["ss", "-ltnH", "src", address], universal_newlines=True),
                 what="the impostor sshd to listen")

    def log_text(self):
        with open(self.log) as handle:
            return handle.read()

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_impostor_sshd_with_the_pool_key_is_not_reached(bed, victim):
    record, _ = victim
    address = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(1, 254), random.randint(2, 254))
    impostor = Impostor(address, bed.testbed.pool_keypair().public_line)
    uuid, attacker = bed.attacker(address)
    try:
        bed.set_monitor(attacker, "True")
        assert_attacker_gets_nothing(bed, uuid, attacker, record, ("SSH_HOSTKEY_UNVERIFIED",))
        assert "Accepted publickey" not in impostor.log_text()  # dom0 never logged in there
    finally:
        bed.remove(attacker)
        impostor.close()


# -- how keys come to be trusted: the upgrade, clones, the administrator's word -------------------

def run_cli(bed, *args):
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=bed.socket)
    proc = subprocess.run([sys.executable, "-m", "xscontainer.cli.main"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def repinned(bed, victim):
    """The victim, with its pin put back as the testbed made it afterwards."""
    record, ref = victim
    yield record, ref
    for key in (HOSTKEY_KEY, HOSTKEY_VM_KEY, HOSTKEY_FINGERPRINT_KEY):
        bed.api.VM.remove_from_other_config(ref, key)
    bed.api.VM.add_to_other_config(ref, HOSTKEY_KEY, record["ssh_host_key"])
    bed.api.VM.add_to_other_config(ref, HOSTKEY_VM_KEY, record["uuid"])


def test_a_pin_of_the_original_product_keeps_working_and_gets_bound(bed, repinned):
    record, ref = repinned
    bed.api.VM.remove_from_other_config(ref, HOSTKEY_VM_KEY)  # as the original wrote it: the key only
    bed.set_monitor(ref, "True")
    wait_for(lambda: "docker_ps" in bed.other_config(ref), what="the upgraded VM reflected")
    assert bed.other_config(ref).get(HOSTKEY_VM_KEY) == record["uuid"]


def test_a_clones_copy_of_the_pin_vouches_for_nothing(bed, victim):
    """VM.clone copies other_config (xapi_vm_clone.ml): the clone carries its source's pin."""
    record, ref = victim
    bed.set_monitor(ref, "True")
    wait_for(lambda: "docker_ps" in bed.other_config(ref), what="the victim reflected")
    uuid, clone = bed.attacker(record["ip"])
    try:
        bed.api.VM.add_to_other_config(clone, HOSTKEY_KEY, record["ssh_host_key"])
        bed.api.VM.add_to_other_config(clone, HOSTKEY_VM_KEY, record["uuid"])
        bed.set_monitor(clone, "True")
        assert_attacker_gets_nothing(bed, uuid, clone, record, ("SSH_HOSTKEY_UNVERIFIED",), copied=True)
        assert record["uuid"] in bed.status(uuid)["last_error"]  # says whose copy it is
        assert bed.status(record["uuid"])["state"] == "monitored"
    finally:
        bed.remove(clone)


def test_register_with_the_fingerprint_lets_an_unpinned_vm_be_monitored(bed, repinned):
    record, ref = repinned
    for key in (HOSTKEY_KEY, HOSTKEY_VM_KEY):
        bed.api.VM.remove_from_other_config(ref, key)
    bed.set_monitor(ref, "True")
    wait_for(lambda: refused_for(bed, record["uuid"], ("SSH_HOSTKEY_UNVERIFIED",)), what="the VM refused")
    shown = fingerprint(record["ssh_host_key"])
    assert shown in bed.status(record["uuid"])["last_error"]  # what the administrator checks
    assert "docker_ps" not in bed.other_config(ref)
    code, out, err = run_cli(bed, "register", record["uuid"], "--host-key-fingerprint", shown)
    assert code == 0, (out, err)
    wait_for(lambda: "docker_ps" in bed.other_config(ref), what="the VM reflected once its key is known")
    config = bed.other_config(ref)
    assert config[HOSTKEY_KEY] == record["ssh_host_key"] and config[HOSTKEY_VM_KEY] == record["uuid"]
    assert HOSTKEY_FINGERPRINT_KEY not in config


def test_register_with_another_vms_fingerprint_is_refused(bed, victim):
    """An administrator fooled into registering the victim's fingerprint for the attacker: the
    key vouches for the victim already, so it cannot vouch for the attacker too."""
    record, ref = victim
    uuid, attacker = bed.attacker(record["ip"])
    try:
        code, out, err = run_cli(bed, "register", uuid, "--host-key-fingerprint", fingerprint(record["ssh_host_key"]))
        assert code == 0, (out, err)
        assert_attacker_gets_nothing(bed, uuid, attacker, record, ("SSH_HOSTKEY_DUPLICATE",))
        assert HOSTKEY_KEY not in bed.other_config(attacker)
    finally:
        bed.remove(attacker)


def test_register_without_a_pinned_key_says_it_will_not_connect(bed, victim):
    record, ref = victim
    uuid, unpinned = bed.attacker(record["ip"])
    try:
        code, out, err = run_cli(bed, "register", uuid)
        assert code == 0 and "registered" in out, (out, err)
        assert "no SSH host key is pinned" in err and "--host-key-fingerprint" in err
        code, out, err = run_cli(bed, "register", record["uuid"])
        assert code == 0 and "no SSH host key" not in err, (out, err)
    finally:
        bed.remove(unpinned)
