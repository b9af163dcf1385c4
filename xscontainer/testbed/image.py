"""The testbed's container image: a root file system holding Debian's static busybox, as a tar.

Loaded into every VM's engine with `docker import`, so no registry is ever needed.
"""

import io
import os
import tarfile

from xscontainer.testbed import config
from xscontainer.testbed.system import TestbedError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
_MTIME = 1700000000  # fixed, so the tar (and the imported layer) is the same every time


def find_busybox() -> str:
    """Path of a statically linked busybox (a dynamic one would not run in an empty image)."""
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                head = handle.read(1 << 16)
            # A dynamic ELF names its interpreter in a PT_INTERP segment.
            if b"/lib64/ld-linux" in head or b"/lib/ld-linux" in head or b"ld-musl" in head:
                continue
            return path
    raise TestbedError("No static busybox found (%s); install Debian's busybox-static."
                       % ", ".join(BUSYBOX_CANDIDATES), code="TESTBED_MISSING_TOOL")


def _entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.mtime = _MTIME
    return info


def write_rootfs_tar(busybox_path: str, dest: str) -> None:
    """Write the image's root file system as a tar at dest (atomically)."""
    with open(busybox_path, "rb") as handle:
        binary = handle.read()
    tmp = dest + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for directory in ("bin", "etc", "proc", "sys", "dev", "tmp", "www"):
            tar.addfile(_entry(directory, tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755))
        tar.addfile(_entry("bin/busybox", tarfile.REGTYPE, 0o755, len(binary)), io.BytesIO(binary))
        for applet in config.BUSYBOX_APPLETS:
            tar.addfile(_entry("bin/" + applet, tarfile.SYMTYPE, 0o777, link="busybox"))
        for name, text in (("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n"),
                           ("etc/group", b"root:x:0:\n"),
                           ("www/index.html", config.WEB_INDEX)):
            tar.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(text)), io.BytesIO(text))
    os.replace(tmp, dest)
