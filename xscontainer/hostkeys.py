"""The SSH host key that vouches for a VM: ``VM.other_config:xscontainer-sshhostkey``.

The address dom0 dials comes from the guest (``VM_guest_metrics``), so the host key is what makes
a connection for VM A reach VM A only. A key is therefore never trusted on first use: it is pinned
only by a dom0-side act (prepare-vm after the administrator verified it; ``xscontainer register
VM --host-key-fingerprint``, which records the fingerprint the first connection must match; the
testbed), and pins written by the original product (its format: base64 of the key blob, paramiko's
``PKey.get_base64()``) are kept. ``xscontainer-sshhostkey-vm`` names the VM a pin was made for:
``VM.clone`` copies other_config, and a clone's copy must not vouch for the clone. A changed key
is never accepted automatically.
"""

import base64
import binascii
import hashlib
import logging
import struct
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from xscontainer.errors import ConnectionFailure, XapiError
from xscontainer.vmsettings import HOSTKEY_FINGERPRINT_KEY, HOSTKEY_KEY, HOSTKEY_VM_KEY
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.maps import add_map_key_if_absent, remove_map_key, set_map_key
from xscontainer.xapi.session import SessionSource

LOG = logging.getLogger(__name__)

MISMATCH = "SSH_HOSTKEY_MISMATCH"
UNVERIFIED = "SSH_HOSTKEY_UNVERIFIED"
DUPLICATE = "SSH_HOSTKEY_DUPLICATE"


def reset_command(vm_uuid: str) -> str:
    return "xe vm-param-remove uuid=%s param-name=other-config param-key=%s" % (vm_uuid, HOSTKEY_KEY)


def mismatch_error(vm_uuid: str, pinned: str, offered: str) -> ConnectionFailure:
    return ConnectionFailure(
        "The SSH host key of VM %s is not the one pinned for it (%s answered), so xscontainer refuses "
        "to connect (the VM was rebuilt and its key changed, or something else answers at the address its "
        "guest reports). "
        "If the change is expected, check the new key on the VM's console and pin it with xscontainer "
        "register %s --host-key-fingerprint %s, or reset the pinned key with: %s"
        % (vm_uuid, describe_key(offered), vm_uuid, fingerprint(offered), reset_command(vm_uuid)),
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


class PinState(NamedTuple):
    pinned: Optional[str]  # the key blob that vouches for this VM
    expected: Optional[str]  # a fingerprint an administrator gave for a key not seen yet
    copied_for: Optional[str]  # the VM a copied (cloned) pin was made for: it vouches for nothing here
    bound: bool  # the pin names this VM (False: a legacy pin, from the original or an older version)


def pin_state(vm_uuid: str, other_config: Dict[str, str]) -> PinState:
    """Pure: what the VM's other_config vouches for."""
    bound_to = (other_config.get(HOSTKEY_VM_KEY) or "").strip()
    if bound_to and bound_to != vm_uuid:
        return PinState(None, None, bound_to, False)
    pinned = (other_config.get(HOSTKEY_KEY) or "").strip() or None
    # Only our tools write a fingerprint, always with the binding: an unbound one may be a copy.
    expected = parse_fingerprint(other_config.get(HOSTKEY_FINGERPRINT_KEY) or "") if bound_to else None
    return PinState(pinned, expected, None, bool(bound_to))


def unverified_error(vm_uuid: str, offered: str, copied_for: Optional[str] = None) -> ConnectionFailure:
    why = ("its pinned key was copied from VM %s (a clone keeps its source's other-config, and "
           "usually its host keys: give the clone new ones with ssh-keygen -A after removing "
           "/etc/ssh/ssh_host_*)" % copied_for) if copied_for else "no SSH host key is pinned for it"
    return ConnectionFailure(
        "xscontainer does not connect to VM %s: %s, and the address it dials is reported by the guest, "
        "so it could be another VM's. The host key that answered is %s. If that is the key of VM %s "
        "(on its console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), pin it with: "
        "xscontainer register %s --host-key-fingerprint %s (or run xscontainer-prepare-vm)."
        % (vm_uuid, why, describe_key(offered), vm_uuid, vm_uuid, fingerprint(offered)),
        code=UNVERIFIED, vm_uuid=vm_uuid, offered=offered)


def fingerprint_mismatch_error(vm_uuid: str, expected: str, offered: str) -> ConnectionFailure:
    return ConnectionFailure(
        "The SSH host key that answered for VM %s is %s, not %s as registered, so xscontainer refuses "
        "to connect (another machine answers at the address the guest reports, or the fingerprint is "
        "of another of its keys)." % (vm_uuid, describe_key(offered), expected),
        code=MISMATCH, vm_uuid=vm_uuid, expected=expected, offered=offered)


def needs_pinning(vm_uuid: str, state: PinState, offered: str) -> bool:
    """Pure: may ``offered`` be used for the VM? True when it matches the fingerprint an
    administrator registered (pin it now), False when it is the pinned key; raises otherwise."""
    if state.pinned is not None:
        if state.pinned != offered:
            raise mismatch_error(vm_uuid, state.pinned, offered)
        return False
    if state.expected is not None:
        if fingerprint(offered) != state.expected:
            raise fingerprint_mismatch_error(vm_uuid, state.expected, offered)
        return True
    raise unverified_error(vm_uuid, offered, state.copied_for)


def pinned_elsewhere(vm_uuid: str, key_b64: str, records: Dict[str, Dict[str, Any]]) -> List[str]:
    """Pure: the uuids of the other VMs (not templates or snapshots) for which ``key_b64`` vouches."""
    found = []
    for record in records.values():
        uuid = record.get("uuid")
        if uuid == vm_uuid or record.get("is_a_template") or record.get("is_a_snapshot"):
            continue
        if pin_state(uuid, record.get("other_config") or {}).pinned == key_b64:
            found.append(uuid)
    return sorted(found)


def duplicate_error(vm_uuid: str, key_b64: str, others: List[str]) -> ConnectionFailure:
    return ConnectionFailure(
        "The SSH host key %s is pinned for VM %s already, so it cannot vouch for VM %s too: two VMs "
        "with one host key cannot be told apart (a clone keeps its source's keys: give it new ones "
        "with ssh-keygen -A after removing /etc/ssh/ssh_host_*)."
        % (describe_key(key_b64), ", ".join(others), vm_uuid),
        code=DUPLICATE, vm_uuid=vm_uuid, others=others)


class XapiHostKeyPin(object):
    """The pin of one VM, read and written through xapi."""

    def __init__(self, sessions: SessionSource, vm_uuid: str,
                 other_config: Optional[Callable[[], Optional[Dict[str, str]]]] = None) -> None:
        """``other_config``: the VM's other_config as the caller already knows it from xapi
        (the monitor's event view), or None when it does not; reading the pin then costs no
        xapi call (two per read otherwise, two reads per connection: at a thousand VMs that
        was 4,000 calls of the start-up). Writing a pin always goes to xapi."""
        self._sessions = sessions
        self.vm_uuid = vm_uuid
        self._known = other_config

    def _vm(self, session):
        return session.xenapi.VM.get_by_uuid(self.vm_uuid)

    def state(self) -> PinState:
        known = self._known() if self._known is not None else None
        if known is not None:
            return pin_state(self.vm_uuid, known)
        try:
            with self._sessions() as session:
                return pin_state(self.vm_uuid, session.xenapi.VM.get_other_config(self._vm(session)))
        except Failure as exc:
            raise XapiError("Cannot read the pinned SSH host key of VM %s: %s"
                            % (self.vm_uuid, exc.details)) from exc

    def get(self) -> Optional[str]:
        return self.state().pinned

    def pin_verified(self, offered: str) -> None:
        """Pin ``offered``, which a dom0-side act verified. Refused (``SSH_HOSTKEY_DUPLICATE``) when
        it vouches for another VM; a key pinned meanwhile by someone else wins (mismatch)."""
        try:
            with self._sessions() as session:
                self._pin(session, offered)
        except Failure as exc:
            raise XapiError("Cannot pin the SSH host key of VM %s: %s" % (self.vm_uuid, exc.details)) from exc

    def _pin(self, session: Session, offered: str) -> None:
        api = session.xenapi
        others = pinned_elsewhere(self.vm_uuid, offered, api.VM.get_all_records())
        if others:
            raise duplicate_error(self.vm_uuid, offered, others)
        vm = self._vm(session)
        state = pin_state(self.vm_uuid, api.VM.get_other_config(vm))
        if state.pinned is not None and state.pinned != offered:
            raise mismatch_error(self.vm_uuid, state.pinned, offered)
        if state.copied_for is not None:  # a clone's copy: replace it
            remove_map_key(api.VM, vm, HOSTKEY_KEY)
        if not add_map_key_if_absent(api.VM, vm, HOSTKEY_KEY, offered):
            pinned = (api.VM.get_other_config(vm).get(HOSTKEY_KEY) or "").strip()
            if pinned != offered:
                raise mismatch_error(self.vm_uuid, pinned, offered)
        set_map_key(api.VM, vm, HOSTKEY_VM_KEY, self.vm_uuid)
        remove_map_key(api.VM, vm, HOSTKEY_FINGERPRINT_KEY)

    def bind(self) -> None:
        """Name this VM in a legacy pin, so that a later clone's copy is told apart."""
        try:
            with self._sessions() as session:
                add_map_key_if_absent(session.xenapi.VM, self._vm(session), HOSTKEY_VM_KEY, self.vm_uuid)
        except Failure as exc:
            raise XapiError("Cannot record the VM of the SSH host key of VM %s: %s"
                            % (self.vm_uuid, exc.details)) from exc


def check_host_key(pin, offered: str) -> None:
    """Accept ``offered`` (base64 blob) for the VM of ``pin`` only when a dom0-side act vouches for
    it; never pin on first use (``SSH_HOSTKEY_UNVERIFIED``, ``SSH_HOSTKEY_MISMATCH``)."""
    state = pin.state()
    if needs_pinning(pin.vm_uuid, state, offered):
        pin.pin_verified(offered)
    elif not state.bound:
        try:
            pin.bind()
        except XapiError as exc:  # only protects against later clones: no reason to refuse now
            LOG.warning("VM %s: could not record which VM its pinned SSH host key belongs to: %s",
                        pin.vm_uuid, exc)


class MemoryHostKeyPin(object):
    """A pin kept in memory (benchmarks, tools without xapi): same interface as XapiHostKeyPin.
    ``pinned`` is the key the caller verified; None refuses every key."""

    def __init__(self, vm_uuid: str, pinned: Optional[str] = None) -> None:
        self.vm_uuid = vm_uuid
        self.pinned = pinned

    def state(self) -> PinState:
        return PinState(self.pinned, None, None, True)

    def get(self) -> Optional[str]:
        return self.pinned

    def pin_verified(self, offered: str) -> None:
        if self.pinned is not None and self.pinned != offered:
            raise mismatch_error(self.vm_uuid, self.pinned, offered)
        self.pinned = offered

    def bind(self) -> None:
        pass
