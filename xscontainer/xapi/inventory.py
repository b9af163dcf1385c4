"""Which host am I? dom0's /etc/xensource-inventory says (INSTALLATION_UUID)."""

import os
import shlex
from typing import Dict, Optional

from xscontainer.errors import XapiError

DEFAULT_INVENTORY = "/etc/xensource-inventory"
# Points the monitor, the CLI or the demo at a simulated host; a real dom0 never sets it, and
# plugins never read it (xapi gives them no environment: see xscontainer.xapi.dom0).
INVENTORY_ENV = "XSCONTAINER_INVENTORY"


def inventory_path() -> str:
    return os.environ.get(INVENTORY_ENV) or DEFAULT_INVENTORY


def parse_inventory(text: str) -> Dict[str, str]:
    """Parse the shell-style KEY='value' lines of an inventory file."""
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw)
        except ValueError:
            continue
        result[key.strip()] = words[0] if words else ""
    return result


def read_inventory(path: Optional[str] = None) -> Dict[str, str]:
    path = path or inventory_path()
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_inventory(handle.read())
    except OSError as exc:
        raise XapiError("Cannot read the host inventory %s: %s" % (path, exc),
                        code="INVENTORY_UNREADABLE") from exc


def this_host_uuid(path: Optional[str] = None) -> str:
    uuid = read_inventory(path).get("INSTALLATION_UUID")
    if not uuid:
        raise XapiError("The host inventory %s has no INSTALLATION_UUID." % (path or inventory_path()),
                        code="INVENTORY_UNREADABLE")
    return uuid
