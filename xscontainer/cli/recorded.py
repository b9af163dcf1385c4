"""``stats --recorded`` (pure): the per-container data sources xcp-rrdd holds for a VM (published
by the monitor's metrics reporter), grouped back into one record per container."""

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

from xscontainer.cli import layout
from xscontainer.cli.layout import Column
from xscontainer.metrics.names import parse_ds_name

FIELDS = {"cpu": "cpu_percent", "memory": "memory_usage", "memory_limit": "memory_limit",
          "net_rx": "network_rx_per_s", "net_tx": "network_tx_per_s", "blk_read": "block_read_per_s",
          "blk_write": "block_write_per_s"}
COLUMNS = (Column("NAME", shrink=True, min_width=8), Column("CPU %", right=True), Column("MEM USAGE / LIMIT"),
           Column("NET RX/TX PER S"), Column("BLOCK R/W PER S"))


def wanted(name: str) -> bool:
    return parse_ds_name(name) is not None


def _known(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def records(values: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Data-source name -> value (NaN: unknown) to one record per container, by name. rrdd keeps
    listing the sources of a container that went, unknown: such a container is left out."""
    by_container = {}  # type: Dict[str, Dict[str, Any]]
    for name, value in values.items():
        parsed = parse_ds_name(name)
        if parsed is None:
            continue
        container, metric = parsed
        by_container.setdefault(container, {"name": container})[FIELDS[metric]] = _known(value)
    result = []
    for container in sorted(by_container):
        record = by_container[container]
        if any(record.get(f) is not None for f in FIELDS.values()):
            for field in FIELDS.values():
                record.setdefault(field, None)
            result.append(record)
    return result


def pair(a: Any, b: Any) -> str:
    return "%s / %s" % (layout.format_bytes(None if a is None else int(a)),
                        layout.format_bytes(None if b is None else int(b)))


def table(rows: Sequence[Dict[str, Any]], width: Optional[int]) -> str:
    cells = []
    for r in rows:
        cpu = r.get("cpu_percent")
        cells.append([r["name"], "-" if cpu is None else "%.2f%%" % cpu,
                      pair(r.get("memory_usage"), r.get("memory_limit")),
                      pair(r.get("network_rx_per_s"), r.get("network_tx_per_s")),
                      pair(r.get("block_read_per_s"), r.get("block_write_per_s"))])
    return layout.render_table(COLUMNS, cells, width)
