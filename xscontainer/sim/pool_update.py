"""``pool_update.introduce``: an uploaded update ISO (a VDI) becomes a pool_update record after
the checks xapi makes (xen-api ``ocaml/xapi/xapi_pool_update.ml`` ``introduce``,
``parse_update_info``, ``verify``; ``ocaml/xapi/gpg.ml``), in xapi's order and with its errors.

The simulator's keyring is ``DIR/gpg``, its stand-in for xapi's ``/opt/xensource/gpg``. It starts
empty, so every update is refused until a public key is imported there and given ultimate trust,
as on a host whose keyring lacks the signer's key.
"""

import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from typing import Any, List, NamedTuple, Optional

from xscontainer.sim.failures import XapiFailure

GPG_BINARY = "gpg"  # xapi runs /usr/bin/gpg
GPG_TIMEOUT = 60.0
SIGNED_FILES = ("update.xml", "repodata/repomd.xml")
GUIDANCE = ("restartHVM", "restartPV", "restartHost", "restartXAPI")
# xapi's reasons, word for word.
INVALID_PACKAGE = "Please upload a valid package."
NO_UPDATE_XML = "missing update document (update.xml) in the package."
INVALID_SIGNATURE = "Invalid signature"

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INT64_RE = re.compile(r"[+-]?(?:[0-9][0-9_]*|0[xX][0-9a-fA-F][0-9a-fA-F_]*)$")


class UpdateInfo(NamedTuple):
    """What ``parse_update_info`` reads from update.xml."""
    uuid: str
    name_label: str
    name_description: str
    version: str
    key: str  # basename of the ``key`` attribute, "" when absent or empty
    installation_size: int
    after_apply_guidance: List[str]
    enforce_homogeneity: bool


class InvalidSignature(Exception):
    """gpg.ml's ``InvalidSignature``: the status lacks GOODSIG or TRUST_ULTIMATE."""


def _invalid(reason: str) -> XapiFailure:
    return XapiFailure("INVALID_UPDATE", reason)


def _int64(text: str) -> int:
    """OCaml ``Int64.of_string``, with xapi's fallback to 0 for anything it rejects."""
    if not _INT64_RE.match(text):
        return 0
    value = int(text.replace("_", ""), 0 if text.lstrip("+-")[:2].lower() == "0x" else 10)
    return value if -(1 << 63) <= value < (1 << 63) else 0


def _guidance(attrs: dict) -> List[str]:
    # One unknown value empties the whole list (xapi catches Bad_update_info with ``_ -> []``).
    value = attrs.get("after-apply-guidance", "")
    items = value.split(",") if value else []
    return items if all(item in GUIDANCE for item in items) else []


def _is_true(attrs: dict, key: str, default: bool) -> bool:
    value = attrs.get(key, "").lower()
    return True if value in ("true", "1") else False if value in ("false", "0") else default


def parse_update_info(data: bytes) -> UpdateInfo:
    """update.xml's bytes -> UpdateInfo, or the XapiFailure xapi raises for them."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise _invalid(NO_UPDATE_XML) from exc
    if root.tag != "update":
        raise _invalid("missing <update> in update.xml")
    attrs = dict(root.attrib)
    for name in ("uuid", "name-label", "version"):
        if name not in attrs:
            raise _invalid("missing <%s> in update.xml" % name)
    described = [child for child in root if child.tag == "name-description"]
    if not described:
        # xapi's List.find raises Not_found, which reaches the client as an internal error.
        raise XapiFailure("INTERNAL_ERROR", "Not_found")
    description = described[0]
    if len(description) or not description.text:
        raise _invalid("missing <name-description> in update.xml")
    key = attrs.get("key", "")
    return UpdateInfo(uuid=attrs["uuid"], name_label=attrs["name-label"],
                      name_description=description.text, version=attrs["version"],
                      key=os.path.basename(key.rstrip("/")) or key,
                      installation_size=_int64(attrs.get("installation-size", "")),
                      after_apply_guidance=_guidance(attrs),
                      enforce_homogeneity=_is_true(attrs, "enforce-homogeneity", False))


def parse_gpg_status(status: str) -> Optional[str]:
    """gpg.ml ``parse_gpg_status``: the VALIDSIG fingerprint (None without one); InvalidSignature
    unless the status has both GOODSIG and TRUST_ULTIMATE."""
    lines = status.split("\n")

    def has(prefix: str) -> bool:
        return any(line.startswith(prefix) for line in lines)
    if not (has("[GNUPG:] GOODSIG") and has("[GNUPG:] TRUST_ULTIMATE")):
        raise InvalidSignature()
    for line in lines:
        if line.startswith("[GNUPG:] VALIDSIG"):
            words = line.split(" ")
            return words[2] if len(words) > 2 else None
    return None


def keyring_path(home: str) -> str:
    # gpg.ml: pubring.kbx when it exists (gpg 2.1+), else pubring.gpg.
    kbx = os.path.join(home, "pubring.kbx")
    return kbx if os.path.exists(kbx) else os.path.join(home, "pubring.gpg")


def verify_file(home: str, path: str) -> str:
    """``gpg --verify path.asc path`` against the keyring in ``home``, as xapi runs it; the
    signer's fingerprint, or INVALID_UPDATE ["Invalid signature"]."""
    argv = [GPG_BINARY, "--homedir", home, "--no-default-keyring", "--keyring", keyring_path(home),
            "--status-fd", "1", "--verify", path + ".asc", path]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=GPG_TIMEOUT)
        fingerprint = parse_gpg_status(proc.stdout.decode("utf-8", "replace"))
    except (OSError, subprocess.TimeoutExpired, InvalidSignature) as exc:
        raise _invalid(INVALID_SIGNATURE) from exc
    if proc.returncode != 0 or fingerprint is None:
        raise _invalid(INVALID_SIGNATURE)
    return fingerprint


def _iso_files(iso: Any) -> dict:
    """{"repodata/repomd.xml": {facet: path in the ISO}} for every file, named as Linux's iso9660
    mount names them: Rock Ridge, else Joliet, else ISO 9660 lower-cased without ";1"."""
    facet = "rr_path" if iso.has_rock_ridge() else "joliet_path" if iso.has_joliet() else "iso_path"
    files = {}
    for dirpath, _, names in iso.walk(**{facet: "/"}):
        for name in names:
            full = posixpath.join(dirpath, name)
            key = full.lstrip("/")
            if facet == "iso_path":
                key = key.split(";")[0].rstrip(".").lower()
            files[key] = {facet: full}
    return files


def extract(iso_path: str, dest: str) -> None:
    """The signed files and their ``.asc`` from the ISO into ``dest`` (those it has). A VDI that
    is not a readable ISO is INVALID_UPDATE ["Please upload a valid package."], as when xapi's
    mount fails."""
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException
    unreadable = (PyCdlibException, OSError, ValueError, IndexError, KeyError)
    iso = pycdlib.PyCdlib()
    try:
        iso.open(iso_path)
    except unreadable as exc:
        raise _invalid(INVALID_PACKAGE) from exc
    try:
        files = _iso_files(iso)
        for name in SIGNED_FILES + tuple(n + ".asc" for n in SIGNED_FILES):
            if name not in files:
                continue
            target = os.path.join(dest, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                iso.get_file_from_iso_fp(out, **files[name])
    except unreadable as exc:
        raise _invalid(INVALID_PACKAGE) from exc
    finally:
        iso.close()


def extract_update_info(iso_path: str, home: str) -> UpdateInfo:
    """Mount (read), parse update.xml, then verify both signatures: xapi's order."""
    work = tempfile.mkdtemp(prefix="xsc-sim-update-")
    try:
        if not os.path.isfile(iso_path):
            raise _invalid(INVALID_PACKAGE)  # a VDI never written: nothing to mount
        extract(iso_path, work)
        try:
            with open(os.path.join(work, "update.xml"), "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise _invalid(NO_UPDATE_XML) from exc
        info = parse_update_info(data)
        os.makedirs(home, mode=0o700, exist_ok=True)
        for name in SIGNED_FILES:
            verify_file(home, os.path.join(work, name))
        return info
    finally:
        shutil.rmtree(work, ignore_errors=True)


def introduce(api: Any, ctx: Any, vdi: Any) -> str:
    from xscontainer.sim.vdi_http import vdi_path
    with api.db.lock:
        row = api.db.get("VDI", vdi)
        if row["type"] == "cbt_metadata":
            raise XapiFailure("VDI_INCOMPATIBLE_TYPE", vdi, "cbt_metadata")
        iso_path = vdi_path(api, row["uuid"])
    # gpg runs without the database lock: other clients go on meanwhile, as with xapi.
    info = extract_update_info(iso_path, os.path.join(api.config.directory, "gpg"))
    with api.db.lock:
        api.db.get("VDI", vdi)
        existing = api.db.by_uuid["pool_update"].get(info.uuid)
        if existing is not None:
            current = api.db.get("pool_update", existing)["vdi"]
            if not api.db.exists("VDI", current):
                api.db.set("pool_update", existing, "vdi", vdi)
            elif current != vdi:
                raise XapiFailure("UPDATE_ALREADY_EXISTS", info.uuid)
            return existing
        if not _UUID_RE.match(info.uuid):
            # xapi derives the pool_patch uuid with Uuidx.of_string |> Option.get.
            raise XapiFailure("INTERNAL_ERROR", "Invalid argument: option is None")
        return api.db.create("pool_update", {
            "uuid": info.uuid, "name_label": info.name_label,
            "name_description": info.name_description, "version": info.version,
            "installation_size": info.installation_size, "key": info.key,
            "after_apply_guidance": list(info.after_apply_guidance), "vdi": vdi, "hosts": [],
            "other_config": {}, "enforce_homogeneity": info.enforce_homogeneity})


def register(api: Any) -> None:
    api.add("pool_update", "introduce", lambda ctx, *a: introduce(api, ctx, *a), 1,
            has_async=True, locked=False)
