"""Data-source names for containers: ``container_<name>_<metric>``, stable across restarts.

rrdd checks no name syntax, but names end up in ``AVERAGE:vm:<uuid>:<name>`` legends that
clients split on ':', in XML and in JSON: we keep to Docker's own name alphabet. A real engine's
names pass unchanged (readable in XenCenter); anything else (a guest controls what its engine
says) becomes ``_`` + a digest, which no Docker name can start with, so names never collide.
"""

import hashlib
import re
from typing import Optional, Tuple

PREFIX = "container_"
# Longest first, so "memory_limit" is not read as a container "..._memory" + "limit".
METRICS = ("memory_limit", "blk_write", "blk_read", "memory", "net_rx", "net_tx", "cpu")
DOCKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 64


def encode_container_name(name: str) -> str:
    if name.startswith("/"):  # the engine API's form of a name
        name = name[1:]
    if DOCKER_NAME.fullmatch(name) and len(name) <= MAX_NAME:
        return name
    return "_" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def ds_name(container_name: str, metric: str) -> str:
    if metric not in METRICS:
        raise ValueError("unknown container metric %r" % metric)
    return "%s%s_%s" % (PREFIX, encode_container_name(container_name), metric)


def parse_ds_name(name: str) -> Optional[Tuple[str, str]]:
    """(encoded container name, metric) of one of our names, else None."""
    if not name.startswith(PREFIX):
        return None
    rest = name[len(PREFIX):]
    for metric in METRICS:
        suffix = "_" + metric
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[:-len(suffix)], metric
    return None
