"""Pack metadata as bytes: the update ISO's ``update.xml`` and comps file (xapi.md §14.2).

Strings are assembled by hand rather than with ElementTree so the output (attribute order,
quoting, layout) is identical on Python 3.6 and 3.11: the ISO must be reproducible.
"""

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from xscontainer.errors import PackagingError

# The original product's update uuid: keeping it makes the new pack an upgrade of the old one.
UPDATE_UUID = "df95997f-0332-4f1e-afd6-dcec74940b82"
LABEL = "xscontainer"
DESCRIPTION = "XenServer Container Management"
# Citrix Hypervisor 8.2 "Stockholm" is platform 3.2.0, the first dom0 with Python 3.6 and the
# python3 plugin stack; XenServer 8 and XCP-ng 8.3 are later.
MIN_PLATFORM_VERSION = "3.2.0"

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LABEL_RE = re.compile(r"[\w-]+$")
_RPM_VERSION_RE = re.compile(r"[A-Za-z0-9._+~^]+$")
_VERSION_ASSIGN_RE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def read_version(init_py: str) -> str:
    """``__version__`` from the text of ``xscontainer/__init__.py`` (the one place it is set)."""
    match = _VERSION_ASSIGN_RE.search(init_py)
    if not match:
        raise PackagingError("xscontainer/__init__.py sets no __version__.", code="NO_VERSION")
    version = match.group(1)
    if not _RPM_VERSION_RE.match(version):
        raise PackagingError("__version__ %r cannot be an RPM version." % version,
                             code="BAD_VERSION", version=version)
    return version


def _check(pattern, value: str, what: str) -> str:
    if not pattern.match(value):
        raise PackagingError("Invalid %s: %r." % (what, value), code="INVALID_METADATA")
    return value


def _xml_decl() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n'


def update_xml(uuid: str, label: str, version: str, description: str,
               installation_size: int, after_apply: Optional[str] = None) -> bytes:
    """``update.xml`` as read by xapi's ``pool_update`` (attributes as ``build-update`` writes)."""
    _check(_UUID_RE, uuid, "update uuid")
    _check(_LABEL_RE, label, "update label")
    if installation_size < 0:
        raise PackagingError("Negative installation size.", code="INVALID_METADATA")
    attrs = [("name-label", label), ("version", version), ("uuid", uuid),
             ("installation-size", str(installation_size))]
    if after_apply:
        attrs.append(("after-apply-guidance", after_apply))
    return (_xml_decl() + "<update%s>\n  <name-description>%s</name-description>\n</update>\n" % (
        _attrs(attrs), escape(description))).encode("utf-8")


def groups_xml(label: str) -> bytes:
    """The comps file of the update repo: group ``update`` requires ``update-<label>``."""
    _check(_LABEL_RE, label, "update label")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">\n'
            "<comps>\n"
            "  <group>\n"
            "    <id>update</id>\n"
            "    <default>false</default>\n"
            "    <uservisible>true</uservisible>\n"
            "    <name>%(label)s</name>\n"
            "    <description></description>\n"
            "    <packagelist>\n"
            '      <packagereq type="mandatory">update-%(label)s</packagereq>\n'
            "    </packagelist>\n"
            "  </group>\n"
            "</comps>\n" % {"label": escape(label)}).encode("utf-8")


def md5_line(md5: str, basename: str) -> bytes:
    """A ``md5sum``-compatible line, as the original's ``<name>.iso.md5``."""
    return ("%s  %s\n" % (md5, basename)).encode("utf-8")


def _attrs(pairs: Sequence[Tuple[str, str]]) -> str:
    return "".join(" %s=%s" % (key, quoteattr(value)) for key, value in pairs)


# -- vendored wheels ------------------------------------------------------------------------

def normalize_name(name: str) -> str:
    """PEP 503 name, with ``_`` as wheel filenames spell it."""
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_pins(lines: Iterable[str]) -> Dict[str, Tuple[str, Optional[str]]]:
    """``name[==version]`` lines (comments allowed) → {normalized: (name, version or None)}."""
    pins = {}  # type: Dict[str, Tuple[str, Optional[str]]]
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([^\s;]+))?\s*$", line)
        if not match:
            raise PackagingError("Cannot parse requirement line %r." % line, code="BAD_PIN")
        pins[normalize_name(match.group(1))] = (match.group(1), match.group(2))
    return pins


def vendor_pins(vendor_lines: Iterable[str], requirement_lines: Iterable[str]) -> List[Tuple[str, str]]:
    """The exact (name, version) list to vendor.

    ``vendor_lines`` name what the pack carries; a name without ``==`` takes its version from the
    interpreter's requirements file (``requirements/py36.txt``), so versions have one source.
    """
    known = parse_pins(requirement_lines)
    result = []
    for key, (name, version) in sorted(parse_pins(vendor_lines).items()):
        if version is None:
            version = known.get(key, (name, None))[1]
        if version is None:
            raise PackagingError("No pinned version for vendored package %s." % name,
                                 code="BAD_PIN", package=name)
        result.append((name, version))
    return result


def wheel_matches(filename: str, name: str, version: str) -> bool:
    """Whether a wheel file name is ``name``'s wheel at exactly ``version``."""
    if not filename.endswith(".whl"):
        return False
    parts = filename[:-4].split("-")
    return len(parts) >= 5 and normalize_name(parts[0]) == normalize_name(name) \
        and parts[1] == version
