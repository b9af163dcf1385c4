"""Key-by-key writes of xapi map fields (other_config): never read-modify-write a whole map.

Other writers (XenCenter, other hosts, administrators) write the same maps; a whole-map write
from a stale read would lose their keys.
"""

import xmlrpc.client
from typing import Any

import XenAPI

from xscontainer.errors import XapiError

# xapi refuses an XML-RPC request whose body is larger than this (xen-api
# ocaml/xapi-consts/constants.ml ``http_limit_max_rpc_size``, enforced by api_server.ml through
# ``Http_svr.read_body ~limit``): HTTP 500 and the connection closed.
XAPI_MAX_REQUEST_BYTES = 300 * 1024
# What our own values may use of it: room for refs longer than ours and any other encoder's habits.
REQUEST_MARGIN_BYTES = 8 * 1024
# Stands for a session or object reference when a request is measured (xapi's are 46 characters).
_PLACEHOLDER_REF = "OpaqueRef:" + "0" * 54


def xmlrpc_text_bytes(text: str) -> int:
    """Bytes ``text`` takes as a string parameter inside an XML-RPC request (escaped, UTF-8).

    Additive: the size of a concatenation is the sum of the sizes of its parts."""
    return (len(text.encode("utf-8", "surrogatepass")) + 4 * text.count("&")
            + 3 * text.count("<") + 3 * text.count(">"))


def add_request_bytes(class_name: str, ref: str, key: str, value: str, field: str = "other_config") -> int:
    """The exact body size of ``<class>.add_to_<field>(session, ref, key, value)``."""
    params = (_PLACEHOLDER_REF, ref, key, value)
    body = xmlrpc.client.dumps(params, "%s.add_to_%s" % (class_name, field))
    return len(body.encode("utf-8", "xmlcharrefreplace"))


def value_budget(class_name: str, key: str, field: str = "other_config") -> int:
    """How many ``xmlrpc_text_bytes`` a value of ``key`` may take so that writing it stays within
    xapi's request limit, with our margin."""
    overhead = add_request_bytes(class_name, _PLACEHOLDER_REF, key, "", field)
    return XAPI_MAX_REQUEST_BYTES - REQUEST_MARGIN_BYTES - overhead


def set_map_key(api_class: Any, ref: str, key: str, value: str, field: str = "other_config",
                class_name: str = "VM") -> None:
    """Set one key, tolerating a concurrent writer between remove and add.

    ``api_class`` is e.g. ``session.xenapi.VM`` (``class_name`` its name). A value whose request
    xapi would refuse is refused here, before the old value is removed.
    """
    if add_request_bytes(class_name, ref, key, value, field) > XAPI_MAX_REQUEST_BYTES - REQUEST_MARGIN_BYTES // 2:
        raise XapiError("The value of %s:%s is too large for one xapi request (limit %d bytes)."
                        % (field, key, XAPI_MAX_REQUEST_BYTES), code="XAPI_REQUEST_TOO_LARGE")
    remove = getattr(api_class, "remove_from_" + field)
    add = getattr(api_class, "add_to_" + field)
    for _ in range(5):
        remove(ref, key)
        try:
            add(ref, key, value)
            return
        except XenAPI.Failure as exc:
            if exc.details[0] != "MAP_DUPLICATE_KEY":
                raise
    # Someone keeps writing the same key: the last of their values stands, as if they had won.


def add_map_key_if_absent(api_class: Any, ref: str, key: str, value: str,
                          field: str = "other_config") -> bool:
    """Add a key only when nobody has it yet; True if ours was written (a race-free claim)."""
    try:
        getattr(api_class, "add_to_" + field)(ref, key, value)
        return True
    except XenAPI.Failure as exc:
        if exc.details[0] == "MAP_DUPLICATE_KEY":
            return False
        raise


def remove_map_key(api_class: Any, ref: str, key: str, field: str = "other_config") -> None:
    getattr(api_class, "remove_from_" + field)(ref, key)
