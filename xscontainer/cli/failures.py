"""Errors of the command line and their exit codes (pure; the codes are ``xscontainer.exitcodes``).

A plugin failure reaches us as ``XenAPI.Failure`` with details
``[XENAPI_PLUGIN_FAILURE, fn, CODE, message]``; it becomes the matching ``XSContainerError`` so
that one table maps every error to an exit code.
"""

import re
from typing import Sequence

from xscontainer.errors import (ConnectionFailure, InvalidArgument, NotFound, XapiError,
                                XSContainerError)
from xscontainer.exitcodes import (EXIT_FAILED, EXIT_NOT_FOUND, EXIT_PERMISSION, EXIT_UNREACHABLE, EXIT_USAGE,
                                   EXIT_XAPI)

PLUGIN_FAILURE = "XENAPI_PLUGIN_FAILURE"
_CODE_RE = re.compile(r"\A[A-Z][A-Z0-9_]*\Z")

# Codes meaning "we cannot get to the VM's engine" (transport, diagnosis and monitor codes).
UNREACHABLE_CODES = frozenset([
    "VM_UNREACHABLE", "NO_ADDRESS", "PORT_CLOSED", "ADDRESS_UNREACHABLE", "SSH_HANDSHAKE_FAILED",
    "SSH_AUTH_FAILED", "SSH_HOSTKEY_MISMATCH", "SSH_HOSTKEY_UNVERIFIED", "SSH_HOSTKEY_DUPLICATE",
    "NO_DOCKER_SOCKET", "DOCKER_SOCKET_DENIED",
    "ENGINE_NOT_ANSWERING", "ENGINE_UNREACHABLE", "ENGINE_TIMEOUT", "CONNECTION_LOST",
    "TLS_NOT_CONFIGURED", "TLS_VERIFY_FAILED", "TLS_HANDSHAKE_FAILED", "API_TOO_OLD", "API_TOO_NEW",
    "POOL_KEY_MISSING", "POOL_KEY_INVALID", "VM_NOT_RUNNING",
])
XAPI_CODES = frozenset(["XAPI_UNREACHABLE", "XAPI_AUTH_FAILED", "XAPI_CERTIFICATE_UNVERIFIED",
                        "INVENTORY_UNREADABLE"])
USAGE_CODES = frozenset(["INVALID_ARGUMENT", "USAGE", "ARGUMENT_TOO_LARGE"])
PERMISSION_CODE = "RBAC_PERMISSION_DENIED"
_ROLES_RE = re.compile(r"Roles with this permission: ([^)]*)\)")


def is_not_found_code(code: str) -> bool:
    return code.endswith("_NOT_FOUND") or code.endswith("_AMBIGUOUS") or code in (
        "NOT_FOUND", "HANDLE_INVALID", "UUID_INVALID", "NOT_A_CONFIG_DRIVE")


def exit_code(exc: XSContainerError) -> int:
    code = exc.code
    if code == PERMISSION_CODE:
        return EXIT_PERMISSION
    if code in UNREACHABLE_CODES:
        return EXIT_UNREACHABLE
    if code in XAPI_CODES:
        return EXIT_XAPI
    if is_not_found_code(code):
        return EXIT_NOT_FOUND
    if code in USAGE_CODES:
        return EXIT_USAGE
    if isinstance(exc, ConnectionFailure):
        return EXIT_UNREACHABLE
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, InvalidArgument):
        return EXIT_USAGE
    return EXIT_FAILED


def permission_message(parts: Sequence[str], doing: str) -> str:
    """xapi's ``RBAC_PERMISSION_DENIED [permission, text]`` (rbac.ml) as a sentence."""
    permission = parts[1] if len(parts) > 1 else "?"
    roles = _ROLES_RE.search(parts[2] if len(parts) > 2 else "")
    needs = roles.group(1) if roles and roles.group(1).strip() else "(xapi did not say)"
    return ("Your xapi user may not do this (%s): it needs permission %s, which only these roles "
            "have: %s. Log in as a user with one of them (root has every permission), or ask a "
            "pool administrator." % (doing, permission, needs))


def from_xapi_failure(details: Sequence[object], doing: str) -> XSContainerError:
    """The error for a ``XenAPI.Failure``'s details, raised while ``doing`` (a phrase)."""
    parts = [str(d) for d in details] or ["INTERNAL_ERROR"]
    if parts[0] == PLUGIN_FAILURE and len(parts) >= 4 and _CODE_RE.match(parts[2]):
        code, message = parts[2], parts[3]
    elif parts[0] == PLUGIN_FAILURE:
        # The plugin did not run to its own error handling (crash, signal, bad output).
        code = "PLUGIN_FAILED"
        message = "The xscontainer plugin failed while %s: %s." % (
            doing, "; ".join(p.strip() for p in parts[1:] if p.strip())[:500] or "no detail")
    elif parts[0] == PERMISSION_CODE:
        code, message = PERMISSION_CODE, permission_message(parts, doing)
    else:
        code = parts[0]
        message = "xapi refused %s: %s." % (doing, " ".join(parts))
    if code in UNREACHABLE_CODES:
        cls = ConnectionFailure
    elif is_not_found_code(code):
        cls = NotFound
    elif code in USAGE_CODES:
        cls = InvalidArgument
    else:
        cls = XapiError if parts[0] != PLUGIN_FAILURE else XSContainerError
    return cls(message, code=code, xapi_error=parts)
