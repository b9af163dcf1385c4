"""xscontainer: containers of the pool's VMs, from dom0 or any machine that reaches xapi.

    xscontainer [--url URL --username USER --password-file FILE [--ca-file FILE | --insecure]] VERB ...

Verbs:
    ps [--vm VM] [--all-hosts] [--refresh]    containers of the managed VMs
    top VM CONTAINER                          processes of a container
    inspect VM CONTAINER                      the container's configuration and state
    logs VM CONTAINER [--tail N] [-f]         the container's last log lines (-f: and follow)
    attach VM CONTAINER                       our terminal on the container's main process
                                              (ctrl-p ctrl-q detaches, the container runs on)
    stats VM [CONTAINER] [--recorded]         CPU, memory, network and disk use (--recorded: what
                                              xcp-rrdd holds, published by the monitor every 5 s)
    stats --watch [VM] [--count N]            every managed VM's containers, redrawn every 5 s with
                                              a CPU sparkline (a plain table when not a terminal)
    exec [-i] [-t] [-u USER] [-w DIR] [-e K=V] VM CONTAINER -- CMD [ARG...]
                                              run a command in a container (root in dom0 only;
                                              exit code: the command's)
    start|stop|restart|pause|unpause VM CONTAINER
    register VM [--host-key-fingerprint SHA256:...] | deregister VM
                                              switch container management on or off (and say
                                              which SSH host key is the VM's)
    doctor VM                                 is the VM's engine reachable, and if not, why
    config-drive default TEMPLATE             the default cloud-config of a template
    config-drive create VM --sr SR --file F   make a config drive for VM from the file F
    config-drive show VDI                     the configuration stored on a config drive
    prepare-vm ...                            xscontainer-prepare-vm (its own arguments; --url,
                                              --username, --password-file are passed on)
Every verb but prepare-vm takes --json (machine-readable output on stdout).

Connection: the local xapi socket (dom0) by default; --url/--username/--password-file reach any
pool member over HTTP(S) ("-" reads the password from stdin). xapi's TLS certificate is verified
against --ca-file (the pool's certificate, which `xe host-get-server-certificate` prints on a pool
host, or its CA) or else the system's CA store; a certificate that does not verify is refused
before the password is sent (exit 5, XAPI_CERTIFICATE_UNVERIFIED); --insecure skips the check,
with a warning. Every container operation is a
host.call_plugin of the xscontainer plugin on the VM's host (the pool coordinator when the VM
does not run), so the command works from any host of the pool.

ps scope: with --vm, that one VM (registered or not). Otherwise every VM registered for container
management (other-config:xscontainer-monitor=true) that runs on *this* host when connected to the
local xapi, as `docker ps` shows one engine; --all-hosts (or --url) shows the whole pool, halted
VMs included. Without --refresh, ps shows what the monitor last wrote to other-config:docker_ps
(fast, no VM is contacted); --refresh asks each running VM's engine first.

Naming: a VM, template, SR or VDI by uuid, name label or a unique prefix of either; a container
by id, name or a unique prefix of either. An exact uuid/id wins, then an exact name, then a
prefix. Several matches are an error listing them.

Output: aligned tables, cut to the terminal width (environment COLUMNS overrides it; output that
is not a terminal is never cut). Errors go to stderr as one sentence and a stable code in
brackets, e.g. `xscontainer: No VM is named 'x' (by uuid, name or prefix). [VM_NOT_FOUND]`
(with --json: a JSON object {"error": {"code", "message"}}).

Exit codes: the table in xscontainer.exitcodes, shared with xscontainer-prepare-vm.
"""

import argparse
from typing import List, Optional, Tuple

from xscontainer.cli import commands
from xscontainer.exitcodes import XSCONTAINER, help_text

PROG = "xscontainer"
GLOBAL_WITH_VALUE = ("--url", "--username", "--password-file", "--ca-file")
GLOBAL_FLAGS = ("--insecure",)


def _usage_and_codes() -> Tuple[str, str]:
    doc = __doc__ or ""
    head, _, _ = doc.partition("Exit codes:")
    return head.strip(), help_text(XSCONTAINER)


def fingerprint_argument(text: str) -> str:
    """argparse type of --host-key-fingerprint: normalized, or a usage error (exit 2)."""
    from xscontainer.hostkeys import parse_fingerprint
    value = parse_fingerprint(text)
    if value is None:
        raise argparse.ArgumentTypeError("%r is not a SHA256 fingerprint such as ssh-keygen -l prints "
                                         "(SHA256: and 43 base64 characters)" % text)
    return value


def build_parser() -> argparse.ArgumentParser:
    description, codes = _usage_and_codes()
    parser = argparse.ArgumentParser(prog=PROG, description=description,
                                     epilog=codes, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="xapi URL of any pool member (default: the local xapi socket)")
    parser.add_argument("--username", help="user for --url")
    parser.add_argument("--password-file", help="file holding the password for --url ('-': stdin)")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--ca-file", help="with an https --url: verify xapi's certificate against this PEM file "
                                       "(the pool's certificate or its CA; default: the system's CA store)")
    tls.add_argument("--insecure", action="store_true",
                     help="with --url: do not verify xapi's certificate (the password can then be read by "
                          "anyone between here and the pool)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="machine-readable output")

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, help=help_text, description=help_text, parents=[json_flag])

    ps = verb("ps", "containers of the managed VMs (this host's unless --all-hosts)")
    ps.add_argument("--vm", help="only this VM (uuid, name or unique prefix)")
    ps.add_argument("--all-hosts", action="store_true", help="every managed VM of the pool")
    ps.add_argument("--refresh", action="store_true", help="ask the engines first instead of "
                                                           "showing what the monitor last wrote")
    for name, help_text in (("top", "processes running in a container"),
                            ("inspect", "a container's configuration and state")):
        sub = verb(name, help_text)
        sub.add_argument("vm")
        sub.add_argument("container")
    logs = verb("logs", "the last lines a container logged")
    logs.add_argument("vm")
    logs.add_argument("container")
    logs.add_argument("--tail", type=int, help="number of lines (default: the plugin's, 100)")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="then follow the output as it comes (root in dom0; stops with the container "
                           "or Ctrl-C)")
    attach = verbs.add_parser("attach", help="attach to a container's main process (ctrl-p ctrl-q detaches)")
    attach.add_argument("vm")
    attach.add_argument("container")
    stats = verb("stats", "resource use of a VM's running containers (or one)")
    stats.add_argument("vm", nargs="?")
    stats.add_argument("container", nargs="?")
    stats.add_argument("--watch", action="store_true",
                       help="every managed VM's recorded container metrics, redrawn every 5 s")
    stats.add_argument("--count", type=int, help="with --watch: stop after N readings")
    stats.add_argument("--recorded", action="store_true",
                       help="the per-container data sources xcp-rrdd recorded, instead of asking the engine")
    execute = verbs.add_parser("exec", help="run a command in a container",
                               description="Run a command in a running container, through the VM's "
                                           "engine connection. The exit code is the command's.")
    execute.add_argument("-i", "--interactive", action="store_true", help="send our stdin to the command")
    execute.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    execute.add_argument("-u", "--user", default="", help="user (name or uid[:gid]) in the container")
    execute.add_argument("-w", "--workdir", default="", help="working directory in the container")
    execute.add_argument("-e", "--env", action="append", default=[], metavar="NAME=VALUE",
                         help="environment variable (repeatable)")
    execute.add_argument("vm")
    execute.add_argument("container")
    execute.add_argument("command", nargs="*", help="the command and its arguments (after --)")
    for action in commands.LIFECYCLE:
        sub = verb(action, "%s a container" % action)
        sub.add_argument("vm")
        sub.add_argument("container")
    register = verb("register", "switch container management on for a VM")
    register.add_argument("vm")
    register.add_argument("--host-key-fingerprint", metavar="SHA256:...", type=fingerprint_argument,
                          help="the fingerprint of the VM's SSH host key, as `ssh-keygen -lf "
                               "/etc/ssh/ssh_host_ed25519_key.pub` prints it on the VM's console: the only key "
                               "the first connection accepts (it then replaces any key pinned before)")
    for name, help_text in (("deregister", "switch container management off for a VM"),
                            ("doctor", "can the VM's engine be reached? if not, why, and what to do")):
        verb(name, help_text).add_argument("vm")
    drive = verbs.add_parser("config-drive", help="cloud-config drives (default, create, show)")
    drive_verbs = drive.add_subparsers(dest="drive_verb", metavar="ACTION")
    default = drive_verbs.add_parser("default", help="a template's default configuration", parents=[json_flag])
    default.add_argument("template")
    create = drive_verbs.add_parser("create", help="create a config drive for a VM", parents=[json_flag])
    create.add_argument("vm")
    create.add_argument("--sr", required=True, help="SR for the drive (uuid, name or unique prefix)")
    create.add_argument("--file", required=True, help="the configuration text ('-': stdin)")
    show = drive_verbs.add_parser("show", help="the configuration stored on a config drive", parents=[json_flag])
    show.add_argument("vdi")
    verbs.add_parser("prepare-vm", help="prepare a VM for container management (see prepare-vm --help)",
                     add_help=False)
    return parser


def split_prepare_vm(argv: List[str]) -> Optional[Tuple[List[str], List[str]]]:
    """(global options, prepare-vm's own arguments) when the verb is prepare-vm, else None: its
    arguments go to xscontainer-prepare-vm untouched, whatever they look like."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in GLOBAL_WITH_VALUE:
            index += 2
        elif word.startswith("--") and word.split("=", 1)[0] in GLOBAL_WITH_VALUE:
            index += 1
        elif word in GLOBAL_FLAGS:
            index += 1
        elif word == "prepare-vm":
            return argv[:index], argv[index + 1:]
        else:
            return None
    return None


def split_exec_command(argv: List[str]) -> Tuple[List[str], List[str]]:
    """For the exec verb: (our arguments, the command after the first ``--``), since the command
    may have options of its own that argparse must not see."""
    if "exec" in argv and "--" in argv[argv.index("exec"):]:
        cut = argv.index("--", argv.index("exec"))
        return argv[:cut], argv[cut + 1:]
    return argv, []

def prepare_vm_argv(args: argparse.Namespace, own: List[str]) -> List[str]:
    """prepare-vm's arguments: our connection options in its spelling, then its own."""
    extra = []  # type: List[str]
    if args.url:
        extra += ["--url", args.url]
    if args.username:
        extra += ["--username-xapi", args.username]
    if args.password_file:
        extra += ["--password-file-xapi", args.password_file]
    if args.ca_file:
        extra += ["--ca-file-xapi", args.ca_file]
    if args.insecure:
        extra += ["--insecure-xapi"]
    return extra + list(own)
