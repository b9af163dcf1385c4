"""xe's command line: switches, ``name=value`` parameters and map parameters (pure)."""

from typing import List, NamedTuple, Optional, Sequence

from xscontainer.sim.xe.specs import Params, XeFailure, param_error


ConnOptions = NamedTuple("ConnOptions", [
    ("server", Optional[str]), ("port", Optional[int]), ("username", str), ("password", str),
    ("password_file", Optional[str]), ("nossl", bool),
])

Invocation = NamedTuple("Invocation", [
    ("conn", ConnOptions), ("command", Optional[str]), ("params", Params), ("help", bool),
])

_SWITCHES = {"-s": "server", "-h": "server", "-p": "port", "-u": "username", "-pw": "password",
             "-pwf": "passwordfile"}


def parse_argv(argv: Sequence[str]) -> Invocation:
    """Split connection options (newcli.ml parse_args) from the command and its key=value params.

    Raises XeFailure for a bad port, like newcli.ml.
    """
    conn = {"server": None, "port": None, "username": "root", "password": "",
            "passwordfile": None, "nossl": False}
    rest = []  # type: List[str]
    want_help = False
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-help", "--help"):
            want_help = True
        elif arg in _SWITCHES and i + 1 < len(args):
            conn[_SWITCHES[arg]] = args[i + 1]
            i += 1
        elif arg == "--nossl":
            conn["nossl"] = True
        elif arg.split("=", 1)[0] in ("server", "port", "username", "password", "passwordfile") \
                and "=" in arg:
            key, value = arg.split("=", 1)
            conn[key] = value
        else:
            rest.append(arg)
        i += 1
    port = None  # type: Optional[int]
    if conn["port"] is not None:
        try:
            port = int(conn["port"])
            if not 0 <= port <= 65535:
                raise ValueError(port)
        except ValueError:
            raise XeFailure("Port number must be an integer (0-65535)")
    options = ConnOptions(conn["server"], port, conn["username"], conn["password"],
                          conn["passwordfile"], bool(conn["nossl"]))
    if not rest:
        return Invocation(options, None, [], want_help)
    if "=" in rest[0]:
        # cli_frontend.ml parse_commandline: "command name is missing", re-raised as ParseError "".
        raise param_error("Syntax error", "")
    return Invocation(options, rest[0], parse_params(rest[1:]), want_help)


def parse_params(args: Sequence[str]) -> Params:
    """cli_frontend.ml parse_params_2: ``--flag`` is ``flag=true``; ``k=v`` splits at the first '='."""
    params = []  # type: Params
    for arg in args:
        if arg.startswith("--"):
            params.append((arg[2:], "true"))
        elif "=" in arg:
            key, value = arg.split("=", 1)
            params.append((key, value))
        else:
            params.append((arg, ""))
    return params


def param(params: Params, name: str) -> Optional[str]:
    for key, value in params:
        if key == name:
            return value
    return None


def require(params: Params, names: Sequence[str]) -> None:
    for name in names:
        if param(params, name) is None:
            raise param_error("Required parameter not found", name)


def is_true(value: Optional[str]) -> bool:
    return (value or "").lower() in ("true", "yes", "1", "on")


def read_map_params(prefix: str, params: Params) -> Params:
    """cli_operations.ml read_map_params: ``prefix:key=value`` pairs, prefix removed."""
    cut = len(prefix) + 1
    return [(k[cut:], v) for k, v in params if k.startswith(prefix) and len(k) > cut]
