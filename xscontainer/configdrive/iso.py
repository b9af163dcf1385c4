"""ISO9660 images in memory with pycdlib: building the config drive, reading drives and tools ISOs.

No mount, no root and no external tool: the image is bytes in, bytes out.
"""

import glob
import io
import logging
import os
import re
from typing import Dict, Iterable, List, Optional, Tuple

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from xscontainer.configdrive import render
from xscontainer.errors import ConfigDriveError

LOG = logging.getLogger(__name__)

DEFAULT_TOOLS_ISO_DIR = "/opt/xensource/packages/iso"
TOOLS_ISO_PATTERNS = ("*tools-*.iso", "guest-tools.iso")
TOOLS_LINUX_DIR = "Linux"
_INTERCHANGE_LEVEL = 3
_MAX_ISO_NAME = 30  # level 2/3: name + '.' + extension, without ';1'
_MAX_JOLIET_NAME = 64


def _iso_dir_name(name: str) -> str:
    return (re.sub(r"[^A-Z0-9_]", "_", name.upper()) or "_")[:_MAX_ISO_NAME]


def _iso_file_name(name: str, taken: Iterable[str]) -> str:
    """A d-character 8.3-style-but-longer name, unique in its directory (Rock Ridge keeps the real one)."""
    base, dot, ext = name.rpartition(".")
    if not dot:
        base, ext = name, ""
    base = re.sub(r"[^A-Z0-9_]", "_", base.upper()) or "_"
    ext = re.sub(r"[^A-Z0-9_]", "_", ext.upper())[:8]
    room = _MAX_ISO_NAME - len(ext) - 1
    candidate = base[:room]
    counter = 0
    taken = set(taken)
    while "%s.%s" % (candidate, ext) in taken:
        counter += 1
        suffix = "_%d" % counter
        candidate = base[:room - len(suffix)] + suffix
    return "%s.%s" % (candidate, ext)


def build_iso(files: Dict[str, bytes], label: str = render.CONFIG_DRIVE_LABEL) -> bytes:
    """An ISO9660 image (Joliet + Rock Ridge) holding ``files`` (POSIX paths → content)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=_INTERCHANGE_LEVEL, vol_ident=label, joliet=3, rock_ridge="1.09")
    try:
        made_dirs = {"": "/"}  # posix dir → iso9660 dir path
        taken = {}  # type: Dict[str, List[str]]
        for path in sorted(files):
            parts = path.strip("/").split("/")
            parent = ""
            for part in parts[:-1]:
                current = parent + "/" + part if parent else part
                if current not in made_dirs:
                    iso_dir = made_dirs[parent].rstrip("/") + "/" + _iso_dir_name(part)
                    iso.add_directory(iso_path=iso_dir, rr_name=part, joliet_path=_joliet(current),
                                      file_mode=0o40555)
                    made_dirs[current] = iso_dir
                parent = current
            name = parts[-1]
            iso_name = _iso_file_name(name, taken.setdefault(parent, []))
            taken[parent].append(iso_name)
            content = files[path]
            iso.add_fp(io.BytesIO(content), len(content),
                       iso_path=made_dirs[parent].rstrip("/") + "/" + iso_name + ";1",
                       rr_name=name, joliet_path=_joliet(path), file_mode=_file_mode(path))
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    except PyCdlibException as exc:
        raise ConfigDriveError("Cannot build the config drive image: %s" % exc,
                               code="ISO_BUILD_FAILED") from exc
    finally:
        iso.close()


def _joliet(path: str) -> str:
    # Joliet allows 64 characters per name; Rock Ridge keeps the full one.
    return "/" + "/".join(part[:_MAX_JOLIET_NAME] for part in path.strip("/").split("/"))


def _file_mode(path: str) -> int:
    # The agent's programs are run straight from the drive by the guest's unit file.
    if path.startswith(render.AGENT_DIR + "/") and not path.endswith((".rules", ".service")) \
            and not os.path.basename(path).startswith("versions."):
        return 0o100555
    if path == render.USER_DATA:
        # It may carry the VM's SSH host private key: only root (cloud-init, coreos-cloudinit)
        # reads it, not every user of a guest that keeps the drive mounted.
        return 0o100400
    return 0o100444


class IsoReader:
    """Read files of an ISO image held in memory, by the best names it has (RR, Joliet, ISO9660)."""

    def __init__(self, data: bytes, what: str = "image") -> None:
        self._what = what
        self._iso = pycdlib.PyCdlib()
        try:
            self._iso.open_fp(io.BytesIO(data))
        except PyCdlibException as exc:
            raise ConfigDriveError("The %s is not an ISO9660 image: %s" % (what, exc),
                                   code="NOT_A_CONFIG_DRIVE") from exc
        if self._iso.has_rock_ridge():
            self._facility = "rr_path"
        elif self._iso.has_joliet():
            self._facility = "joliet_path"
        else:
            self._facility = "iso_path"

    def close(self) -> None:
        self._iso.close()

    def __enter__(self) -> "IsoReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def volume_label(self) -> str:
        return self._iso.pvd.volume_identifier.decode("ascii", "replace").strip()

    def _names_of(self, record) -> Tuple[str, str]:
        """(name to match, path component to address it with)."""
        if self._facility == "rr_path" and record.rock_ridge is not None:
            name = record.rock_ridge.name().decode("utf-8", "replace")
            return name, name
        if self._facility == "joliet_path":
            name = record.file_identifier().decode("utf-16_be")
            return name, name
        raw = record.file_identifier().decode("ascii", "replace")
        return raw.split(";")[0].rstrip(".").upper(), raw

    def _matches(self, name: str, wanted: str) -> bool:
        if self._facility != "iso_path":
            return name == wanted
        return name in (_iso_dir_name(wanted), _iso_file_name(wanted, []).rstrip("."))

    def _children(self, path: str) -> List[Tuple[str, str, object]]:
        result = []
        try:
            for record in self._iso.list_children(**{self._facility: path}):
                if record is None or record.is_dot() or record.is_dotdot():
                    continue
                name, component = self._names_of(record)
                result.append((name, component, record))
        except PyCdlibException:
            return []
        return result

    def _resolve(self, path: str) -> Optional[Tuple[str, object]]:
        """(path in this image's chosen naming, record) of ``path``, or None."""
        resolved, record = "", None
        for part in [p for p in path.strip("/").split("/") if p]:
            for name, component, child in self._children(resolved or "/"):
                if self._matches(name, part):
                    resolved, record = resolved + "/" + component, child
                    break
            else:
                return None
        return resolved or "/", record

    def list_dir(self, path: str) -> List[str]:
        """Names of the files (not directories) in ``path``; empty when there is no such directory."""
        found = self._resolve(path)
        if found is None:
            return []
        return [name for name, _, record in self._children(found[0]) if not record.is_dir()]

    def read(self, path: str) -> Optional[bytes]:
        """The file's content, or None when the image has no such file."""
        found = self._resolve(path)
        if found is None or found[1] is None or found[1].is_dir():
            return None
        out = io.BytesIO()
        try:
            self._iso.get_file_from_iso_fp(out, **{self._facility: found[0]})
        except PyCdlibException:
            return None
        return out.getvalue()


def read_drive_file(data: bytes, path: str) -> bytes:
    """One file of a config drive image; NOT_A_CONFIG_DRIVE when the image or the file is missing."""
    with IsoReader(data, "config drive") as reader:
        content = reader.read(path)
    if content is None:
        raise ConfigDriveError("The disk is an ISO image but has no %s: it is not a config drive made "
                               "by xscontainer." % path, code="NOT_A_CONFIG_DRIVE")
    return content


def find_tools_iso(iso_dir: Optional[str] = None) -> Optional[str]:
    directory = iso_dir or DEFAULT_TOOLS_ISO_DIR
    candidates = set()
    for pattern in TOOLS_ISO_PATTERNS:
        candidates.update(glob.glob(os.path.join(directory, pattern)))
    return render.newest_tools_iso(candidates)


def read_agent_files(tools_iso_path: str) -> Dict[str, bytes]:
    """The Linux guest agent files of a tools ISO (those of AGENT_FILES it has)."""
    with open(tools_iso_path, "rb") as handle:
        data = handle.read()
    with IsoReader(data, "tools ISO %s" % tools_iso_path) as reader:
        result = {}
        for name in render.AGENT_FILES:
            content = reader.read(TOOLS_LINUX_DIR + "/" + name)
            if content is not None:
                result[name] = content
    return result


def load_agent_files(iso_dir: Optional[str] = None) -> Dict[str, bytes]:
    """Agent files from the newest tools ISO, or none (logged) when the host has no usable one."""
    path = find_tools_iso(iso_dir)
    if path is None:
        LOG.info("No guest tools ISO in %s: the config drive is built without the Linux guest agent",
                 iso_dir or DEFAULT_TOOLS_ISO_DIR)
        return {}
    try:
        files = read_agent_files(path)
    except (OSError, ConfigDriveError) as exc:
        LOG.warning("Cannot read the guest tools ISO %s (%s): the config drive is built without the "
                    "Linux guest agent", path, exc)
        return {}
    if not files:
        LOG.info("The guest tools ISO %s has no Linux agent files: the config drive is built without them",
                 path)
    return files
