"""``host.call_plugin``: run an executable from the host's plugins directory as xapi does (§6.1).

The directory is ``<root>/etc/xapi.d/plugins`` of the called host's dom0 tree
(``xscontainer.sim.dom0``); the program path is ``<root>/etc/xapi.d/plugins/<name>`` and one argv
element holds the methodCall (caller's session, args struct); the environment is xapi's, only
``PATH``; stdout is parsed as the methodResponse; exit status and output map to
XENAPI_PLUGIN_FAILURE. The run holds no lock, because plugins call back into the simulator with
the caller's session.
"""

import logging
import os
import re
import signal
import subprocess
import sys
import xml.parsers.expat
import xmlrpc.client
from typing import Any, Dict, List, Optional

from xscontainer.sim import datamodel as dm
from xscontainer.sim import dom0
from xscontainer.sim import rpc
from xscontainer.sim.failures import XapiFailure

log = logging.getLogger(__name__)

BASE_PATH = "/sbin:/usr/sbin:/bin:/usr/bin"


_PYTHON_NAME_RE = re.compile(r"python(\d+(\.\d+)*)?\Z")


def plugin_env() -> Dict[str, str]:
    """Exactly what xapi passes (forkhelpers' default_path_env_pair): PATH and nothing else."""
    return {"PATH": BASE_PATH}


def host_plugins_dir(config: Any, host_uuid: str) -> Optional[str]:
    root = config.dom0_roots.get(host_uuid)
    return dom0.plugins_dir(root) if root else None


def _python_shebang_args(path: str) -> Optional[List[str]]:
    """The interpreter arguments of a ``#!...python...`` first line, None for other programs."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if words and os.path.basename(words[0]) == "env":
        words = words[1:]
        rest = words[1:]  # env hands each word to the interpreter
    else:
        rest = [" ".join(words[1:])] if len(words) > 1 else []  # the kernel passes one
    if not words or not _PYTHON_NAME_RE.match(os.path.basename(words[0])):
        return None
    return rest


def plugin_argv(path: str, call_xml: str) -> List[str]:
    """xapi executes ``path`` itself; a Python plugin runs on our own interpreter instead, the
    one documented deviation (dom0's interpreter is 3.6, and the suite runs on 3.6 too)."""
    python_args = _python_shebang_args(path)
    if python_args is None:
        return [path, call_xml]
    if not os.access(path, os.X_OK):  # exec would refuse it, so we do too
        raise PermissionError(13, os.strerror(13), path)
    return [sys.executable] + python_args + [path, call_xml]


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
    root = host_plugins_dir(api.config, host_uuid)
    try:
        entries = os.listdir(root) if root else []
    except OSError:
        entries = []
    if plugin not in entries:
        raise XapiFailure("XENAPI_MISSING_PLUGIN", plugin)
    path = os.path.join(root, plugin)
    log.info("host %s: plugin %s fn %s", host_uuid, plugin, fn)
    try:
        argv = plugin_argv(path, rpc.call_xml(fn, (ctx.session, args)))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=plugin_env(), cwd="/")
        out, err = proc.communicate()
    except OSError as exc:
        raise XapiFailure("INTERNAL_ERROR", "cannot run plugin %s: %s" % (plugin, exc))
    return interpret_output(proc.returncode, out.decode("utf-8", "replace"),
                            err.decode("utf-8", "replace"))


def register(api: Any) -> None:
    api.add("host", "call_plugin", lambda ctx, *a: call_plugin(api, ctx, *a), 4,
            has_async=True, locked=False)
