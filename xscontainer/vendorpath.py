"""Puts the third-party wheels that the RPM carries for xscontainer on ``sys.path``.

dom0's own Python packages are older than ours (or missing), so the RPM unpacks pinned wheels into
a private directory. Entry points (the plugin, the ``/usr/bin`` wrappers) call ``activate()``
before they import anything that needs paramiko, cryptography, XenAPI, PyYAML or pycdlib.
"""

import os
import sys
from typing import List, Optional

VENDOR_DIR = "/usr/lib/xscontainer/vendor"


def activate(vendor_dir: str = VENDOR_DIR, path: Optional[List[str]] = None) -> bool:
    """Prepend ``vendor_dir`` to ``path`` (default ``sys.path``) when it exists.

    Returns True when the directory is (now) on the path. Idempotent. Outside dom0, where the
    directory does not exist, it does nothing and the interpreter's own packages are used.
    """
    target = sys.path if path is None else path
    if not os.path.isdir(vendor_dir):
        return False
    if vendor_dir not in target:
        target.insert(0, vendor_dir)
    return True
