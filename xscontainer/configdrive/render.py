"""Pure logic of config drives: placeholders, validation, key merging, the drive's file set.

Nothing here touches xapi, files or sockets: every function maps literal inputs to outputs, so
the rules the original product had (and the ones we added) are tested with plain strings.
"""

import base64
import json
import re
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

import yaml

from xscontainer.configdrive import bounds
from xscontainer.errors import ConfigDriveError

CONFIG_DRIVE_LABEL = "config-2"
OPENSTACK_DIR = "openstack/latest"
USER_DATA = OPENSTACK_DIR + "/user_data"
USER_DATA_TEMPLATE = OPENSTACK_DIR + "/user_data.template"
META_DATA = OPENSTACK_DIR + "/meta_data.json"
AGENT_DIR = "agent"
# The original copied exactly these from Linux/ of the tools ISO.
AGENT_FILES = ("xe-daemon", "xe-linux-distribution", "xe-linux-distribution.service",
               "xe-update-guest-attrs", "xen-vcpu-hotplug.rules", "install.sh",
               "versions.deb", "versions.rpm", "versions.tgz")
META_DATA_KEY_NAME = "xscontainer"
IGNITION_USER = "core"

FORMAT_CLOUD_CONFIG = "cloud-config"
FORMAT_IGNITION = "ignition"
FORMAT_SCRIPT = "script"

TRUE_WORDS = ("1", "yes", "true", "on")

# Block markers: start → accepted ends (``%ENDXSHINEXISTS%`` is what very old templates used).
HIN_BLOCKS = (("%HINEXISTS%", ("%ENDHINEXISTS%",)),
              ("%XSHINEXISTS%", ("%XSENDHINEXISTS%", "%ENDXSHINEXISTS%")))

# "ssh-rsa %CONTAINERRSAPUB%" is how every template of the original authorized the pool key; it
# is replaced by the whole public key line, so that an Ed25519 pool key works in it too.
_KEY_LINE_PATTERN = re.compile(r"ssh-rsa[ \t]+%(?:XS)?CONTAINERRSAPUB%")
_PLACEHOLDER_PATTERN = re.compile(r"%([A-Z]+)%")

PLACEHOLDER_HOSTNAME = ("XSVMNAMETOHOSTNAME", "VMNAMETOHOSTNAME")
PLACEHOLDER_KEY_BASE64 = ("XSCONTAINERRSAPUB", "CONTAINERRSAPUB")
PLACEHOLDER_KEY_LINE = ("XSCONTAINERPUBKEY", "CONTAINERPUBKEY")
PLACEHOLDER_HIN = ("XSHIN", "HIN")


# Where sshd finds its Ed25519 host key on every guest we target (cloud-init's ssh_keys writes it
# there too; coreos-cloudinit and Ignition only know files).
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
HOST_KEY_MODES = (0o600, 0o644)  # private, public: what ssh-keygen and sshd expect


class HostKey(NamedTuple):
    """An SSH host key pair dom0 chose for the VM. ``private_openssh`` is a secret: it goes into
    the drive's user_data and nowhere else (never a log line, never a file in dom0)."""
    private_openssh: str
    public_line: str  # "ssh-ed25519 base64 comment"


class RenderContext(NamedTuple):
    vm_uuid: str
    vm_name: str
    public_line: str  # "type base64 comment", the pool's public key
    hin_device: Optional[str]  # VIF device on the host-internal network, or None
    host_key: Optional[HostKey] = None  # given to the guest when the drive authorizes the pool key


class RenderedDrive(NamedTuple):
    user_data: str
    format: str
    authorizes_pool_key: bool
    hostname: str
    host_key_pinned: Optional[str] = None  # base64 blob of the host key the user_data carries


def is_true_word(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in TRUE_WORDS


def decode_br(configuration: str) -> str:
    """``%BR%`` stands for a line break (XAPI plugin arguments from ``xe`` cannot hold one)."""
    return configuration.replace("%BR%", "\r\n")


def vm_name_to_hostname(vm_name: str, vm_uuid: str = "") -> str:
    """The original's rule (non-word characters dropped, lower case), kept to a valid host name."""
    name = re.sub(r"[\W_]+", "", vm_name, flags=re.ASCII).lower()[:63]
    if not name:
        name = "vm" + re.sub(r"[^0-9a-f]", "", vm_uuid.lower())[:8]
    return name


def key_base64(public_line: str) -> str:
    parts = public_line.split()
    if len(parts) < 2:
        raise ConfigDriveError("The pool public key %r is not an OpenSSH public key line." % public_line,
                               code="POOL_KEY_INVALID")
    return parts[1]


def _key_without_comment(public_line: str) -> str:
    return " ".join(public_line.split()[:2])


def filter_hin_blocks(text: str, keep: bool) -> str:
    """Keep the content of host-internal-network blocks (dropping the markers) or drop the blocks."""
    for start, ends in HIN_BLOCKS:
        while True:
            begin = text.find(start)
            if begin < 0:
                break
            found = [(text.find(end, begin + len(start)), end) for end in ends]
            found = [(position, end) for position, end in found if position >= 0]
            if not found:
                raise ConfigDriveError("The configuration opens a %s block that is never closed by %s."
                                       % (start, ends[0]), code="INVALID_CONFIGURATION")
            finish, end = min(found)
            inner = text[begin + len(start):finish] if keep else ""
            text = text[:begin] + inner + text[finish + len(end):]
        for end in ends:
            if end in text:
                raise ConfigDriveError("The configuration has %s without its opening marker %s."
                                       % (end, start), code="INVALID_CONFIGURATION")
    return text


def render_placeholders(template: str, context: RenderContext) -> str:
    """Substitute every placeholder the original supported, plus the whole-key-line one."""
    text = filter_hin_blocks(template, keep=context.hin_device is not None)
    key_line = _key_without_comment(context.public_line)
    text = _KEY_LINE_PATTERN.sub(lambda _match: key_line, text)
    values = {}  # type: Dict[str, str]
    for name in PLACEHOLDER_HOSTNAME:
        values[name] = vm_name_to_hostname(context.vm_name, context.vm_uuid)
    for name in PLACEHOLDER_KEY_BASE64:
        values[name] = key_base64(context.public_line)
    for name in PLACEHOLDER_KEY_LINE:
        values[name] = key_line
    if context.hin_device is not None:
        for name in PLACEHOLDER_HIN:
            values[name] = context.hin_device

    def substitute(match):
        name = match.group(1)
        if name in values:
            return values[name]
        if name in PLACEHOLDER_HIN:
            raise ConfigDriveError("The configuration uses %%%s%% outside a %%HINEXISTS%% block, but "
                                   "the VM has no interface on the host-internal network." % name,
                                   code="INVALID_CONFIGURATION")
        return match.group(0)

    # One pass, so that a substituted value is never substituted again.
    return _PLACEHOLDER_PATTERN.sub(substitute, text)


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
    line = _key_without_comment(public_line) + " " + META_DATA_KEY_NAME
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


def render_user_data(configuration: str, context: RenderContext) -> RenderedDrive:
    """Placeholders substituted and the result validated: the bytes the guest will read.

    When the configuration authorizes the pool key and ``context.host_key`` is given, the guest
    is also given that SSH host key (``host_key_pinned`` then says which key to pin).
    Raises ConfigDriveError(INVALID_CONFIGURATION) for anything a guest would reject.
    """
    if not configuration.strip():
        raise ConfigDriveError("The configuration is empty.", code="INVALID_CONFIGURATION")
    text = render_placeholders(configuration, context)
    fmt = detect_format(text)
    b64 = key_base64(context.public_line)
    hostname = vm_name_to_hostname(context.vm_name, context.vm_uuid)
    host_key = context.host_key
    pinned = key_base64(host_key.public_line) if host_key is not None else None
    if fmt == FORMAT_IGNITION:
        merged = merge_ignition_key(parse_ignition(text), context.public_line)
        if host_key is not None:
            merged = add_host_key_ignition(merged, host_key)
        return RenderedDrive(json.dumps(merged, indent=2, sort_keys=True) + "\n", fmt, True, hostname,
                             pinned)
    if fmt == FORMAT_CLOUD_CONFIG:
        data = parse_cloud_config(text)
        if isinstance(data.get("hostname"), str) and data["hostname"]:
            hostname = data["hostname"]
        if host_key is not None and cloud_config_authorizes(data, b64):
            return RenderedDrive(add_host_key_cloud_config(data, host_key), fmt, True, hostname, pinned)
        return RenderedDrive(text, fmt, cloud_config_authorizes(data, b64), hostname)
    return RenderedDrive(text, fmt, False, hostname)


def meta_data(context: RenderContext, rendered: RenderedDrive) -> Dict[str, Any]:
    """OpenStack meta_data.json: cloud-init requires ``uuid``; keys only when the user wanted them."""
    public_keys = {}  # type: Dict[str, str]
    if rendered.authorizes_pool_key:
        public_keys[META_DATA_KEY_NAME] = _key_without_comment(context.public_line)
    return {
        "uuid": context.vm_uuid,
        "hostname": rendered.hostname,
        "name": context.vm_name,
        "public_keys": public_keys,
    }


def drive_files(configuration: str, context: RenderContext, rendered: RenderedDrive,
                agent_files: Optional[Dict[str, bytes]] = None) -> Dict[str, bytes]:
    """Path inside the drive → content."""
    files = {
        USER_DATA: rendered.user_data.encode("utf-8"),
        USER_DATA_TEMPLATE: configuration.encode("utf-8"),
        META_DATA: _json_bytes(meta_data(context, rendered)),
    }
    for name, content in sorted((agent_files or {}).items()):
        files[AGENT_DIR + "/" + name] = content
    return files


def default_template_text(template: str, hin_enabled: bool, source: str) -> str:
    """What ``get_config_drive_default`` returns, as the original did (with its origin noted)."""
    text = template if hin_enabled else filter_hin_blocks(template, keep=False)
    return "%s\n\n# Template loaded from %s" % (text.rstrip("\n"), source)


def _version_key(path: str) -> Tuple[Any, ...]:
    # Natural order: xs-tools-6.5.0-2001.iso after xs-tools-6.5.0-1001.iso after xs-tools-6.5.0.iso.
    stem = path[:-4] if path.lower().endswith(".iso") else path
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", stem) if part)


def newest_tools_iso(paths: Iterable[str]) -> Optional[str]:
    ordered = sorted(paths, key=_version_key)
    return ordered[-1] if ordered else None


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


def hin_device_of(vif_records: Iterable[Dict[str, Any]],
                  network_records: Dict[str, Dict[str, Any]]) -> Optional[str]:
    """The VM's VIF device on the host-internal management network (bridge ``xenapi``), if any."""
    hin_networks = {ref for ref, record in network_records.items() if record.get("bridge") == "xenapi"}
    devices = sorted(str(vif.get("device")) for vif in vif_records if vif.get("network") in hin_networks)
    return devices[0] if devices else None


def round_up(size: int, multiple: int) -> int:
    return ((size + multiple - 1) // multiple) * multiple


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
