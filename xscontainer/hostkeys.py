"""Trust-on-first-use pinning of a VM's SSH host key in ``VM.other_config:xscontainer-sshhostkey``.

The value is the original product's format: base64 of the SSH key blob (paramiko's
``PKey.get_base64()``), so pins written by it keep working. A changed key is never accepted
automatically: a rebuilt or cloned VM needs an administrator's decision.
"""

import base64
import binascii
import hashlib
import struct
from typing import Callable, List, Optional

import XenAPI

from xscontainer.errors import ConnectionFailure, XapiError
from xscontainer.vmsettings import HOSTKEY_KEY
from xscontainer.xapi.maps import add_map_key_if_absent

MISMATCH = "SSH_HOSTKEY_MISMATCH"


def reset_command(vm_uuid: str) -> str:
    return "xe vm-param-remove uuid=%s param-name=other-config param-key=%s" % (vm_uuid, HOSTKEY_KEY)


def mismatch_error(vm_uuid: str, pinned: str, offered: str) -> ConnectionFailure:
    return ConnectionFailure(
        "The SSH host key of VM %s changed since it was first seen, so xscontainer refuses to "
        "connect (the VM was rebuilt or cloned, or someone is impersonating it). If the change is "
        "expected, reset the pinned key with: %s" % (vm_uuid, reset_command(vm_uuid)),
        code=MISMATCH, vm_uuid=vm_uuid, pinned=pinned, offered=offered)


def key_type_of_blob(b64: str) -> Optional[str]:
    """The key type named inside a base64 key blob ("ssh-ed25519", "ssh-rsa", ...), or None."""
    try:
        blob = base64.b64decode(b64.encode("ascii"), validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        if length > 64 or len(blob) < 4 + length:
            return None
        return blob[4:4 + length].decode("ascii")
    except (ValueError, struct.error, UnicodeError):
        return None


def fingerprint(b64: str) -> str:
    """The key's fingerprint as OpenSSH prints it (``ssh-keygen -l``): ``SHA256:`` and the
    unpadded base64 of the SHA-256 of the key blob."""
    digest = hashlib.sha256(base64.b64decode(b64.encode("ascii"))).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_fingerprint(text: str) -> Optional[str]:
    """``text`` as ``fingerprint`` writes it (padding tolerated), or None when it is not a
    SHA256 fingerprint (MD5 ones are too weak to pin a key with)."""
    value = text.strip()
    if not value.startswith("SHA256:"):
        return None
    body = value[len("SHA256:"):].rstrip("=")
    try:
        digest = base64.b64decode((body + "=" * (-len(body) % 4)).encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeError):
        return None
    if len(digest) != 32:
        return None
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def describe_key(b64: str) -> str:
    """For people: "ssh-ed25519 SHA256:..."."""
    return "%s %s" % (key_type_of_blob(b64) or "unknown-type", fingerprint(b64))


def host_key_algorithms_for(pinned: Optional[str]) -> Optional[List[str]]:
    """The host key algorithms to offer when a key is pinned, so the server presents the pinned
    key and not another of its keys (the original pinned RSA keys; a modern client would
    otherwise negotiate Ed25519 and see a "change")."""
    kind = key_type_of_blob(pinned) if pinned else None
    if kind is None:
        return None
    if kind == "ssh-rsa":
        return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    return [kind]


class XapiHostKeyPin(object):
    """The pin of one VM, read and claimed through xapi. ``claim`` is race-free: the first
    writer's key wins (``add_to_other_config`` fails for everyone else)."""

    def __init__(self, session_factory: Callable[[], "XenAPI.Session"], vm_uuid: str) -> None:
        self._session_factory = session_factory
        self.vm_uuid = vm_uuid

    def _vm(self, session):
        return session.xenapi.VM.get_by_uuid(self.vm_uuid)

    def get(self) -> Optional[str]:
        session = self._session_factory()
        try:
            return session.xenapi.VM.get_other_config(self._vm(session)).get(HOSTKEY_KEY) or None
        except XenAPI.Failure as exc:
            raise XapiError("Cannot read the pinned SSH host key of VM %s: %s"
                            % (self.vm_uuid, exc.details)) from exc

    def claim(self, offered: str) -> str:
        """Pin ``offered`` unless a key is pinned already; return the pinned key."""
        session = self._session_factory()
        try:
            vm = self._vm(session)
            if add_map_key_if_absent(session.xenapi.VM, vm, HOSTKEY_KEY, offered):
                return offered
            return session.xenapi.VM.get_other_config(vm).get(HOSTKEY_KEY) or offered
        except XenAPI.Failure as exc:
            raise XapiError("Cannot pin the SSH host key of VM %s: %s" % (self.vm_uuid, exc.details)) from exc


def check_host_key(pin, offered: str) -> None:
    """Accept ``offered`` (base64 blob) for the VM of ``pin``: pin it on first contact, raise
    ``SSH_HOSTKEY_MISMATCH`` when it differs from the pinned key."""
    pinned = pin.get()
    if pinned is None:
        pinned = pin.claim(offered)
    if pinned.strip() != offered:
        raise mismatch_error(pin.vm_uuid, pinned, offered)


class MemoryHostKeyPin(object):
    """A pin kept in memory (benchmarks, tools without xapi): same interface as XapiHostKeyPin."""

    def __init__(self, vm_uuid: str, pinned: Optional[str] = None) -> None:
        self.vm_uuid = vm_uuid
        self.pinned = pinned

    def get(self) -> Optional[str]:
        return self.pinned

    def claim(self, offered: str) -> str:
        if self.pinned is None:
            self.pinned = offered
        return self.pinned
