"""The guests' configuration formats, pure: telling cloud-config, Ignition and scripts apart,
parsing them, whether they authorize the pool key, adding it (Ignition) and the VM's SSH host key
(both), and reading back what a guest would apply. ``render`` builds a drive's user_data with
them."""

import base64
import json
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import yaml

from xscontainer.configdrive import bounds
from xscontainer.errors import ConfigDriveError

META_DATA_KEY_NAME = "xscontainer"
IGNITION_USER = "core"

FORMAT_CLOUD_CONFIG = "cloud-config"
FORMAT_IGNITION = "ignition"
FORMAT_SCRIPT = "script"

# Where sshd finds its Ed25519 host key on every guest we target (cloud-init's ssh_keys writes it
# there too; coreos-cloudinit and Ignition only know files).
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
HOST_KEY_MODES = (0o600, 0o644)  # private, public: what ssh-keygen and sshd expect


class HostKey(NamedTuple):
    """An SSH host key pair dom0 chose for the VM. ``private_openssh`` is a secret: it goes into
    the drive's user_data and nowhere else (never a log line, never a file in dom0)."""
    private_openssh: str
    public_line: str  # "ssh-ed25519 base64 comment"


def key_base64(public_line: str) -> str:
    parts = public_line.split()
    if len(parts) < 2:
        raise ConfigDriveError("The pool public key %r is not an OpenSSH public key line." % public_line,
                               code="POOL_KEY_INVALID")
    return parts[1]


def key_without_comment(public_line: str) -> str:
    return " ".join(public_line.split()[:2])


def detect_format(text: str) -> str:
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        return FORMAT_IGNITION
    first_line = stripped.splitlines()[0].strip() if stripped else ""
    if first_line.lower().startswith("#cloud-config"):
        return FORMAT_CLOUD_CONFIG
    if first_line.startswith("#!"):
        return FORMAT_SCRIPT
    raise ConfigDriveError("The configuration must be a cloud-config (first line '#cloud-config'), "
                           "an Ignition JSON document, or a script starting with '#!'.",
                           code="INVALID_CONFIGURATION")


def parse_cloud_config(text: str) -> Dict[str, Any]:
    try:
        data = bounds.load_yaml(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = " at line %d, column %d" % (mark.line + 1, mark.column + 1)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigDriveError("The cloud-config is not valid YAML%s: %s." % (where, problem),
                               code="INVALID_CONFIGURATION") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigDriveError("The cloud-config must be a YAML mapping (key: value lines), not a %s."
                               % type(data).__name__, code="INVALID_CONFIGURATION")
    return data


def parse_ignition(text: str) -> Dict[str, Any]:
    try:
        data = bounds.load_json(text, "Ignition configuration")
    except ValueError as exc:
        raise ConfigDriveError("The Ignition configuration is not valid JSON: %s." % exc,
                               code="INVALID_CONFIGURATION") from exc
    if not isinstance(data, dict):
        raise ConfigDriveError("The Ignition configuration must be a JSON object.",
                               code="INVALID_CONFIGURATION")
    ignition = data.get("ignition")
    if not isinstance(ignition, dict) or not isinstance(ignition.get("version"), str):
        raise ConfigDriveError("The Ignition configuration needs \"ignition\": {\"version\": ...}.",
                               code="INVALID_CONFIGURATION")
    passwd = data.get("passwd", {})
    if not isinstance(passwd, dict) or not isinstance(passwd.get("users", []), list):
        raise ConfigDriveError("The Ignition configuration's passwd.users must be a list.",
                               code="INVALID_CONFIGURATION")
    return data


def _entry_has_key(entry: Any, b64: str) -> bool:
    return isinstance(entry, str) and b64 in entry.split()


def _keys_of(mapping: Dict[str, Any], *names: str) -> List[Any]:
    for name in names:
        value = mapping.get(name)
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [value]
    return []


def cloud_config_authorizes(data: Dict[str, Any], b64: str) -> bool:
    """True when the parsed cloud-config authorizes the key (top level or any user)."""
    keys = _keys_of(data, "ssh_authorized_keys", "ssh-authorized-keys")
    users = data.get("users")
    if isinstance(users, list):
        for user in users:
            if isinstance(user, dict):
                keys.extend(_keys_of(user, "ssh_authorized_keys", "ssh-authorized-keys"))
    return any(_entry_has_key(entry, b64) for entry in keys)


def merge_ignition_key(data: Dict[str, Any], public_line: str) -> Dict[str, Any]:
    """Add the pool key to the ``core`` user's sshAuthorizedKeys (a new dict; input untouched)."""
    result = json.loads(json.dumps(data))
    passwd = result.setdefault("passwd", {})
    users = passwd.setdefault("users", [])
    b64 = key_base64(public_line)
    line = key_without_comment(public_line) + " " + META_DATA_KEY_NAME
    for user in users:
        if isinstance(user, dict) and user.get("name") == IGNITION_USER:
            keys = user.get("sshAuthorizedKeys")
            if not isinstance(keys, list):
                keys = []
                user["sshAuthorizedKeys"] = keys
            if not any(_entry_has_key(entry, b64) for entry in keys):
                keys.append(line)
            return result
    users.append({"name": IGNITION_USER, "sshAuthorizedKeys": [line]})
    return result


def _host_key_files(host_key: HostKey) -> List[Tuple[str, str, int]]:
    """(path, content, mode) of the host key files, as ssh-keygen would leave them."""
    return [(HOST_KEY_PATH, host_key.private_openssh, HOST_KEY_MODES[0]),
            (HOST_KEY_PATH + ".pub", host_key.public_line.strip() + "\n", HOST_KEY_MODES[1])]


def _octal_permissions(entry: Any) -> Any:
    """A write_files entry whose ``permissions`` YAML 1.1 read as an integer (``0644`` unquoted is
    420) gets it back as the octal string it meant: cloud-init reads both, coreos-cloudinit parses
    the text as octal, so a re-written "420" would mean 0o420 there."""
    if isinstance(entry, dict) and isinstance(entry.get("permissions"), int) \
            and not isinstance(entry.get("permissions"), bool):
        entry = dict(entry, permissions="0%o" % entry["permissions"])
    return entry


class _CloudConfigDumper(yaml.SafeDumper):
    """Safe YAML with multi-line text (keys, unit files) as literal blocks, readable on the drive."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CloudConfigDumper.add_representer(str, _represent_text)


def add_host_key_cloud_config(data: Dict[str, Any], host_key: HostKey) -> str:
    """The cloud-config text with the host key (a new document; ``data`` untouched).

    cloud-init writes ``ssh_keys`` (its ssh module, which first deletes every host key the image
    had, runs after write_files, and writes the same key); coreos-cloudinit (Flatcar) ignores
    ``ssh_keys`` and writes the ``write_files`` entries, on every boot. A file of the user's at the
    same path is replaced: sshd must serve the key dom0 pins. Comments are not kept (the
    configuration as given stays on the drive as ``user_data.template``)."""
    result = dict(data)
    ssh_keys = dict(data["ssh_keys"]) if isinstance(data.get("ssh_keys"), dict) else {}
    ssh_keys["ed25519_private"] = host_key.private_openssh
    ssh_keys["ed25519_public"] = host_key.public_line.strip()
    result["ssh_keys"] = ssh_keys
    ours = _host_key_files(host_key)
    paths = set(path for path, _, _ in ours)
    given = data.get("write_files") if isinstance(data.get("write_files"), list) else []
    kept = [_octal_permissions(entry) for entry in given
            if not (isinstance(entry, dict) and entry.get("path") in paths)]
    result["write_files"] = kept + [{"path": path, "content": content, "owner": "root:root",
                                     "permissions": "0%o" % mode} for path, content, mode in ours]
    return "#cloud-config\n" + yaml.dump(result, Dumper=_CloudConfigDumper, default_flow_style=False,
                                          sort_keys=False, allow_unicode=True, width=4096)


def _data_url(content: str) -> str:
    return "data:;base64," + base64.b64encode(content.encode("utf-8")).decode("ascii")


def add_host_key_ignition(data: Dict[str, Any], host_key: HostKey) -> Dict[str, Any]:
    """``storage.files`` entries for the host key (a new dict; input untouched). Ignition 2.x
    names the file system ("root") and cannot overwrite; 3.x must be told it may."""
    result = json.loads(json.dumps(data))
    storage = result.setdefault("storage", {})
    if not isinstance(storage, dict) or not isinstance(storage.setdefault("files", []), list):
        raise ConfigDriveError("The Ignition configuration's storage.files must be a list.",
                               code="INVALID_CONFIGURATION")
    ours = _host_key_files(host_key)
    paths = set(path for path, _, _ in ours)
    files = [entry for entry in storage["files"]
             if not (isinstance(entry, dict) and entry.get("path") in paths)]
    version_2 = result["ignition"]["version"].startswith("2.")
    for path, content, mode in ours:
        entry = {"path": path, "mode": mode, "contents": {"source": _data_url(content)}}
        entry.update({"filesystem": "root"} if version_2 else {"overwrite": True})
        files.append(entry)
    storage["files"] = files
    return result


def guest_authorized_keys(user_data: str, user: str = IGNITION_USER) -> List[str]:
    """The SSH keys a guest would authorize for ``user`` from this user_data (what the testbed
    applies to play the guest): cloud-config top level and ``users``, or Ignition ``passwd``."""
    fmt = detect_format(user_data)
    keys = []  # type: List[Any]
    if fmt == FORMAT_IGNITION:
        for entry in parse_ignition(user_data).get("passwd", {}).get("users", []):
            if isinstance(entry, dict) and entry.get("name") == user:
                keys.extend(_keys_of(entry, "sshAuthorizedKeys"))
    elif fmt == FORMAT_CLOUD_CONFIG:
        data = parse_cloud_config(user_data)
        keys.extend(_keys_of(data, "ssh_authorized_keys", "ssh-authorized-keys"))
        users = data.get("users")
        for entry in users if isinstance(users, list) else []:
            if isinstance(entry, dict) and entry.get("name") == user:
                keys.extend(_keys_of(entry, "ssh_authorized_keys", "ssh-authorized-keys"))
    return [key for key in keys if isinstance(key, str)]


def guest_host_key(user_data: str) -> Optional[str]:
    """The Ed25519 host private key a guest would give its sshd from this user_data (what the
    testbed applies to play the guest), or None: cloud-config ``ssh_keys`` (cloud-init) or else
    its write_files entry (coreos-cloudinit), Ignition ``storage.files``."""
    fmt = detect_format(user_data)
    if fmt == FORMAT_CLOUD_CONFIG:
        data = parse_cloud_config(user_data)
        ssh_keys = data.get("ssh_keys")
        if isinstance(ssh_keys, dict) and isinstance(ssh_keys.get("ed25519_private"), str):
            return ssh_keys["ed25519_private"]
        entries = data.get("write_files")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("path") == HOST_KEY_PATH \
                    and isinstance(entry.get("content"), str):
                return entry["content"]
    elif fmt == FORMAT_IGNITION:
        storage = parse_ignition(user_data).get("storage")
        entries = storage.get("files") if isinstance(storage, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("path") == HOST_KEY_PATH:
                source = (entry.get("contents") or {}).get("source", "")
                if source.startswith("data:;base64,"):
                    return base64.b64decode(source[len("data:;base64,"):]).decode("utf-8")
    return None
