"""What a VM's other_config vouches for (pure): a pin made for this VM or by the original product,
never a clone's copy; a registered fingerprint; never a key seen for the first time."""

import pytest

from xscontainer.errors import ConnectionFailure, XapiError
from xscontainer.hostkeys import (check_host_key, fingerprint, needs_pinning, parse_fingerprint, pin_state,
                                  pinned_elsewhere)
from xscontainer.poolkeys import generate_keypair
from xscontainer.vmsettings import HOSTKEY_FINGERPRINT_KEY, HOSTKEY_KEY, HOSTKEY_VM_KEY

KEY_A = generate_keypair().public_line.split()[1]
KEY_B = generate_keypair().public_line.split()[1]


def test_parse_fingerprint():
    fp = fingerprint(KEY_A)
    assert parse_fingerprint(fp) == fp
    assert parse_fingerprint(" %s= " % fp) == fp  # padding and spaces tolerated
    for bad in ("", "MD5:aa:bb", fp[:-2], "SHA256:!!!", fp.replace("SHA256:", "sha1:")):
        assert parse_fingerprint(bad) is None, bad


def test_no_pin_is_never_trusted_on_first_use():
    with pytest.raises(ConnectionFailure) as info:
        needs_pinning("vm-a", pin_state("vm-a", {}), KEY_A)
    assert info.value.code == "SSH_HOSTKEY_UNVERIFIED" and fingerprint(KEY_A) in info.value.message


def test_legacy_and_bound_pins_vouch():
    legacy = pin_state("vm-a", {HOSTKEY_KEY: KEY_A})
    assert legacy.pinned == KEY_A and not legacy.bound
    assert needs_pinning("vm-a", legacy, KEY_A) is False
    bound = pin_state("vm-a", {HOSTKEY_KEY: KEY_A, HOSTKEY_VM_KEY: "vm-a"})
    assert bound.bound and needs_pinning("vm-a", bound, KEY_A) is False
    with pytest.raises(ConnectionFailure) as info:
        needs_pinning("vm-a", bound, KEY_B)
    assert info.value.code == "SSH_HOSTKEY_MISMATCH"


def test_a_clones_copy_vouches_for_nothing():
    copied = pin_state("vm-clone", {HOSTKEY_KEY: KEY_A, HOSTKEY_VM_KEY: "vm-a",
                                    HOSTKEY_FINGERPRINT_KEY: fingerprint(KEY_A)})
    assert copied.pinned is None and copied.expected is None and copied.copied_for == "vm-a"
    with pytest.raises(ConnectionFailure) as info:
        needs_pinning("vm-clone", copied, KEY_A)
    assert info.value.code == "SSH_HOSTKEY_UNVERIFIED" and "vm-a" in info.value.message


def test_a_registered_fingerprint_admits_exactly_its_key():
    state = pin_state("vm-a", {HOSTKEY_FINGERPRINT_KEY: fingerprint(KEY_A), HOSTKEY_VM_KEY: "vm-a"})
    assert needs_pinning("vm-a", state, KEY_A) is True
    with pytest.raises(ConnectionFailure) as info:
        needs_pinning("vm-a", state, KEY_B)
    assert info.value.code == "SSH_HOSTKEY_MISMATCH"
    # Unbound (not written by our tools, or half of a copy): ignored.
    assert pin_state("vm-a", {HOSTKEY_FINGERPRINT_KEY: fingerprint(KEY_A)}).expected is None


def test_pinned_elsewhere_ignores_copies_templates_and_snapshots():
    records = {
        "r1": {"uuid": "vm-a", "other_config": {HOSTKEY_KEY: KEY_A}},
        "r2": {"uuid": "vm-b", "other_config": {HOSTKEY_KEY: KEY_A, HOSTKEY_VM_KEY: "vm-b"}},
        "r3": {"uuid": "vm-clone", "other_config": {HOSTKEY_KEY: KEY_A, HOSTKEY_VM_KEY: "vm-b"}},
        "r4": {"uuid": "snap", "is_a_snapshot": True, "other_config": {HOSTKEY_KEY: KEY_A}},
        "r5": {"uuid": "tmpl", "is_a_template": True, "other_config": {HOSTKEY_KEY: KEY_A}},
        "r6": {"uuid": "vm-c", "other_config": {HOSTKEY_KEY: KEY_B}},
    }
    assert pinned_elsewhere("vm-a", KEY_A, records) == ["vm-b"]
    assert pinned_elsewhere("vm-new", KEY_A, records) == ["vm-a", "vm-b"]
    assert pinned_elsewhere("vm-new", KEY_B, records) == ["vm-c"]


class _LegacyPin(object):
    """A pin as the original product left it; recording its VM fails (xapi refused)."""

    vm_uuid = "vm-a"

    def __init__(self):
        self.binds = 0

    def state(self):
        return pin_state("vm-a", {HOSTKEY_KEY: KEY_A})

    def bind(self):
        self.binds += 1
        raise XapiError("refused")

    def pin_verified(self, offered):
        raise AssertionError("a legacy pin is kept, never re-pinned")


def test_a_legacy_pin_is_bound_and_a_failure_to_bind_does_not_refuse():
    pin = _LegacyPin()
    check_host_key(pin, KEY_A)
    assert pin.binds == 1
