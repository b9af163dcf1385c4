"""Pool faults a test can inject (class ``sim``, a documented deviation) and how
``host.call_plugin`` reports them, as xapi's ``message_forwarding.ml`` and ``xapi_plugins.ml`` do.

The state lives only in memory: a restarted simulator has every host live and every plugin.
"""

import os
import threading
from typing import Any, Dict, Set

from xscontainer.sim import datamodel as dm
from xscontainer.sim import plugins
from xscontainer.sim.failures import XapiFailure

HOST_STATES = ("live", "offline", "unreachable")


class HostFaults:
    """Per host: its state (``HOST_STATES``) and the plugins it lacks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states = {}  # type: Dict[str, str]
        self._missing = {}  # type: Dict[str, Set[str]]

    def set_state(self, host: str, state: str) -> None:
        with self._lock:
            if state == "live":
                self._states.pop(host, None)
            else:
                self._states[host] = state

    def state(self, host: str) -> str:
        with self._lock:
            return self._states.get(host, "live")

    def remove_plugin(self, host: str, plugin: str) -> None:
        with self._lock:
            self._missing.setdefault(host, set()).add(plugin)

    def restore_plugin(self, host: str, plugin: str) -> None:
        with self._lock:
            self._missing.get(host, set()).discard(plugin)

    def lacks(self, host: str, plugin: str) -> bool:
        with self._lock:
            return plugin in self._missing.get(host, set())


def check_call_plugin(api: Any, host: Any, plugin: Any) -> None:
    """What xapi checks before a plugin runs on ``host``, in xapi's order.

    The coordinator (``localhost`` of message forwarding) is assumed live and is never contacted;
    another host must be live (``check_live``: HOST_OFFLINE) and answer (CANNOT_CONTACT_HOST);
    then the target host looks the plugin up (XENAPI_MISSING_PLUGIN).
    """
    with api.db.lock:
        api.db.get("host", host)
        coordinator = api.master()
    state = api.faults.state(host)
    if host != coordinator and state == "offline":
        raise XapiFailure("HOST_OFFLINE", host)
    if host != coordinator and state == "unreachable":
        raise XapiFailure("CANNOT_CONTACT_HOST", host)
    if isinstance(plugin, str) and api.faults.lacks(host, plugin):
        raise XapiFailure("XENAPI_MISSING_PLUGIN", plugin)


def _plugin_exists(root: Any, plugin: Any) -> bool:
    try:
        return bool(root) and isinstance(plugin, str) and plugin in os.listdir(root)
    except OSError:
        return False


def register(api: Any) -> None:
    api.faults = HostFaults()
    string = dm.Kind("string")

    def set_host_state(ctx: Any, host: Any, state: Any) -> None:
        api.db.get("host", host)
        state = dm.decode(string, state, "state")
        if state not in HOST_STATES:
            raise XapiFailure("INVALID_VALUE", "state", state)
        api.faults.set_state(host, state)

    def remove_plugin(ctx: Any, host: Any, plugin: Any) -> None:
        api.db.get("host", host)
        api.faults.remove_plugin(host, dm.decode(string, plugin, "plugin"))

    def restore_plugin(ctx: Any, host: Any, plugin: Any) -> None:
        api.db.get("host", host)
        api.faults.restore_plugin(host, dm.decode(string, plugin, "plugin"))

    api.add("sim", "set_host_state", set_host_state, 2)
    api.add("sim", "remove_plugin", remove_plugin, 2)
    api.add("sim", "restore_plugin", restore_plugin, 2)
    # Forwarding happens before the target host runs the plugin: wrap the plugin call.
    inner = api.methods[("host", "call_plugin")]

    def forwarded_call_plugin(ctx: Any, host: Any, plugin: Any, fn: Any, args: Any) -> Any:
        check_call_plugin(api, host, plugin)
        if _plugin_exists(api.config.plugins_dir, plugin):  # else XENAPI_MISSING_PLUGIN first
            plugins.check_argv_size(ctx.session, fn, args)
        return inner.fn(ctx, host, plugin, fn, args)
    api.methods[("host", "call_plugin")] = inner._replace(fn=forwarded_call_plugin)
