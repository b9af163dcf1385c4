"""``stats --watch`` (pure rendering, and the loop driven with a fake pool and clock)."""

import datetime
import io

from xscontainer.cli import commands, watch
from xscontainer.cli.model import VmInfo

NAN = float("nan")
WHEN = datetime.datetime(2026, 12, 2, 8, 0, 0)


def vm(name, uuid, state="Running", managed=True):
    return VmInfo("OpaqueRef:" + uuid, uuid, name, state, "OpaqueRef:h", "h", "host1",
                  {"xscontainer-monitor": "True"} if managed else {})


def test_sparkline_scales_to_its_maximum_and_leaves_unknown_blank():
    assert watch.sparkline([0.0, 100.0, None], 3) == "\u2581\u2588 "
    assert watch.sparkline([0.5], 4) == "   \u2585"  # below 1 %: scaled to 1, not blown up
    assert watch.sparkline([0.0, 7.0], 2, watch.ASCII_BLOCKS) == "_@"


def test_vm_cpu_is_the_mean_of_its_vcpus():
    assert watch.vm_cpu_percent({"cpu0": 0.5, "cpu1": 0.25, "container_x_cpu": 90.0}) == 37.5
    assert watch.vm_cpu_percent({"cpu0": NAN}) is None
    assert watch.wanted("cpu3") and watch.wanted("container_web_cpu") and not watch.wanted("memory")


def test_history_follows_containers_and_forgets_gone_ones():
    history = watch.History(size=3)
    a = vm("a", "u1")
    for cpu in (1.0, 2.0, 3.0, 4.0):
        rows = history.update([(a, {"container_web_cpu": cpu, "cpu0": 0.1})])
    assert rows[0].history == (2.0, 3.0, 4.0) and rows[0].vm_cpu == 10.0
    assert history.update([(a, {"container_web_cpu": NAN})]) == []  # gone: rrdd shows it unknown
    assert history.update([(a, {"container_web_cpu": 5.0})])[0].history == (5.0,)


def test_not_a_terminal_prints_a_plain_table_each_reading():
    out = io.StringIO()
    slept = []
    readings = iter([[(vm("a", "u1"), {"container_web_cpu": 1.5, "container_web_memory": 2048.0})],
                     [(vm("a", "u1"), {"container_web_cpu": 2.5, "container_web_memory": 2048.0})]])
    watch.watch_loop(lambda: next(readings), out, False, None, slept.append, lambda: WHEN, count=2)
    text = out.getvalue()
    assert slept == [5.0] and "\x1b" not in text
    blocks = text.split("\n\n")
    assert len(blocks) == 2 and blocks[0].startswith("2026-12-02 08:00:00 UTC\nVM")
    assert blocks[1].splitlines()[2].split()[:5] == ["a", "-", "web", "2.50%", "2.0KiB"]


def test_a_terminal_gets_a_redrawn_screen_with_sparklines():
    class Terminal(io.StringIO):
        encoding = "utf-8"

    out = Terminal()
    readings = iter([[(vm("a", "u1"), {"container_web_cpu": cpu})] for cpu in (10.0, 40.0)])
    watch.watch_loop(lambda: next(readings), out, True, 100, lambda s: None, lambda: WHEN, count=2)
    frames = out.getvalue().split(watch.CLEAR)[1:]
    assert len(frames) == 2 and "08:00:00 UTC" in frames[1]
    assert frames[1].rstrip().endswith("\u2583\u2588")  # 10 then 40, scaled to 40


class FakeClient:
    def __init__(self, vms, values):
        self._vms = vms
        self._values = values

    def vms(self):
        return self._vms

    def data_source_values(self, ref, wanted):
        return {k: v for k, v in self._values[ref].items() if wanted(k)}


def test_the_command_watches_every_managed_running_vm():
    a, b, c = vm("a", "u1"), vm("b", "u2", state="Halted"), vm("c", "u3", managed=False)
    client = FakeClient([a, b, c], {a.ref: {"container_web_cpu": 3.0, "memory": 1.0, "cpu0": 0.5}})
    out, err = io.StringIO(), io.StringIO()
    ctx = commands.Context(client=client, out=out, err=err, now=lambda: WHEN)
    assert commands.cmd_stats_watch(ctx, None, count=1, sleep=lambda s: None) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[2].split()[:4] == ["a", "50.00%", "web", "3.00%"]
