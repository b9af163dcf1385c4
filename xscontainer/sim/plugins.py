"""``host.call_plugin``: run an executable from the plugins directory as xapi does (§6.1).

One argv element holds the methodCall (caller's session, args struct); stdout is parsed as the
methodResponse; exit status and output map to XENAPI_PLUGIN_FAILURE. The run holds no lock,
because plugins call back into the simulator with the caller's session.
"""

import logging
import os
import signal
import subprocess
import xml.parsers.expat
import xmlrpc.client
from typing import Any, Dict

from xscontainer.sim import datamodel as dm
from xscontainer.sim import rpc
from xscontainer.sim.failures import XapiFailure

log = logging.getLogger(__name__)

BASE_PATH = "/sbin:/usr/sbin:/bin:/usr/bin"


def plugin_env(config: Any, inventory: str) -> Dict[str, str]:
    """xapi passes only PATH; the extra variables are the simulator's documented deviation."""
    env = {
        "PATH": config.plugin_path_prefix + ":" + BASE_PATH if config.plugin_path_prefix
        else BASE_PATH,
        "XSCONTAINER_XAPI_SOCKET": config.unix_socket,
        "XSCONTAINER_INVENTORY": inventory,
    }
    if config.plugin_pythonpath:
        env["PYTHONPATH"] = config.plugin_pythonpath
    return env


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def interpret_output(returncode: int, stdout: str, stderr: str) -> str:
    """Map a finished plugin run to its string result or the XapiFailure xapi raises."""
    if returncode < 0:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "signal: " + _signal_name(-returncode),
                          stdout, stderr)
    if returncode != 0:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "non-zero exit", stdout, stderr)
    try:
        params, _ = xmlrpc.client.loads(stdout)
    except xmlrpc.client.Fault as fault:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "fault", fault.faultCode, fault.faultString)
    except (xml.parsers.expat.ExpatError, xmlrpc.client.ResponseError, ValueError,
            TypeError, AttributeError, IndexError, KeyError) as exc:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "failed to parse plugin output", stdout,
                          str(exc))
    result = params[0] if len(params) == 1 else None
    if isinstance(result, dict) and result.get("Status") == "Success" and "Value" in result:
        value = result["Value"]
        if not isinstance(value, str):
            raise XapiFailure("INTERNAL_ERROR",
                              "plugin returned a non-string value: %r" % (value,))
        return value
    if isinstance(result, dict) and result.get("Status") == "Failure" and \
            isinstance(result.get("ErrorDescription"), list) and result["ErrorDescription"]:
        raise XapiFailure(*[str(d) for d in result["ErrorDescription"]])
    raise XapiFailure("XENAPI_PLUGIN_FAILURE", "unexpected XMLRPC result", stdout)


def call_plugin(api: Any, ctx: Any, host: Any, plugin: Any, fn: Any, args: Any) -> str:
    with api.db.lock:
        host_uuid = api.db.get("host", host)["uuid"]
    plugin = dm.decode(dm.Kind("string"), plugin, "plugin")
    fn = dm.decode(dm.Kind("string"), fn, "fn")
    args = dm.decode(dm.Kind("map", elem=dm.Kind("string")), args, "args")
    root = api.config.plugins_dir
    try:
        entries = os.listdir(root) if root else []
    except OSError:
        entries = []
    if plugin not in entries:
        raise XapiFailure("XENAPI_MISSING_PLUGIN", plugin)
    path = os.path.join(root, plugin)
    argv = [path, rpc.call_xml(fn, (ctx.session, args))]
    env = plugin_env(api.config, api.config.inventories.get(host_uuid, ""))
    log.info("host %s: plugin %s fn %s", host_uuid, plugin, fn)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd="/")
        out, err = proc.communicate()
    except OSError as exc:
        raise XapiFailure("INTERNAL_ERROR", "cannot run plugin %s: %s" % (plugin, exc))
    return interpret_output(proc.returncode, out.decode("utf-8", "replace"),
                            err.decode("utf-8", "replace"))


def register(api: Any) -> None:
    api.add("host", "call_plugin", lambda ctx, *a: call_plugin(api, ctx, *a), 4,
            has_async=True, locked=False)
