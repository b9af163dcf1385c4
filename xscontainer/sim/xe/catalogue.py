"""Which xe commands exist and what they require, checked before connecting (pure)."""

from typing import Optional, Tuple

from xscontainer.sim.xe.specs import CLASSES, ClassSpec, param_error


PARAM_COMMANDS = {
    "list": (),
    "param-list": ("uuid",),
    "param-get": ("uuid", "param-name"),
    "param-set": ("uuid",),
    "param-add": ("uuid", "param-name"),
    "param-remove": ("uuid", "param-name", "param-key"),
    "param-clear": ("uuid", "param-name"),
}

OTHER_COMMANDS = {
    "host-call-plugin": ("host-uuid", "plugin", "fn"),
    "update-upload": ("file-name",),
    "vm-start": (),
    "vm-shutdown": (),
    "vm-data-source-list": (),
    "vm-data-source-query": ("data-source",),
    "help": (),
}


def resolve_command(name: str) -> Tuple[str, Optional[ClassSpec], Tuple[str, ...]]:
    """(operation, class spec or None, required params); XeFailure for an unknown command."""
    if name in OTHER_COMMANDS:
        return name, None, OTHER_COMMANDS[name]
    for cli, spec in CLASSES.items():
        prefix = cli + "-"
        if name.startswith(prefix) and name[len(prefix):] in PARAM_COMMANDS:
            op = name[len(prefix):]
            if spec.cli == "message" and op not in ("list", "param-list", "param-get"):
                break
            return op, spec, PARAM_COMMANDS[op]
    raise param_error("Unknown command", name)


def help_text() -> str:
    names = sorted(list(OTHER_COMMANDS) + [
        "%s-%s" % (cli, op) for cli in CLASSES for op in PARAM_COMMANDS
        if not (cli == "message" and op not in ("list", "param-list", "param-get"))])
    return ("Usage: xe <cmd> [-s server] [-p port] ([-u username] [-pw password] or "
            "[-pwf <password file>]) <other arguments>\n\nCommands:\n    "
            + ", ".join(names) + "\n")
