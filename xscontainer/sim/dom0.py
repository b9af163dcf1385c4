"""Each simulated host's dom0 tree, laid out as ``xscontainer.xapi.dom0`` expects: the plugins a
host runs and what they find there (xapi's socket, the host's inventory, ``/var/log``).

A plugin learns nothing from its environment (xapi passes only ``PATH``): it derives the tree's
root from its own path, ``<root>/etc/xapi.d/plugins/<name>``. Every path in a tree is a symlink
into the simulator's directory, so the tree itself can live in a short directory: AF_UNIX paths
are limited to 107 bytes, and XenAPI's UDSTransport cannot address a path containing ``_``.
"""

import os
import shutil
from typing import Dict, Optional

from xscontainer.xapi import dom0

MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path is 108 bytes, one for the NUL
_UUID_SHAPE = "0" * 36


def fits(base: str) -> bool:
    """True when a host's socket path under ``base`` is usable by XenAPI's UDSTransport."""
    probe = os.path.join(base, _UUID_SHAPE, dom0.XAPI_SOCKET)
    return "_" not in probe and len(probe.encode("utf-8")) <= MAX_SOCKET_PATH


def _symlink(target: str, link: str) -> None:
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(target, link)


def build_tree(root: str, xapi_socket: str, inventory: str, plugins_source: Optional[str],
               log_dir: str) -> None:
    """(Re)build one host's tree. Its plugins are those of ``plugins_source`` now; removing
    ``<root>/etc/xapi.d/plugins/<name>`` removes the plugin from this host only."""
    _symlink(xapi_socket, os.path.join(root, dom0.XAPI_SOCKET))
    _symlink(inventory, os.path.join(root, dom0.INVENTORY))
    os.makedirs(log_dir, exist_ok=True)
    _symlink(log_dir, os.path.join(root, dom0.LOG_DIR))
    plugins = os.path.join(root, dom0.PLUGINS_DIR)
    shutil.rmtree(plugins, ignore_errors=True)  # holds only our symlinks
    os.makedirs(plugins)
    names = sorted(os.listdir(plugins_source)) if plugins_source and os.path.isdir(plugins_source) else []
    for name in names:
        os.symlink(os.path.join(plugins_source, name), os.path.join(plugins, name))


def build_trees(base: str, directory: str, xapi_socket: str, inventories: Dict[str, str],
                plugins_source: Optional[str]) -> Dict[str, str]:
    """One tree per host under ``base``; host uuid -> root. Logs go to DIR/hosts/<uuid>/log."""
    roots = {}
    for host_uuid, inventory in sorted(inventories.items()):
        root = os.path.join(base, host_uuid)
        build_tree(root, xapi_socket, inventory, plugins_source,
                   os.path.join(directory, "hosts", host_uuid, "log"))
        roots[host_uuid] = root
    return roots


def plugins_dir(root: str) -> str:
    return os.path.join(root, dom0.PLUGINS_DIR)
