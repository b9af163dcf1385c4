"""The exit codes of ``xscontainer`` and ``xscontainer-prepare-vm`` (pure): one table, so that a
number means one thing whichever command returns it. They are stable: administrators' scripts
test them. Each command's --help lists the rows that it uses (``help_text``)."""

import textwrap
from typing import NamedTuple, Optional, Tuple

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNREACHABLE = 4
EXIT_XAPI = 5
EXIT_PERMISSION = 6
EXIT_WRITE = 7
EXIT_INTERNAL = 8
EXIT_REFUSED = 9

XSCONTAINER = "xscontainer"
PREPARE_VM = "xscontainer-prepare-vm"


class ExitCode(NamedTuple):
    number: int
    xscontainer: Optional[str]  # what it means from xscontainer (None: never returned)
    prepare_vm: Optional[str]  # what it means from xscontainer-prepare-vm


TABLE = (
    ExitCode(EXIT_OK, "success (doctor: the VM's engine answers)",
             "the VM is prepared (and, where it can be, monitoring was verified)"),
    ExitCode(EXIT_FAILED, "the operation failed (engine error, xapi or the plugin refused)",
             "the VM is prepared, but the diagnosis says monitoring does not work yet (printed)"),
    ExitCode(EXIT_USAGE, "usage error (bad command line or argument)",
             "usage: bad or conflicting options, unreadable key/password/certificate files"),
    ExitCode(EXIT_NOT_FOUND, "not found: no such VM, container, template, SR or VDI, or an ambiguous name",
             "the VM was not found, or the name matches several VMs"),
    ExitCode(EXIT_UNREACHABLE, "the VM's Docker engine cannot be reached (doctor: the VM is not healthy)",
             "cannot connect to the VM or log in with the administrator's credentials (no address, "
             "port closed, host key changed or not the --host-key-fingerprint given, authentication "
             "refused)"),
    ExitCode(EXIT_XAPI, "xapi cannot be reached, or refused the login",
             "xapi could not be reached, refused the login or refused a call"),
    ExitCode(EXIT_PERMISSION, "the xapi user's role does not allow the operation (RBAC_PERMISSION_DENIED; "
                              "e.g. a read-only user: every plugin call needs pool-admin)", None),
    ExitCode(EXIT_WRITE, None, "the VM or this machine refused a write (authorized_keys, certificate files)"),
    ExitCode(EXIT_INTERNAL, None, "internal error (a bug: please report it with the traceback)"),
    ExitCode(EXIT_REFUSED, None,
             "refused: the administrator said no, or no consent could be asked (no terminal, no --yes, "
             "or a host key that is neither pinned nor given with --host-key-fingerprint)"),
)


def rows(command: str) -> Tuple[Tuple[int, str], ...]:
    """(number, meaning) of each code that ``command`` returns."""
    if command not in (XSCONTAINER, PREPARE_VM):
        raise ValueError("no such command: %r" % command)
    pick = (lambda row: row.xscontainer) if command == XSCONTAINER else (lambda row: row.prepare_vm)
    return tuple((row.number, pick(row)) for row in TABLE if pick(row) is not None)


def help_text(command: str, width: int = 96) -> str:
    """The "Exit codes:" section of ``command``'s --help."""
    lines = ["Exit codes:"]
    for number, meaning in rows(command):
        lines.extend(textwrap.wrap(meaning, width, initial_indent="    %d  " % number,
                                   subsequent_indent="       ", break_on_hyphens=False))
    return "\n".join(lines)
