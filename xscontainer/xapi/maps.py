"""Key-by-key writes of xapi map fields (other_config): never read-modify-write a whole map.

Other writers (XenCenter, other hosts, administrators) write the same maps; a whole-map write
from a stale read would lose their keys.
"""

from typing import Any

import XenAPI


def set_map_key(api_class: Any, ref: str, key: str, value: str, field: str = "other_config") -> None:
    """Set one key, tolerating a concurrent writer between remove and add.

    ``api_class`` is e.g. ``session.xenapi.VM``.
    """
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
