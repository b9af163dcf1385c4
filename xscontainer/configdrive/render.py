"""Pure logic of config drives: placeholders, rendering the user_data, the drive's file set (the
guests' formats, their validation and key merging, are ``guestformats``).

Nothing here touches xapi, files or sockets: every function maps literal inputs to outputs, so
the rules the original product had (and the ones we added) are tested with plain strings.
"""

import base64
import json
import re
from typing import Any, Dict, Iterable, NamedTuple, Optional, Tuple

from xscontainer.configdrive.guestformats import (FORMAT_CLOUD_CONFIG, FORMAT_IGNITION, META_DATA_KEY_NAME, HostKey,
                                                  add_host_key_cloud_config, add_host_key_ignition,
                                                  cloud_config_authorizes, detect_format, key_base64,
                                                  key_without_comment, merge_ignition_key, parse_cloud_config,
                                                  parse_ignition)
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
    key_line = key_without_comment(context.public_line)
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
        public_keys[META_DATA_KEY_NAME] = key_without_comment(context.public_line)
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
