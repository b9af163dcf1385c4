"""Per-VM connection settings read from xapi: where the VM's engine is, who to log in as, how.

``choose_addresses`` is pure; ``read_vm_settings`` is the only xapi reader.
"""

from typing import Dict, List, NamedTuple, Optional

from xscontainer.digits import ascii_digits
from xscontainer.errors import InvalidArgument, NotFound, XapiError
from xscontainer.xapi import Failure, NULL_REF, Session

USERNAME_KEY = "xscontainer-username"
MODE_KEY = "xscontainer-mode"
HOSTKEY_KEY = "xscontainer-sshhostkey"
HOSTKEY_VM_KEY = "xscontainer-sshhostkey-vm"  # the VM the pin was made for (clones copy other_config)
HOSTKEY_FINGERPRINT_KEY = "xscontainer-sshhostkey-fingerprint"  # registered, for a key not seen yet
TLS_CLIENT_CERT_KEY = "xscontainer-tls-client-cert"
TLS_CLIENT_KEY_KEY = "xscontainer-tls-client-key"
TLS_CA_CERT_KEY = "xscontainer-tls-ca-cert"
MONITOR_KEY = "xscontainer-monitor"  # "True": the VM is registered for monitoring

DEFAULT_USERNAME = "core"
MODES = ("ssh", "tls")
HOST_INTERNAL_PREFIX = "169.254."


class VmSettings(NamedTuple):
    vm_uuid: str
    vm_ref: str
    addresses: List[str]  # best first; empty when the guest reports none
    username: str
    mode: str  # "ssh" or "tls"
    pinned_hostkey: Optional[str]  # the raw pin (base64 key blob); what vouches is hostkeys.pin_state
    tls_secrets: Dict[str, str]  # other_config key -> secret uuid, for the TLS keys present

    @property
    def address(self) -> Optional[str]:
        return self.addresses[0] if self.addresses else None


def _canonical_octet(text: str) -> bool:
    """0..255 written without leading zeros (some resolvers read "010" as octal 8)."""
    return ascii_digits(text) and len(text) <= 3 and int(text) < 256 and str(int(text)) == text


def choose_addresses(networks: Dict[str, str]) -> List[str]:
    """Order a ``VM_guest_metrics.networks`` map: host-internal (169.254.x) addresses first, then
    other IPv4 ones; IPv6 (contains ':') and empty values dropped, duplicates (``0/ip`` and
    ``0/ipv4/0`` name the same address) removed. Keys sort by interface number so the order is
    stable."""
    def sort_key(key: str):
        parts = key.split("/")
        return [int(p) if ascii_digits(p) else 0 for p in parts], key

    seen = []  # type: List[str]
    for key in sorted(networks, key=sort_key):
        value = (networks[key] or "").strip()
        if not value or ":" in value or value in seen:
            continue
        pieces = value.split(".")
        if len(pieces) != 4 or not all(_canonical_octet(p) for p in pieces):
            continue
        seen.append(value)
    internal = [a for a in seen if a.startswith(HOST_INTERNAL_PREFIX)]
    return internal + [a for a in seen if not a.startswith(HOST_INTERNAL_PREFIX)]


def settings_from_records(vm_uuid: str, vm_ref: str, other_config: Dict[str, str],
                          networks: Dict[str, str]) -> VmSettings:
    """Pure: build the settings from the VM's other_config and its guest networks."""
    mode = (other_config.get(MODE_KEY) or "ssh").strip().lower()
    if mode not in MODES:
        raise InvalidArgument("VM %s has other-config:%s=%r; use 'ssh' or 'tls'."
                              % (vm_uuid, MODE_KEY, other_config.get(MODE_KEY)), code="BAD_VM_SETTING")
    username = (other_config.get(USERNAME_KEY) or "").strip() or DEFAULT_USERNAME
    tls = dict((k, other_config[k]) for k in (TLS_CLIENT_CERT_KEY, TLS_CLIENT_KEY_KEY, TLS_CA_CERT_KEY)
               if other_config.get(k))
    return VmSettings(vm_uuid, vm_ref, choose_addresses(networks), username, mode,
                      other_config.get(HOSTKEY_KEY) or None, tls)


def read_vm_settings(session: Session, vm_uuid: str) -> VmSettings:
    api = session.xenapi
    try:
        vm_ref = api.VM.get_by_uuid(vm_uuid)
    except Failure as exc:
        raise NotFound("There is no VM with uuid %s." % vm_uuid, code="VM_NOT_FOUND") from exc
    try:
        other_config = api.VM.get_other_config(vm_ref)
        metrics = api.VM.get_guest_metrics(vm_ref)
        networks = {}  # type: Dict[str, str]
        if metrics and metrics != NULL_REF:
            try:
                networks = api.VM_guest_metrics.get_networks(metrics)
            except Failure as exc:
                if exc.details[0] != "HANDLE_INVALID":
                    raise
    except Failure as exc:
        raise XapiError("Cannot read the settings of VM %s: %s" % (vm_uuid, exc.details)) from exc
    return settings_from_records(vm_uuid, vm_ref, other_config, networks)
