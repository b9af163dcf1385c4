"""On-demand engine operations, written once for both callers: the monitor's control socket
(warm connection) and the plugin's direct path (when no monitor runs).

Results are JSON-able so they can cross the control socket unchanged, and their text is
XML-1.0-clean (the renderers and ``_logs_text`` follow ``xscontainer.xmltext``) because each ends
up in a plugin result.
"""

import concurrent.futures
from typing import Any, Dict

from xscontainer.engine.client import LIFECYCLE, DockerClient
from xscontainer.errors import InvalidArgument
from xscontainer.xmltext import xml_clean

MAX_LOG_BYTES = 1024 * 1024
MAX_PARALLEL_STATS = 8


def _logs_text(pieces, limit: int = MAX_LOG_BYTES) -> str:
    """The newest output as text a plugin result can carry: ANSI colours (ESC) and other control
    characters made visible (``xscontainer.xmltext``), invalid UTF-8 as U+FFFD."""
    data = b"".join(chunk for _, chunk in pieces)
    if len(data) > limit:  # keep the newest output
        data = data[-limit:]
    return xml_clean(data.decode("utf-8", "replace"))


def stats_summary(stats: Dict[str, Any]) -> Dict[str, Any]:
    """CPU %, memory, network and block I/O, computed as ``docker stats`` does."""
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_percent = (100.0 * cpu_delta / system_delta * cpus) if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = stats.get("memory_stats") or {}
    mem_usage = memory.get("usage", 0) - ((memory.get("stats") or {}).get("cache", 0) or 0)
    networks = stats.get("networks") or {}
    blkio = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    return {
        "name": (stats.get("name") or "").lstrip("/"),
        "id": stats.get("id", ""),
        "cpu_percent": round(cpu_percent, 2),
        "memory_usage": max(mem_usage, 0),
        "memory_limit": memory.get("limit", 0),
        "network_rx_bytes": sum(n.get("rx_bytes", 0) for n in networks.values()),
        "network_tx_bytes": sum(n.get("tx_bytes", 0) for n in networks.values()),
        "block_read_bytes": sum(e.get("value", 0) for e in blkio if str(e.get("op", "")).lower() == "read"),
        "block_write_bytes": sum(e.get("value", 0) for e in blkio if str(e.get("op", "")).lower() == "write"),
    }


def run_operation(client: DockerClient, op: str, params: Dict[str, Any]) -> Any:
    container = params.get("container")
    if op in LIFECYCLE:
        return xml_clean(client.action(container, op).decode("utf-8", "replace"))
    if op == "top":
        return client.top(container)
    if op == "inspect":
        return client.inspect(container)
    if op == "logs":
        return _logs_text(client.logs(container, tail=int(params.get("tail", 100))))
    if op == "stats":
        if container:
            return [stats_summary(client.stats(container))]
        running = client.containers(all=False)
        if not running:
            return []
        # Docker takes two samples a second apart for each container: ask for all at once.
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_STATS, len(running))) as pool:
            return list(pool.map(lambda c: stats_summary(client.stats(c["Id"])), running))
    if op == "ps":  # every container, for a docker_ps that had to be abridged to fit xapi
        return client.containers(all=True)
    if op == "api_get":
        path = params.get("path", "")
        return client.get(path)
    raise InvalidArgument("Unknown engine operation %r." % op, code="INVALID_ARGUMENT")
