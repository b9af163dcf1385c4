"""The other documents (pure, no I/O).

``docker_info`` / ``docker_version``: the records of ``/info`` and ``/version`` under those roots,
Docker's own key names. ``SystemTime`` is left out of ``docker_info``: it changes on every call,
nobody reads it, and it would make an unchanged engine rewrite the key.

``docker_top``: ``<item><Process><TITLE>value</TITLE>...</Process></item>`` per process, the
children in the engine's column order (XenCenter reads ``PID``, ``CMD``, ``TIME``); a missing or
blank value is written ``-``, never an empty element.
"""

from typing import Callable, Mapping, Optional, Sequence

from xscontainer.consumerxml.encoding import (XML_DECLARATION, append_element, fit_document, open_tag,
                                              render_document, scalar_text, utf8_length)

VOLATILE_INFO_KEYS = ("SystemTime",)
# XenCenter reads ``child.FirstChild.Value`` of these docker_top columns: an empty element throws.
EMPTY_PROCESS_VALUE = "-"

# What XenCenter reads of docker_info and docker_version (consumers-detail.md §1.4): kept first
# when a document must be cut to fit in one xapi request.
XENCENTER_INFO_FIELDS = ("Driver", "IndexServerAddress", "ExecutionDriver", "IPv4Forwarding", "Containers",
                         "Images", "NCPU", "MemTotal", "Name", "ID", "OperatingSystem", "KernelVersion",
                         "DockerRootDir", "NGoroutines", "NFd", "NEventsListener", "Debug", "InitPath",
                         "InitSha1", "MemoryLimit", "SwapLimit", "DriverStatus", "Labels")
XENCENTER_VERSION_FIELDS = ("ApiVersion", "Version", "GitCommit", "GoVersion", "Os", "Arch", "KernelVersion")


def render_docker_info(info: Mapping, drop: Sequence[str] = VOLATILE_INFO_KEYS, budget: Optional[int] = None,
                       cost: Callable[[str], int] = utf8_length) -> str:
    """``docker_info`` for the record of ``GET /info`` (``drop``: keys left out), within
    ``budget`` (see ``fit_document``; the fields XenCenter reads come first)."""
    return fit_document("docker_info", dict((k, v) for k, v in info.items() if k not in drop),
                        budget, cost, XENCENTER_INFO_FIELDS)


def render_docker_version(version: Mapping, budget: Optional[int] = None,
                          cost: Callable[[str], int] = utf8_length) -> str:
    """``docker_version`` for the record of ``GET /version``, within ``budget``."""
    return fit_document("docker_version", version, budget, cost, XENCENTER_VERSION_FIELDS)


def render_docker_inspect(inspect_record: Mapping) -> str:
    """``docker_inspect`` for the record of ``GET /containers/{id}/json`` (``get_inspect``)."""
    return render_document("docker_inspect", inspect_record)


def render_docker_top(top: Mapping) -> str:
    """``docker_top`` for the record of ``GET /containers/{id}/top`` (``get_top``).

    A row shorter than ``Titles`` gets ``-`` for the missing columns, and so does a blank value
    (XenCenter's Processes tab fails on an empty ``PID``, ``CMD`` or ``TIME``); extra values are
    dropped. Columns keep the engine's order (a title that is not a plain name, such as Windows'
    ``Private Working Set``, is encoded like any other key)."""
    titles = [scalar_text(t) for t in (top.get("Titles") or [])]
    processes = top.get("Processes") or []
    reserved = frozenset(["docker_top"])
    parts = [XML_DECLARATION]
    if not processes:
        parts.append("<docker_top/>")
        return "".join(parts)
    parts.append("<docker_top>")
    for row in processes:
        row = list(row) if isinstance(row, (list, tuple)) else [row]
        if not titles:
            parts.append("<item><Process/></item>")
            continue
        parts.append("<item><Process>")
        for index, title in enumerate(titles):
            start, end = open_tag(title, reserved)
            value = row[index] if index < len(row) else None
            if value is None or not scalar_text(value).strip():
                value = EMPTY_PROCESS_VALUE
            append_element(parts, start, end, value, reserved)
        parts.append("</Process></item>")
    parts.append("</docker_top>")
    return "".join(parts)
