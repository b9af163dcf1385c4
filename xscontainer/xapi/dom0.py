"""Where dom0's files are for a plugin that xapi started: found from the plugin's own path.

xapi runs ``/etc/xapi.d/plugins/<name>`` with nothing but ``PATH`` in the environment, so a plugin
cannot be told where xapi's socket or the host inventory are. It derives them from the directory
it was started from instead: ``<root>/etc/xapi.d/plugins/<name>`` gives ``<root>``, which is ``/``
on a real host. The simulator builds one such tree per simulated host (``xscontainer.sim.dom0``).
"""

import os
from typing import NamedTuple

from xscontainer.xapi.inventory import this_host_uuid

# Paths inside a dom0 tree, relative to its root; on a real host the root is "/".
PLUGINS_DIR = "etc/xapi.d/plugins"
INVENTORY = "etc/xensource-inventory"
XAPI_SOCKET = "var/lib/xcp/xapi"
LOG_DIR = "var/log"
LOG_FILE = LOG_DIR + "/xscontainer.log"


class Dom0(NamedTuple):
    root: str

    def path(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    @property
    def xapi_socket(self) -> str:
        return self.path(XAPI_SOCKET)

    @property
    def inventory(self) -> str:
        return self.path(INVENTORY)

    @property
    def log_file(self) -> str:
        return self.path(LOG_FILE)

    def host_uuid(self) -> str:
        return this_host_uuid(self.inventory)


def root_of_plugin(plugin_path: str) -> str:
    """``<root>`` for ``<root>/etc/xapi.d/plugins/<name>`` (symlinks are not resolved: the path
    xapi ran counts); ``/`` for a plugin started from anywhere else."""
    folder = os.path.dirname(os.path.abspath(plugin_path))
    suffix = os.sep + PLUGINS_DIR
    if folder.endswith(suffix):
        return folder[:-len(suffix)] or os.sep
    return os.sep


def of_plugin(plugin_path: str) -> Dom0:
    return Dom0(root_of_plugin(plugin_path))
