"""The reporter against the simulator's rrdd (in this process, on a real socket) and engines
faked at the DockerClient interface: what rrdd reads is what the engines said."""

import math
import threading
import os

import pytest

from waiting import wait_for

from xscontainer.errors import ConnectionFailure
from xscontainer.metrics.reporter import Reporter, ReporterOptions
from xscontainer.metrics.rrddclient import RrddClient
from xscontainer.sim.rrdd import HostRrdd
from xscontainer.sim.rrddserver import RrddHub

VM1 = "0b1d2c3e-0000-4000-8000-000000000001"
VM2 = "0b1d2c3e-0000-4000-8000-000000000002"


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def stats_doc(total, system, memory=100, rx=0, precpu=None):
    return {"cpu_stats": {"cpu_usage": {"total_usage": total}, "system_cpu_usage": system, "online_cpus": 1},
            "precpu_stats": precpu or {}, "memory_stats": {"usage": memory, "limit": 1000},
            "networks": {"eth0": {"rx_bytes": rx, "tx_bytes": 0}}, "blkio_stats": {}}


class Engine:
    """name -> stats document; the containers listed are the running ones."""

    def __init__(self, containers):
        self.containers_by_name = containers
        self.calls = []
        self.down = False

    def containers(self, all=True):
        if self.down:
            raise ConnectionFailure("VM down")
        return [{"Id": "%064x" % abs(hash(n)), "Names": ["/" + n]} for n in self.containers_by_name]

    def stats(self, ident, one_shot=False):
        """A document, or the next of a list of them (the last one repeats)."""
        self.calls.append(one_shot)
        for name, doc in self.containers_by_name.items():
            if ident == "%064x" % abs(hash(name)):
                return doc.pop(0) if isinstance(doc, list) and len(doc) > 1 else (doc[0] if isinstance(doc, list) else doc)
        raise ConnectionFailure("no such container")


@pytest.fixture
def rig(tmp_path):
    clock = Clock(1000.0)
    hub = RrddHub(api=None)
    rrdd = hub.hosts["h1"] = HostRrdd("h1", str(tmp_path / "metrics"), lambda: {VM1: 1 << 30, VM2: 1 << 30}, clock)
    os.makedirs(str(tmp_path / "metrics"))
    hub.listen("h1", str(tmp_path / "rrdd.sock"))
    hub.start()  # its reading thread waits 5 s of this fake clock: never, readings are ours
    engines = {VM1: Engine({"burner": stats_doc(2000, 20000, precpu={"cpu_usage": {"total_usage": 1000},
                                                                     "system_cpu_usage": 10000})}),
               VM2: Engine({})}
    reporter = Reporter(lambda: list(engines), engines.__getitem__, RrddClient(str(tmp_path / "rrdd.sock")),
                        ReporterOptions(), wallclock=Clock(50.0))
    yield clock, rrdd, engines, reporter
    reporter.stop()
    reporter.join()
    hub.stop()


def reading(clock, rrdd, reporter, wallclock_step=5.0):
    """One reporter cycle just before rrdd's reading, then that reading."""
    clock.now += rrdd.next_reading() - reporter.options.lead
    reporter._wallclock.now += wallclock_step
    published = reporter.published
    reporter.cycle()
    assert reporter.published == published + 1
    clock.now += reporter.options.lead
    rrdd.read_all()


def ours(rrdd, vm):
    result = {}
    for source in rrdd.vm_data_sources(vm):
        if source["name_label"] != "memory":
            value = rrdd.query_vm_ds(vm, source["name_label"])
            result[source["name_label"]] = None if math.isnan(value) else value
    return result


def test_a_running_container_appears_at_the_first_reading_with_cpu(rig):
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    assert ours(rrdd, VM1) == {"container_burner_cpu": 10.0, "container_burner_memory": 100,
                               "container_burner_memory_limit": 1000, "container_burner_net_rx": None,
                               "container_burner_net_tx": None, "container_burner_blk_read": None,
                               "container_burner_blk_write": None}
    assert ours(rrdd, VM2) == {}
    assert engines[VM1].calls == [True]  # the engine sent its previous sample: one read


def test_a_new_container_without_the_engines_previous_sample_is_read_twice(rig):
    clock, rrdd, engines, reporter = rig
    engines[VM2].containers_by_name["fresh"] = [stats_doc(1000, 10000), stats_doc(1500, 12000)]
    reading(clock, rrdd, reporter)
    assert ours(rrdd, VM2)["container_fresh_cpu"] == 25.0  # 500 / 2000 * 1 cpu * 100
    assert engines[VM2].calls == [True, True]


def test_later_readings_use_one_shot_samples_and_our_previous_one(rig):
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    engines[VM1].containers_by_name["burner"] = stats_doc(2000 + 25000, 20000 + 50000, rx=5000)
    reading(clock, rrdd, reporter)
    values = ours(rrdd, VM1)
    assert values["container_burner_cpu"] == 50.0  # 25000 / 50000 * 1 cpu * 100
    assert values["container_burner_net_rx"] == 1000.0  # 5000 bytes in 5 s
    assert engines[VM1].calls == [True, True]


def test_a_container_that_goes_is_no_longer_published(rig):
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    del engines[VM1].containers_by_name["burner"]
    reading(clock, rrdd, reporter)
    assert set(ours(rrdd, VM1).values()) == {None}  # rrdd keeps listing them, unknown


def test_an_unreachable_vm_is_left_out_and_the_others_published(rig):
    clock, rrdd, engines, reporter = rig
    engines[VM2].containers_by_name["web"] = stats_doc(1, 10, precpu={"cpu_usage": {"total_usage": 0},
                                                                      "system_cpu_usage": 5})
    engines[VM1].down = True
    reading(clock, rrdd, reporter)
    assert ours(rrdd, VM1) == {}
    assert ours(rrdd, VM2)["container_web_memory"] == 100


def test_no_reading_soon_means_no_write(rig):
    clock, rrdd, engines, reporter = rig
    clock.now += 5.0 - rrdd.next_reading()  # just after a reading: the next is 5 s away
    assert reporter.cycle() == pytest.approx(5.0 - reporter.options.lead)
    assert reporter.published == 0


def test_more_containers_than_the_file_holds_means_a_new_file_registered_again(rig):
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    for index in range(40):
        engines[VM2].containers_by_name["c%d" % index] = stats_doc(1, 10, memory=index)
    reading(clock, rrdd, reporter)
    assert ours(rrdd, VM2)["container_c39_memory"] == 39


def test_stop_deregisters_and_removes_the_files(rig):
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    uids = ["xscontainer", "xscontainer-vm-" + VM1, "xscontainer-vm-" + VM2]
    assert all(os.path.exists(rrdd.get_path(uid)) and rrdd.next_reading(uid) > 0 for uid in uids)
    reporter.stop()
    assert not any(os.path.exists(rrdd.get_path(uid)) for uid in uids)
    assert [rrdd.next_reading(uid) for uid in uids] == [-1.0] * 3
    assert os.listdir(os.path.dirname(rrdd.get_path("xscontainer"))) == []


def test_two_vms_may_run_containers_of_the_same_name(rig):
    clock, rrdd, engines, reporter = rig
    engines[VM2].containers_by_name["burner"] = stats_doc(1, 10, memory=7)
    reading(clock, rrdd, reporter)
    assert ours(rrdd, VM1)["container_burner_memory"] == 100
    assert ours(rrdd, VM2)["container_burner_memory"] == 7


def test_a_vm_no_longer_watched_loses_its_plugin(rig):
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    del engines[VM1]
    reading(clock, rrdd, reporter)
    assert rrdd.next_reading("xscontainer-vm-" + VM1) == -1.0
    assert not os.path.exists(rrdd.get_path("xscontainer-vm-" + VM1))


def test_an_rrdd_that_forgot_us_gets_every_plugin_registered_again(rig):
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    for uid in ("xscontainer", "xscontainer-vm-" + VM1, "xscontainer-vm-" + VM2):
        rrdd.deregister(uid)  # as after a restart of xcp-rrdd
    engines[VM1].containers_by_name["burner"] = stats_doc(2000 + 25000, 20000 + 50000)
    reading(clock, rrdd, reporter)
    assert ours(rrdd, VM1)["container_burner_cpu"] == 50.0


def test_a_registration_left_by_a_killed_monitor_is_replaced(rig):
    clock, rrdd, engines, reporter = rig
    from xscontainer.metrics.protocol import encode_payload
    for uid in ("xscontainer", "xscontainer-vm-" + VM1):  # files and registrations of a SIGKILLed monitor
        with open(rrdd.get_path(uid), "wb") as handle:
            handle.write(encode_payload(1.0, []).ljust(4096, b"\0"))
        rrdd.register(uid, "Five_Seconds", "V2")
    reading(clock, rrdd, reporter)
    assert ours(rrdd, VM1)["container_burner_cpu"] == 10.0


class MeetingEngine(Engine):
    """Each stats read waits until every container's read has begun: read one after another,
    the first one gives up (the barrier breaks) and the VM is not sampled."""

    def __init__(self, containers):
        super().__init__(containers)
        self.barrier = threading.Barrier(len(containers), timeout=1.5)

    def stats(self, ident, one_shot=False):
        self.barrier.wait()
        return super().stats(ident, one_shot)


def test_a_vms_containers_are_read_at_once_not_one_after_another(rig):
    clock, rrdd, engines, reporter = rig
    previous = {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0}
    engines[VM2] = MeetingEngine({"c%d" % i: stats_doc(100, 1000, precpu=previous) for i in range(4)})
    reading(clock, rrdd, reporter)
    assert {name for name in ours(rrdd, VM2) if name.endswith("_cpu")} == {
        "container_c%d_cpu" % i for i in range(4)}


def test_stop_reads_no_further_vm(tmp_path):
    # Stopping with a sampling pass queued: at 1,000 VMs the queued VMs, read after the stop
    # over connections the monitor had just closed, reconnected one by one and the monitor took
    # over a minute to exit.
    gate = threading.Event()
    asked = []

    class Stuck(Engine):
        def containers(self, all=True):
            gate.wait(30)
            return []

    engine = Stuck({})

    def client_for(vm):
        asked.append(vm)
        return engine

    vms = ["0b1d2c3e-0000-4000-8000-%012d" % index for index in range(40)]
    reporter = Reporter(lambda: vms, client_for, RrddClient(str(tmp_path / "rrdd.sock")), ReporterOptions(workers=2))
    reporter.collect(0.0)  # queues every VM, returns at once
    try:
        wait_for(lambda: len(asked) == 2, what="both workers inside a VM's read")
        reporter.stop()
    finally:
        gate.set()
        reporter.join()
    assert len(asked) == 2


def test_stop_ends_a_sampling_pass_that_waits_for_a_stuck_vm(tmp_path):
    # The pass waits for the VMs' reads until shortly before rrdd's reading (about 3 s): a stop
    # meanwhile must not wait for that too (the monitor must stop within 5 s at 1,000 VMs).
    gate = threading.Event()
    inside = threading.Event()

    class Stuck(Engine):
        def containers(self, all=True):
            inside.set()
            gate.wait(60)
            return []

    engine = Stuck({})
    reporter = Reporter(lambda: [VM1], lambda vm: engine, RrddClient(str(tmp_path / "rrdd.sock")))
    sampling = threading.Thread(target=reporter.collect, args=(60.0,))
    sampling.start()
    try:
        assert inside.wait(30)
        reporter.stop()
        sampling.join(20)
        assert not sampling.is_alive()
    finally:
        gate.set()
        sampling.join(60)
        reporter.join()


def test_a_stop_signal_has_the_reporters_thread_deregister_its_plugins(rig):
    # The monitor signals the stop, then closes its connections (seconds at 1,000 VMs) while the
    # reporter's thread deregisters its thousand plugins; stop() then only joins.
    clock, rrdd, engines, reporter = rig
    reading(clock, rrdd, reporter)
    uids = ["xscontainer", "xscontainer-vm-" + VM1, "xscontainer-vm-" + VM2]
    assert all(rrdd.next_reading(uid) > 0 for uid in uids)
    clock.now += 5.0 - rrdd.next_reading()  # the thread's first cycle finds no reading soon
    reporter.start()
    reporter.signal_stop()
    wait_for(lambda: [rrdd.next_reading(uid) for uid in uids] == [-1.0] * 3, what="the plugins deregistered")
    assert not any(os.path.exists(rrdd.get_path(uid)) for uid in uids)


def test_the_watchers_container_list_spares_the_engine_a_list_every_reading(rig):
    # The monitor's watcher keeps each VM's containers current from the engine's events: the
    # reporter reads only their stats (at 1,000 VMs, 200 fewer lists a second for the engines).
    clock, rrdd, engines, reporter = rig
    lists = []
    burner_id = "%064x" % abs(hash("burner"))

    class Counting(Engine):
        def containers(self, all=True):
            lists.append(all)
            return Engine.containers(self, all)

    engines[VM1] = Counting(engines[VM1].containers_by_name)
    reporter = Reporter(lambda: [VM1], engines.__getitem__, RrddClient(reporter._rrdd.socket_path), ReporterOptions(),
                        wallclock=Clock(50.0), running_for=lambda vm: [(burner_id, "/burner")])
    try:
        reading(clock, rrdd, reporter)
        assert ours(rrdd, VM1)["container_burner_memory"] == 100
        assert lists == []
    finally:
        reporter.stop()
        reporter.join()


def test_stop_deregisters_every_plugin_of_many_vms(rig):
    clock, rrdd, engines, reporter = rig
    for index in range(60):
        engines["0b1d2c3e-0000-4000-8000-1%011d" % index] = Engine({})
    reading(clock, rrdd, reporter)
    uids = ["xscontainer"] + ["xscontainer-vm-" + vm for vm in engines]
    assert all(rrdd.next_reading(uid) > 0 for uid in uids)
    reporter.stop()
    assert [uid for uid in uids if rrdd.next_reading(uid) != -1.0] == []


class HangingDeregistration:
    """rrdd that answers everything but deregistrations, which hang once ``hang`` is set and
    until ``release`` is."""

    def __init__(self, rrdd):
        self._rrdd = rrdd
        self.hang = threading.Event()
        self.release = threading.Event()
        self.deregistrations = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._rrdd, name)

    def deregister(self, uid):
        if self.hang.is_set():
            with self._lock:
                self.deregistrations += 1
            self.release.wait(60)
        return self._rrdd.deregister(uid)


def test_a_hung_rrdd_delays_the_stop_by_the_drop_deadline_not_by_every_plugin(rig, tmp_path):
    # Deregistrations run in a thread pool whose threads the interpreter joins at exit: with
    # every one of a thousand queued, a hung rrdd held the exit for its time-out times 1,000 / 8.
    clock, rrdd, engines, _ = rig
    for index in range(40):
        engines["0b1d2c3e-0000-4000-8000-2%011d" % index] = Engine({})
    hanging = HangingDeregistration(RrddClient(str(tmp_path / "rrdd.sock")))
    options = ReporterOptions(workers=4, drop_deadline=0.5)
    reporter = Reporter(lambda: list(engines), engines.__getitem__, hanging, options, wallclock=Clock(50.0))
    reading(clock, rrdd, reporter)
    hanging.hang.set()
    stopper = threading.Thread(target=reporter.stop)
    try:
        stopper.start()
        wait_for(lambda: not stopper.is_alive(), timeout=30, what="the stop, rrdd hanging")
        assert hanging.deregistrations <= options.workers  # the rest were never started
    finally:
        hanging.release.set()
        stopper.join(60)
        reporter.join()
