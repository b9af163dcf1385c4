"""``stats --watch``: the recorded per-container metrics of every managed VM, redrawn every 5 s,
like ``docker stats`` but pool-wide, each container with a sparkline of its recent CPU and beside
its VM's own CPU (xapi's ``cpuN`` data sources). On a terminal the screen is redrawn; otherwise
a plain table is printed at each reading (no escapes, no sparklines).

Rendering and history are pure; ``watch_loop`` takes the reader, the clock's sleep and the
output, so it is driven in tests without a terminal or a pool.
"""

import datetime
import math
import re
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Mapping, NamedTuple, Optional, Sequence, TextIO, Tuple

from xscontainer.cli import layout, recorded
from xscontainer.cli.layout import Column

BLOCKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
ASCII_BLOCKS = "_.-=+*#@"
HISTORY = 36  # readings kept per container: 3 minutes at rrdd's 5 s
VM_CPU = re.compile(r"cpu[0-9]+\Z")
CLEAR = "\x1b[H\x1b[2J"


def wanted(name: str) -> bool:
    return recorded.wanted(name) or bool(VM_CPU.match(name))


def vm_cpu_percent(values: Mapping[str, Any]) -> Optional[float]:
    """The VM's own CPU: the mean of its vCPUs' fractions (rrdd's cpuN), as a percentage."""
    known = [float(v) for k, v in values.items() if VM_CPU.match(k) and isinstance(v, (int, float))
             and math.isfinite(v)]
    return 100.0 * sum(known) / len(known) if known else None


def sparkline(points: Sequence[Optional[float]], width: int, blocks: str = BLOCKS) -> str:
    """The last ``width`` points, scaled to their own maximum (at least 1); unknown ones blank."""
    points = list(points)[-width:]
    top = max([p for p in points if p is not None] + [1.0])
    cells = []
    for point in points:
        if point is None:
            cells.append(" ")
        else:
            cells.append(blocks[min(len(blocks) - 1, int(round(point / top * (len(blocks) - 1))))])
    return "".join(cells).rjust(width)


class Row(NamedTuple):
    vm: str
    vm_cpu: Optional[float]
    record: Dict[str, Any]       # recorded.records() item
    history: Tuple[Optional[float], ...]


class History:
    """CPU points per (VM uuid, container): a container that went is forgotten."""

    def __init__(self, size: int = HISTORY) -> None:
        self._size = size
        self._points = {}  # type: Dict[Tuple[str, str], Deque[Optional[float]]]

    def update(self, readings: Sequence[Tuple[Any, Mapping[str, Any]]]) -> List[Row]:
        """``readings``: (VmInfo, data-source values) per VM; the rows to show, in order."""
        rows = []
        seen = set()
        for vm, values in readings:
            vm_cpu = vm_cpu_percent(values)
            for record in recorded.records(values):
                key = (vm.uuid, record["name"])
                seen.add(key)
                points = self._points.setdefault(key, deque(maxlen=self._size))
                points.append(record.get("cpu_percent"))
                rows.append(Row(vm.name_label, vm_cpu, record, tuple(points)))
        for key in [k for k in self._points if k not in seen]:
            del self._points[key]
        return rows


COLUMNS = (Column("VM", shrink=True, min_width=8), Column("VM CPU", right=True),
           Column("CONTAINER", shrink=True, min_width=8), Column("CPU %", right=True), Column("MEM"),
           Column("NET RX/TX PER S"), Column("BLOCK R/W PER S"))


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else "%.2f%%" % value


def _cells(row: Row) -> List[str]:
    r = row.record
    return [row.vm, _percent(row.vm_cpu), r["name"], _percent(r.get("cpu_percent")),
            layout.format_bytes(None if r.get("memory_usage") is None else int(r["memory_usage"])),
            recorded.pair(r.get("network_rx_per_s"), r.get("network_tx_per_s")),
            recorded.pair(r.get("block_read_per_s"), r.get("block_write_per_s"))]


def plain_table(rows: Sequence[Row], width: Optional[int]) -> str:
    return layout.render_table(COLUMNS, [_cells(r) for r in rows], width)


def screen(rows: Sequence[Row], width: int, when: datetime.datetime, blocks: str = BLOCKS) -> str:
    """One terminal frame: a title, then the table with each container's CPU history."""
    spark = max(8, min(HISTORY, width // 4))
    table = layout.render_table(COLUMNS + (Column("CPU HISTORY"),),
                                [_cells(r) + [sparkline(r.history, spark, blocks)] for r in rows], width)
    title = "xscontainer stats --watch   %s UTC   (every 5 s; Ctrl-C quits)\n\n" % when.strftime("%H:%M:%S")
    return CLEAR + title + table


def watch_loop(read: Callable[[], Sequence[Tuple[Any, Mapping[str, Any]]]], out: TextIO, terminal: bool,
               width: Optional[int], sleep: Callable[[float], None], now: Callable[[], datetime.datetime],
               count: Optional[int] = None, interval: float = 5.0) -> None:
    """Read and draw every ``interval`` seconds, ``count`` times (None: until interrupted)."""
    history = History()
    blocks = BLOCKS if _can_encode(out, BLOCKS) else ASCII_BLOCKS
    drawn = 0
    while count is None or drawn < count:
        if drawn:
            sleep(interval)
        rows = history.update(read())
        if terminal:
            out.write(screen(rows, width or 80, now(), blocks))
        else:
            out.write("%s%s UTC\n%s" % ("\n" if drawn else "", now().strftime("%Y-%m-%d %H:%M:%S"),
                                        plain_table(rows, width)))
        out.flush()
        drawn += 1


def _can_encode(out: TextIO, text: str) -> bool:
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False
