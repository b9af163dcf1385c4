"""Pure checks of plugin arguments: nothing reaches xapi, a VM or a shell before these pass."""

import re
from typing import Dict, Iterable, Optional

from xscontainer.errors import InvalidArgument
from xscontainer.plugincall import FORWARDED_KEY, MAX_CALL_BYTES, plugin_call_bytes

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Docker's own rule for names; ids and id prefixes are lower-case hex.
CONTAINER_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
CONTAINER_ID_RE = re.compile(r"^[0-9a-f]{1,64}$")
MAX_ARGUMENT_BYTES = 64 * 1024
MAX_LOG_TAIL = 10000


def _largest_configuration() -> int:
    """The largest configuration that can reach create_config_drive, forwarded, if nothing in it
    needs escaping: the plugin cannot receive more, so it accepts no more."""
    uuid = "00000000-0000-0000-0000-000000000000"
    empty = {"vmuuid": uuid, "sruuid": uuid, "configuration": "x", FORWARDED_KEY: "1"}
    return MAX_CALL_BYTES - plugin_call_bytes("create_config_drive", "OpaqueRef:" + uuid, empty) + 1


MAX_CONFIGURATION_BYTES = _largest_configuration()


def require(args: Dict[str, str], names: Iterable[str]) -> None:
    missing = [name for name in names if name not in args]
    if missing:
        raise InvalidArgument("Missing argument(s): %s." % ", ".join(missing))


def check_sizes(args: Dict[str, str]) -> None:
    for key, value in args.items():
        limit = MAX_CONFIGURATION_BYTES if key == "configuration" else MAX_ARGUMENT_BYTES
        if not isinstance(value, str):
            raise InvalidArgument("Argument %s must be a string." % key[:64])
        if len(value.encode("utf-8", "surrogatepass")) > limit:
            raise InvalidArgument("Argument %s is larger than %d bytes." % (key[:64], limit),
                                  code="ARGUMENT_TOO_LARGE")


def uuid_arg(args: Dict[str, str], name: str) -> str:
    value = args.get(name, "")
    if not UUID_RE.fullmatch(value):
        raise InvalidArgument("Argument %s=%r is not a uuid." % (name, value[:80]))
    return value.lower()


def container_arg(args: Dict[str, str], name: str) -> str:
    """A container name, full id or unique id prefix, as Docker allows them."""
    value = args.get(name, "")
    if CONTAINER_ID_RE.fullmatch(value) or CONTAINER_NAME_RE.fullmatch(value):
        return value.lstrip("/")
    raise InvalidArgument("Argument %s=%r is neither a container name nor an id." % (name, value[:80]))


API_PATH_RE = re.compile(r"^/[A-Za-z0-9/_.-]{1,200}$")


def api_path_arg(args: Dict[str, str], name: str) -> str:
    """A Docker Engine API path such as /containers/json (no query, no '..')."""
    value = args.get(name, "")
    if not API_PATH_RE.fullmatch(value) or ".." in value:
        raise InvalidArgument("Argument %s=%r is not a Docker API path like /containers/json." % (name, value[:80]))
    return value


def int_arg(args: Dict[str, str], name: str, default: int, lowest: int, highest: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise InvalidArgument("Argument %s=%r is not a whole number." % (name, raw[:40]))
    value = int(raw)
    if not lowest <= value <= highest:
        raise InvalidArgument("Argument %s must be between %d and %d." % (name, lowest, highest))
    return value


def unexpected_keys(args: Dict[str, str], allowed: Iterable[str]) -> Optional[str]:
    extra = sorted(set(args) - set(allowed))
    return ", ".join(k[:64] for k in extra) if extra else None
