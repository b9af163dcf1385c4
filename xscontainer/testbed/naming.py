"""Pure naming and addressing of a testbed: everything derived from its directory, no I/O.

Two testbeds in different directories get different bridge, namespace, veth and cgroup names
(from a hash of the directory) and different 169.254.N.0/24 subnets (chosen against the
addresses already in use).
"""

import hashlib
import ipaddress
from typing import Iterable, List, Optional, Set

LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")
# 169.254.169.0/24 holds the cloud metadata address on many machines; 0 and 255 are reserved.
_RESERVED_OCTETS = frozenset([0, 169, 255])
IFNAMSIZ = 15
MAX_VMS = 200
# With shared namespaces (many VM addresses served by one namespace's sshd and dockerd), for
# scale benchmarks: MAX_VMS still bounds the namespaces, this bounds the xapi VMs.
MAX_SHARED_VMS = 5000
EXTRA_HOSTS_PER_SUBNET = 253  # .2 .. .254 of each extra 169.254.E.0/24
SAMPLE_CONTAINERS = ("web", "burner", "sleeper", "exited")
WEB_PUBLISHED_PORT = 8080
WEB_CONTAINER_PORT = 80
EXITED_CODE = 3
IMAGE_TAG = "xscontainer/busybox:latest"


def testbed_hash(directory: str) -> str:
    """Eight hex digits identifying the testbed in DIR (callers pass a resolved, absolute path)."""
    return hashlib.sha256(directory.encode("utf-8")).hexdigest()[:8]


def bridge_name(tb_hash: str) -> str:
    return "xstb" + tb_hash


def vm_name(index: int) -> str:
    """Name label of the index-th VM (1-based)."""
    return "vm%d" % index


def netns_name(tb_hash: str, index: int) -> str:
    return "xstb-%s-vm%d" % (tb_hash, index)


def host_veth_name(tb_hash: str, index: int) -> str:
    return "xv%s%d" % (tb_hash[:7], index)


def peer_veth_name(tb_hash: str, index: int) -> str:
    """Name of the VM end before it moves into the namespace (where it becomes eth0)."""
    return "xp%s%d" % (tb_hash[:7], index)


def cgroup_parent(tb_hash: str, index: int) -> str:
    return "xstb-%s-vm%d" % (tb_hash, index)


def used_link_local_octets(addresses: Iterable[str]) -> Set[int]:
    """Third octets of the 169.254.0.0/16 addresses or networks given (CIDR or bare)."""
    used = set()  # type: Set[int]
    for text in addresses:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if network.version != 4 or not network.overlaps(LINK_LOCAL):
            continue
        if network.prefixlen <= LINK_LOCAL.prefixlen:
            # The whole /16 (e.g. an avahi link-local route): our /24 routes are more specific.
            continue
        if network.prefixlen < 24:
            first = int(network.network_address.packed[2])
            last = int(network.broadcast_address.packed[2])
            used.update(range(first, last + 1))
        else:
            used.add(int(network.network_address.packed[2]))
    return used


def choose_subnet_octet(tb_hash: str, used: Set[int]) -> Optional[int]:
    """The N of 169.254.N.0/24 for this testbed: derived from the hash, skipping used ones."""
    start = int(tb_hash, 16) % 254 + 1
    for step in range(254):
        octet = (start - 1 + step) % 254 + 1
        if octet not in used and octet not in _RESERVED_OCTETS:
            return octet
    return None


def root_address(octet: int) -> str:
    return "169.254.%d.1" % octet


def vm_address(octet: int, index: int) -> str:
    if not 1 <= index <= MAX_VMS:
        raise ValueError("VM index %d out of range 1..%d" % (index, MAX_VMS))
    return "169.254.%d.%d" % (octet, index + 1)


def namespace_number(index: int, per_namespace: int) -> int:
    """The 1-based namespace serving VM index (VMs 1..K share namespace 1, K+1..2K the 2nd...)."""
    return (index - 1) // per_namespace + 1


def namespace_owner(index: int, per_namespace: int) -> int:
    """Index of the VM that owns (names and starts) the namespace serving VM index."""
    return (namespace_number(index, per_namespace) - 1) * per_namespace + 1


def namespaces_needed(vms: int, per_namespace: int) -> int:
    return (vms + per_namespace - 1) // per_namespace


def namespace_position(index: int, per_namespace: int) -> int:
    """0 for the VM owning its namespace (the primary address), 1..K-1 for the others."""
    return (index - 1) % per_namespace


def extra_subnets_per_namespace(per_namespace: int) -> int:
    return (per_namespace - 1 + EXTRA_HOSTS_PER_SUBNET - 1) // EXTRA_HOSTS_PER_SUBNET


def extra_subnets_needed(vms: int, per_namespace: int) -> int:
    """Extra /24 subnets for shared namespaces: each namespace has its own, routed to it through
    its primary address, so the root namespace keeps one neighbour entry per namespace (a
    thousand addresses on the bridge itself overflow the default ARP table, gc_thresh3 = 1024)."""
    return namespaces_needed(vms, per_namespace) * extra_subnets_per_namespace(per_namespace)


def namespace_subnets(octets: List[int], namespace: int, per_namespace: int) -> List[int]:
    """The extra subnet octets routed to the namespace-th (1-based) namespace."""
    count = extra_subnets_per_namespace(per_namespace)
    return octets[(namespace - 1) * count:namespace * count]


def extra_address(subnets: List[int], position: int) -> str:
    """Address of the VM at position (1..K-1) in a namespace whose extra subnets are given."""
    subnet = (position - 1) // EXTRA_HOSTS_PER_SUBNET
    if not 1 <= position or subnet >= len(subnets):
        raise ValueError("position %d needs more than %d extra subnets" % (position, len(subnets)))
    return "169.254.%d.%d" % (subnets[subnet], (position - 1) % EXTRA_HOSTS_PER_SUBNET + 2)


def sample_containers(count: int) -> List[str]:
    """Names of the sample containers for C = count: the four base kinds, then extra sleepers."""
    names = list(SAMPLE_CONTAINERS[:count])
    names.extend("extra%d" % i for i in range(1, count - len(SAMPLE_CONTAINERS) + 1))
    return names
