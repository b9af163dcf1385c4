"""TCP to a VM, for every tunnel: the first of its addresses that accepts, errors that say why
none did, and the socket options that notice a dead peer within seconds."""

import socket
from typing import List, Optional, Tuple

from xscontainer.errors import ConnectionFailure

# Dead-peer detection: the kernel's TCP keepalive probes a connection quiet for KEEPALIVE s, and
# TCP_USER_TIMEOUT gives the connection up when a probe or sent data stays unacknowledged for
# DEAD_PEER_GRACE s. A VM whose network is cut is noticed within 2 + 5 = 7 s (it was
# 10 + 30 = 40 s: a dead VM stayed "monitored" for 41 s). 5 s lets Linux retransmit four times
# (RTO from 200 ms, doubling: 0.2, 0.6, 1.4, 3.0 s), so one lost packet or a live migration's
# sub-second pause does not drop a healthy connection. The kernel aborts the connection, which
# wakes paramiko's reader at once: no thread of ours has to wake to probe. The SSH-level
# keepalive and the reader's wake-up are every IDLE_WAKE s (they were every 2 s: 500 wake-ups/s
# of a thousand idle VMs, ~4 % of a core at 300).
KEEPALIVE = 2.0
DEAD_PEER_GRACE = 5.0
IDLE_WAKE = 30.0


def tune_socket(sock: socket.socket, keepalive: float, grace: float = DEAD_PEER_GRACE) -> None:
    """Low latency (NODELAY) and dead-peer detection (see DEAD_PEER_GRACE): TCP keepalive
    probes for a link idle at the TCP level too, TCP_USER_TIMEOUT for unacknowledged data."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", int(keepalive)), ("TCP_KEEPINTVL", 1), ("TCP_KEEPCNT", int(grace)),
                        ("TCP_USER_TIMEOUT", int(grace * 1000))):
        option = getattr(socket, name, None)
        if option is None and name == "TCP_USER_TIMEOUT":
            option = 18  # Linux; not named by Python 3.6
        if option is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, max(1, value))
            except OSError:
                pass


def tcp_connect(addresses: List[str], port: int, timeout: float, vm_uuid: str,
                what: str) -> Tuple[socket.socket, str]:
    """Connect to the first address that accepts; errors say why the last one did not."""
    if not addresses:
        raise ConnectionFailure(
            "VM %s reports no IP address, so xscontainer cannot reach it. Make sure the guest "
            "tools (xe-guest-utilities) run in the VM and that it has a network." % vm_uuid,
            code="NO_ADDRESS", vm_uuid=vm_uuid)
    last = None  # type: Optional[ConnectionFailure]
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
            return sock, address
        except ConnectionRefusedError as exc:
            last = ConnectionFailure(
                "Nothing listens on %s port %d of VM %s (%s): %s is not running there, or a firewall "
                "rejects it." % (address, port, vm_uuid, exc.strerror, what),
                code="PORT_CLOSED", vm_uuid=vm_uuid, address=address, port=port)
        except socket.timeout:
            last = ConnectionFailure(
                "VM %s does not answer on %s port %d within %.0f s: check that it runs and that "
                "dom0 can route to it." % (vm_uuid, address, port, timeout),
                code="ADDRESS_UNREACHABLE", vm_uuid=vm_uuid, address=address, port=port)
        except OSError as exc:
            last = ConnectionFailure(
                "Cannot reach VM %s at %s port %d: %s. Check that dom0 can route to it."
                % (vm_uuid, address, port, exc.strerror or exc),
                code="ADDRESS_UNREACHABLE", vm_uuid=vm_uuid, address=address, port=port)
    assert last is not None
    raise last
