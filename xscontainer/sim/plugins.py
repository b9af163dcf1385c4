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
import string
import subprocess
import sys
import xml.parsers.expat
import xmlrpc.client
from typing import Any, Dict, List, Optional, Union

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


# XML 1.0's Char production, as xmlm checks it: anything else in stdout, raw or as a character
# reference, makes xapi's parser fail. Undecodable bytes arrive here as lone surrogates.
_NOT_XML_CHAR_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CHAR_REF_RE = re.compile(r"&#([^;<&\s]*);")


def _is_xml_char(code: int) -> bool:
    return not _NOT_XML_CHAR_RE.match(chr(code)) if 0 <= code <= 0x10FFFF else False


def _char_ref_value(ref: str) -> int:
    """The code point of ``&#ref;`` as xmlm reads it, -1 when it is not a number."""
    if ref.startswith("x"):
        digits, allowed, base = ref[1:], string.hexdigits, 16
    else:
        digits, allowed, base = ref, string.digits, 10
    if not digits or any(c not in allowed for c in digits):
        return -1
    return int(digits, base)


def _xmlm_line(text: str, position: int) -> int:
    """xmlm's line of ``position``: CR, LF and CR LF each end a line."""
    return text[:position].replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


def xml_char_error(text: str) -> "Optional[str]":
    """xmlm's error for the first character XML 1.0 forbids, as ``Xml.error`` words it."""
    errors = []
    raw = _NOT_XML_CHAR_RE.search(text)
    if raw:
        errors.append((raw.start(), "malformed character stream"))
    for ref in _CHAR_REF_RE.finditer(text):
        if not _is_xml_char(_char_ref_value(ref.group(1))):
            errors.append((ref.start(), "illegal character reference (#%s)" % ref.group(1)))
            break
    if not errors:
        return None
    position, message = min(errors)
    return "%s line %d" % (message, _xmlm_line(text, position))


def _parse_failure(stdout: str, error: str) -> XapiFailure:
    return XapiFailure("XENAPI_PLUGIN_FAILURE", "failed to parse plugin output", stdout, error)


def _decode(output: "Union[bytes, str]") -> str:
    # Bytes that are not UTF-8 are kept (as lone surrogates): xapi returns the output as it came.
    return output.decode("utf-8", "surrogateescape") if isinstance(output, bytes) else output


def interpret_output(returncode: int, stdout: "Union[bytes, str]",
                     stderr: "Union[bytes, str]") -> str:
    """Map a finished plugin run to its string result or the XapiFailure xapi raises."""
    stdout, stderr = _decode(stdout), _decode(stderr)
    if returncode < 0:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "signal: " + _signal_name(-returncode),
                          stdout, stderr)
    if returncode != 0:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "non-zero exit", stdout, stderr)
    char_error = xml_char_error(stdout)
    if char_error:
        raise _parse_failure(stdout, char_error)
    try:
        params, _ = xmlrpc.client.loads(stdout.encode("utf-8"))
    except xmlrpc.client.Fault as fault:
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "fault", fault.faultCode, fault.faultString)
    except xml.parsers.expat.ExpatError as exc:
        raise _parse_failure(stdout, "%s line %d" % (
            xml.parsers.expat.ErrorString(exc.code), exc.lineno))
    except (xmlrpc.client.ResponseError, ValueError, TypeError, AttributeError, IndexError,
            KeyError) as exc:
        raise _parse_failure(stdout, str(exc))
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


# Linux's MAX_ARG_STRLEN: one argv element, its terminating NUL included.
MAX_ARG_STRLEN = 32 * 4096


def check_argv_size(session: str, fn: Any, args: Any) -> None:
    """What xapi gives when the kernel refuses the call's argv element (E2BIG): forkexecd's
    child exits 126 before the plugin runs, so xapi_plugins.ml sees a non-zero exit with empty
    output. Checked before the launch so that the answer does not depend on this machine."""
    if not isinstance(fn, str) or not isinstance(args, dict) or \
            not all(isinstance(v, str) for v in args.values()):
        return  # the plugin call refuses the types itself
    size = len(rpc.call_xml(fn, (session, args)).encode("utf-8", "surrogatepass")) + 1
    if size > MAX_ARG_STRLEN:
        log.info("plugin call of %d bytes exceeds one argv element: E2BIG", size)
        raise XapiFailure("XENAPI_PLUGIN_FAILURE", "non-zero exit", "", "")


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
    return interpret_output(proc.returncode, out, err)


def register(api: Any) -> None:
    api.add("host", "call_plugin", lambda ctx, *a: call_plugin(api, ctx, *a), 4,
            has_async=True, locked=False)
