"""The wire rules of a call to the xscontainer plugin, shared by the plugin (validating and
forwarding calls) and the CLI (sizing a ``create_config_drive`` call, explaining a failed
forwarding): the plugin's name, the forwarded marker, how long xapi's argv makes a call, and what
xapi's failures to deliver it mean."""

import re
from typing import Dict, Optional

from xscontainer.errors import InvalidArgument, XapiError, XSContainerError

PLUGIN_NAME = "xscontainer"
# Set on a call one host forwards to another (plugin.routing): a forwarded call is that much
# longer. It only stops a second hop (a VM migrating at that moment must not make calls bounce
# forever); it never lets a call run on a host that is not the right one, so a caller gains
# nothing by setting it.
FORWARDED_KEY = "xscontainer-forwarded"
# xapi execs a plugin with the whole call (caller's session, every argument, XML-escaped) as one
# argv element; Linux refuses an element over MAX_ARG_STRLEN = 131072 bytes, NUL included.
MAX_CALL_BYTES = 128 * 1024 - 1
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"))


def _xapi_pcdata_bytes(text: str) -> int:
    """Bytes of ``text`` as xapi writes it into the call (xml-light2 ``esc_pcdata``)."""
    text = _CONTROL_RE.sub("", text)
    for char, entity in _XML_ESCAPES:
        text = text.replace(char, entity)
    return len(text.encode("utf-8", "surrogatepass"))


def _value_bytes(text: str) -> int:
    return len("<value/>") if text == "" else len("<value></value>") + _xapi_pcdata_bytes(text)


def plugin_call_bytes(fn: str, session_ref: str, args: Dict[str, str]) -> int:
    """The length of the argv element xapi builds for ``host.call_plugin`` (``xapi_plugins.ml``:
    ``Xml.to_string`` of ``methodCall fn [session; struct args]``), without its NUL."""
    members = sum(len("<member><name></name></member>") + _xapi_pcdata_bytes(key)
                  + _value_bytes(value) for key, value in args.items())
    return (len("<methodCall><methodName></methodName><params><param></param><param><value>"
                "<struct></struct></value></param></params></methodCall>")
            + _xapi_pcdata_bytes(fn) + _value_bytes(session_ref) + members)


def forwarded_call_bytes(fn: str, session_ref: str, args: Dict[str, str]) -> int:
    """``plugin_call_bytes`` of the call once one host forwards it to another (the worst case)."""
    return plugin_call_bytes(fn, session_ref, dict(args, **{FORWARDED_KEY: "1"}))


def check_call_size(fn: str, session_ref: str, args: Dict[str, str]) -> None:
    """Refuse a call that could not reach the plugin, forwarded to another host included."""
    size = forwarded_call_bytes(fn, session_ref, args)
    if size > MAX_CALL_BYTES:
        largest = max(args, key=lambda k: _xapi_pcdata_bytes(args[k])) if args else "?"
        raise InvalidArgument(
            "The call of %s would be %d bytes once XML-escaped (argument %s is the largest), but "
            "xapi can pass at most %d bytes to a plugin (one command-line argument): make the "
            "%s smaller." % (fn, size, largest[:64], MAX_CALL_BYTES, largest[:64]),
            code="ARGUMENT_TOO_LARGE")


def forwarding_error(details, host: str, why: str = "") -> Optional[XSContainerError]:
    """Our error for xapi's failure to run the plugin on ``host`` (``name (uuid)``), chosen
    ``why`` (a phrase such as "that runs VM web (uuid)"); None when it is not such a failure."""
    code = str(details[0]) if details else ""
    subject = "Host %s %s" % (host, why) if why else "Host %s" % host
    if code == "HOST_OFFLINE":
        return XapiError(
            "%s is offline; bring it back (or move the VM to a live host), then try again."
            % subject, code="HOST_OFFLINE")
    if code == "CANNOT_CONTACT_HOST":
        return XapiError(
            "%s cannot be contacted; check that it is up, that xapi runs on it and that the "
            "management network reaches it, then try again." % subject,
            code="CANNOT_CONTACT_HOST")
    if code == "XENAPI_MISSING_PLUGIN" and [str(d) for d in details[1:2]] == [PLUGIN_NAME]:
        return XapiError(
            "xscontainer is not installed on host %s: install it there (every host of the pool "
            "needs the same version; hosts are upgraded one by one), then try again." % host,
            code="PLUGIN_NOT_INSTALLED")
    return None
