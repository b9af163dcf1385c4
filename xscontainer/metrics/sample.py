"""From the engine's stats documents to data sources (pure).

CPU is computed by ``operations.stats_summary``, as ``docker stats`` does, with the previous
sample we took ourselves as ``precpu_stats``: a one-shot read then answers at once instead of
making the engine wait a second per container. Everything here comes from a guest: shapes,
types and sizes are checked, and a container whose figures make no sense is left out.
"""

import math
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from xscontainer.engine.operations import stats_summary
from xscontainer.metrics.names import ds_name, encode_container_name
from xscontainer.metrics.protocol import INT64_MAX, DataSource

MAX_CONTAINERS_PER_VM = 256


class Sample(NamedTuple):
    """One running container's stats document as the engine sent it."""
    name: str
    raw: Dict[str, Any]


class Summary(NamedTuple):
    name: str
    cpu_percent: float         # NaN when no earlier sample exists
    memory: int
    memory_limit: int
    net_rx: int
    net_tx: int
    blk_read: int
    blk_write: int


def has_cpu_sample(cpu: Any) -> bool:
    return isinstance(cpu, dict) and bool(cpu.get("system_cpu_usage"))


def summarize(sample: Sample, previous_cpu: Optional[Dict[str, Any]]) -> Optional[Summary]:
    """The container's figures, or None when the document is not a plausible stats reply."""
    raw = sample.raw
    if not isinstance(raw, dict):
        return None
    doc = dict(raw)
    if has_cpu_sample(previous_cpu):
        doc["precpu_stats"] = previous_cpu
    try:
        figures = stats_summary(doc)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None
    counters = [figures["memory_usage"], figures["memory_limit"], figures["network_rx_bytes"],
                figures["network_tx_bytes"], figures["block_read_bytes"], figures["block_write_bytes"]]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= INT64_MAX for v in counters):
        return None
    cpu = figures["cpu_percent"]
    if not has_cpu_sample(doc.get("precpu_stats")) or not isinstance(cpu, (int, float)) or \
            not math.isfinite(cpu) or cpu < 0:
        cpu = math.nan
    return Summary(sample.name, float(cpu), *counters)


def container_datasources(owner_vm: str, summary: Summary) -> List[DataSource]:
    owner = "vm " + owner_vm
    name = summary.name

    def gauge(metric: str, value: Any, value_type: str, units: str, what: str) -> DataSource:
        return DataSource(ds_name(name, metric), value, value_type, "gauge", owner, units,
                          "Container %s: %s" % (encode_container_name(name), what), 0.0)

    def derive(metric: str, value: int, what: str) -> DataSource:
        return DataSource(ds_name(name, metric), value, "int64", "derive", owner, "B/s",
                          "Container %s: %s" % (encode_container_name(name), what), 0.0)

    return [
        gauge("cpu", summary.cpu_percent, "float", "%", "CPU usage (percent of the VM, as docker stats)"),
        gauge("memory", summary.memory, "int64", "B", "memory used"),
        gauge("memory_limit", summary.memory_limit, "int64", "B", "memory limit"),
        derive("net_rx", summary.net_rx, "network received"),
        derive("net_tx", summary.net_tx, "network sent"),
        derive("blk_read", summary.blk_read, "block device reads"),
        derive("blk_write", summary.blk_write, "block device writes"),
    ]


def vm_datasources(vm_uuid: str, summaries: Sequence[Summary]) -> List[DataSource]:
    """Every data source of one VM; a second container with the same encoded name is dropped."""
    seen = set()
    result = []  # type: List[DataSource]
    for summary in summaries[:MAX_CONTAINERS_PER_VM]:
        key = encode_container_name(summary.name)
        if key in seen:
            continue
        seen.add(key)
        result.extend(container_datasources(vm_uuid, summary))
    return result


def ids_and_names(containers: Any) -> List[Tuple[str, str]]:
    """(id, name) of each container in a ``/containers/json`` reply; anything odd is skipped."""
    result = []
    for item in containers if isinstance(containers, list) else []:
        if not isinstance(item, dict):
            continue
        ident, names = item.get("Id"), item.get("Names")
        if isinstance(ident, str) and isinstance(names, list) and names and isinstance(names[0], str):
            result.append((ident, names[0]))
    return result[:MAX_CONTAINERS_PER_VM]


def running_of_listing(containers: Any) -> List[Tuple[str, str]]:
    """``ids_and_names`` of a ``/containers/json?all=1`` reply: the running (and paused) ones."""
    listed = containers if isinstance(containers, list) else []
    return ids_and_names([item for item in listed if isinstance(item, dict)
                          and str(item.get("State", "")).lower() in ("running", "paused")])
