"""Human output (pure): aligned tables that fit a width, durations, sizes, ports, indented trees."""

import json
from typing import Any, List, NamedTuple, Optional, Sequence

from xscontainer.cli.xmlread import Port

ELLIPSIS = "..."
GAP = "  "


class Column(NamedTuple):
    title: str
    shrink: bool = False  # may be truncated to fit the width
    min_width: int = 6
    right: bool = False  # right-aligned (numbers)


def single_line(text: Any) -> str:
    return " ".join(str(text).split()) if text is not None else ""


def truncate(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[:width]
    return text[:width - len(ELLIPSIS)] + ELLIPSIS


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]],
                  width: Optional[int]) -> List[int]:
    """Natural widths, then the widest shrinkable column narrowed (never below its min_width or
    its title) until the table fits ``width`` (None: no limit) or nothing can shrink."""
    widths = [len(c.title) for c in columns]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    if width is None:
        return widths
    excess = sum(widths) + len(GAP) * (len(columns) - 1) - width
    floors = [max(c.min_width, len(c.title)) if c.shrink else w for c, w in zip(columns, widths)]
    while excess > 0:
        candidates = [i for i, w in enumerate(widths) if w > floors[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: (widths[i], -i))
        # Down to the next widest shrinkable column in one step (at least by one).
        others = [widths[i] for i in candidates if widths[i] < widths[widest]]
        target = max([floors[widest], widths[widest] - excess] + ([max(others)] if others else []))
        target = min(target, widths[widest] - 1)
        excess -= widths[widest] - target
        widths[widest] = target
    return widths


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[Any]],
                 width: Optional[int] = None) -> str:
    """The rows as an aligned table with a title line, each line at most ``width`` characters
    when the shrinkable columns allow it; no trailing spaces; ends with a newline."""
    cells = [[single_line(cell) for cell in row] for row in rows]
    widths = column_widths(columns, cells, width)
    lines = []
    for row in [[c.title for c in columns]] + cells:
        parts = []
        for index, (column, cell) in enumerate(zip(columns, row)):
            text = truncate(cell, widths[index])
            last = index == len(columns) - 1
            if column.right:
                parts.append(text.rjust(widths[index]))
            else:
                parts.append(text if last else text.ljust(widths[index]))
        lines.append(GAP.join(parts).rstrip())
    return "\n".join(lines) + "\n"


def format_duration(seconds: Optional[int]) -> str:
    """``45s``, ``12m5s``, ``3h4m``, ``2d5h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return "%dd%dh" % (days, hours)
    if hours:
        return "%dh%dm" % (hours, minutes)
    if minutes:
        return "%dm%ds" % (minutes, secs)
    return "%ds" % secs


def format_bytes(value: Any) -> str:
    """1536 -> ``1.5KiB``; text that is not a number is shown as it is."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return single_line(value) or "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(number) < 1024 or unit == "TiB":
            return ("%d%s" % (number, unit)) if unit == "B" else ("%.1f%s" % (number, unit))
        number /= 1024.0
    return "%.1fTiB" % number  # not reached


def format_port(port: Port) -> str:
    """Docker's own notation: ``0.0.0.0:8080->80/tcp``, or ``80/tcp`` when not published."""
    private = "%s/%s" % (port.private_port, port.type or "tcp")
    if port.public_port:
        return "%s:%s->%s" % (port.ip or "0.0.0.0", port.public_port, private)
    return private


def format_ports(ports: Sequence[Port]) -> str:
    return ", ".join(format_port(p) for p in ports)


def render_tree(value: Any, indent: int = 0) -> str:
    """A decoded document as an indented ``key: value`` tree (lists as ``- item``)."""
    lines = []  # type: List[str]
    _tree_lines(value, indent, lines)
    return "\n".join(lines) + ("\n" if lines else "")


def _tree_lines(value: Any, indent: int, lines: List[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, (dict, list)) and child:
                lines.append("%s%s:" % (pad, key))
                _tree_lines(child, indent + 2, lines)
            else:
                lines.append(("%s%s: %s" % (pad, key, _scalar(child))).rstrip())
    elif isinstance(value, list):
        for child in value:
            if isinstance(child, (dict, list)) and child:
                lines.append("%s-" % pad)
                _tree_lines(child, indent + 2, lines)
            else:
                lines.append(("%s- %s" % (pad, _scalar(child))).rstrip())
    else:
        lines.append(pad + _scalar(value))


def _scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return ""
    text = str(value)
    return json.dumps(text) if "\n" in text else text
