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
import json
import logging
import os
import shutil
import sys
import warnings
from typing import List, Optional, TextIO, Tuple

from xscontainer.cli import commands
from xscontainer.cli.failures import exit_code
from xscontainer.errors import InvalidArgument, XapiError, XSContainerError
from xscontainer.exitcodes import EXIT_FAILED, EXIT_USAGE, XSCONTAINER, help_text

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


def read_secret(path: str, stdin: TextIO) -> str:
    try:
        if path == "-":
            text = stdin.readline()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.readline()
    except OSError as exc:
        raise InvalidArgument("Cannot read the password file %s: %s." % (path, exc.strerror)) from exc
    return text.rstrip("\r\n")


def read_text(path: str, stdin: TextIO) -> str:
    try:
        if path == "-":
            return stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument("Cannot read %s: %s." % (path, getattr(exc, "strerror", None) or exc)) from exc


def output_width(stream: TextIO) -> Optional[int]:
    """Characters per line for tables: COLUMNS when set, the terminal's width on a terminal, no
    limit otherwise (pipes and files get whole values)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if stream.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError, OSError):
        pass
    return None


def open_session(args: argparse.Namespace, stdin: TextIO, err: TextIO):
    from xscontainer.xapi.session import open_local_session, open_url_session
    if args.url:
        if not args.username or not args.password_file:
            raise InvalidArgument("--url needs --username and --password-file.")
        password = read_secret(args.password_file, stdin)
        if args.insecure:
            err.write(insecure_warning(args.url))
        return open_url_session(args.url, args.username, password, ca_file=args.ca_file, insecure=args.insecure)
    if args.username or args.password_file or args.ca_file or args.insecure:
        raise InvalidArgument("--username, --password-file, --ca-file and --insecure only go with --url.")
    return open_local_session()


def insecure_warning(url: str) -> str:
    return ("%s: warning: --insecure: the TLS certificate of xapi at %s is not verified; whoever sits "
            "between here and the pool can read the password and act as root in the pool.\n" % (PROG, url))


def local_host_uuid(args: argparse.Namespace, err: TextIO, wanted: bool) -> Optional[str]:
    """This host's uuid for ps's default scope; None (the whole pool) over --url or off dom0."""
    if args.url or not wanted:
        return None
    from xscontainer.xapi.inventory import this_host_uuid
    try:
        return this_host_uuid()
    except XapiError as exc:
        err.write("%s: %s Showing every host.\n" % (PROG, exc.message))
        return None


def run_verb(ctx: commands.Context, args: argparse.Namespace, stdin: TextIO) -> int:
    verb = args.verb
    if verb == "ps":
        return commands.cmd_ps(ctx, args.vm, args.all_hosts, args.refresh)
    if verb == "top":
        return commands.cmd_top(ctx, args.vm, args.container)
    if verb == "inspect":
        return commands.cmd_inspect(ctx, args.vm, args.container)
    if verb == "logs":
        if args.tail is not None and args.tail < 1:
            raise InvalidArgument("--tail must be at least 1.")
        if args.follow:
            return run_engine_verb(ctx, args, stdin)
        return commands.cmd_logs(ctx, args.vm, args.container, args.tail)
    if verb == "attach":
        return run_engine_verb(ctx, args, stdin)
    if verb == "stats":
        if args.watch:
            if args.container or (args.count is not None and args.count < 1):
                raise InvalidArgument("stats --watch takes at most a VM, and --count at least 1.")
            return commands.cmd_stats_watch(ctx, args.vm, args.count)
        if not args.vm:
            raise InvalidArgument("stats needs a VM (or --watch).")
        return commands.cmd_stats(ctx, args.vm, args.container, args.recorded)
    if verb in commands.LIFECYCLE:
        return commands.cmd_lifecycle(ctx, verb, args.vm, args.container)
    if verb == "exec":
        return run_engine_verb(ctx, args, stdin)
    if verb == "register":
        return commands.cmd_register(ctx, args.vm, True, args.host_key_fingerprint)
    if verb == "deregister":
        return commands.cmd_register(ctx, args.vm, False)
    if verb == "doctor":
        return commands.cmd_doctor(ctx, args.vm)
    if verb == "config-drive":
        if args.drive_verb == "default":
            return commands.cmd_config_drive_default(ctx, args.template)
        if args.drive_verb == "create":
            return commands.cmd_config_drive_create(ctx, args.vm, args.sr, read_text(args.file, stdin))
        if args.drive_verb == "show":
            return commands.cmd_config_drive_show(ctx, args.vdi)
    raise InvalidArgument("Unknown verb %r." % verb)


def run_engine_verb(ctx: commands.Context, args: argparse.Namespace, stdin: TextIO) -> int:
    """exec, attach and logs -f: our streams wired to the VM's engine (root in dom0 only)."""
    from xscontainer.cli.console import engine_route, run_attach, run_exec, run_follow_logs
    from xscontainer.engine.console import ExecOptions
    if args.verb == "exec" and not args.command:
        raise InvalidArgument("Name the command to run: xscontainer exec VM CONTAINER -- CMD [ARG...].")
    vm = commands.find_vm(ctx, args.vm)
    out, err = ctx.out, ctx.err
    ctx.out.flush()
    binary_in, binary_out, binary_err = (getattr(stdin, "buffer", stdin), getattr(out, "buffer", out),
                                         getattr(err, "buffer", err))
    control = None
    if not args.url and vm.host_uuid:  # in dom0 of the VM's host: its monitor may lend its connection
        from xscontainer.monitor.control import control_socket_path
        from xscontainer.xapi.inventory import this_host_uuid
        try:
            here = this_host_uuid()
        except XapiError:
            here = None
        if here == vm.host_uuid:
            control = control_socket_path(here)
    with engine_route(ctx.client.session, vm.uuid, control) as route:
        if args.verb == "attach":
            return run_attach(route.client, route.open_stream, args.container, binary_in, binary_out, binary_err)
        if args.verb == "logs":
            return run_follow_logs(route.client, args.container, args.tail, binary_out, binary_err)
        options = ExecOptions(args.command, args.interactive, args.tty, args.user, args.workdir, args.env)
        return run_exec(route.client, route.open_stream, args.container, options, binary_in, binary_out,
                        binary_err)


def report_error(exc: XSContainerError, as_json: bool, err: TextIO) -> None:
    if as_json:
        err.write(json.dumps({"error": {"code": exc.code, "message": exc.message}}, sort_keys=True) + "\n")
    else:
        err.write("%s: %s [%s]\n" % (PROG, exc.message, exc.code))


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


def prepare_vm(argv: List[str]) -> int:
    try:
        from xscontainer.prepare.cli import main as prepare_main
    except ImportError as exc:
        raise XSContainerError("prepare-vm is not available in this installation (%s)." % exc,
                               code="UNSUPPORTED") from exc
    return prepare_main(argv) or 0


def main(argv: Optional[List[str]] = None, stdin: Optional[TextIO] = None, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stdin, out, err = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    # dom0's interpreter is 3.6, which cryptography warns about on every import: not the
    # administrator's concern, and it would be mixed into the output of `exec`.
    warnings.filterwarnings("ignore", message=r"Python 3\.6 is no longer supported")
    logging.basicConfig(level=logging.WARNING, stream=err, format="%(name)s: %(levelname)s %(message)s")
    parser = build_parser()
    delegated = split_prepare_vm(argv)
    argv, exec_command = split_exec_command(argv) if not delegated else (argv, [])
    try:
        args = parser.parse_args(delegated[0] + ["prepare-vm"] if delegated else argv)
        if args.verb == "exec":
            args.command = list(args.command) + exec_command
    except SystemExit as exc:  # argparse has printed the usage or the help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    if not args.verb or (args.verb == "config-drive" and not args.drive_verb):
        parser.print_usage(err)
        err.write("%s: name a verb (%s --help lists them). [USAGE]\n" % (PROG, PROG))
        return EXIT_USAGE
    session = None
    try:
        if delegated:
            return prepare_vm(prepare_vm_argv(args, delegated[1]))
        session = open_session(args, stdin, err)
        from xscontainer.cli.xapiclient import PoolClient
        ctx = commands.Context(PoolClient(session), out, err, json=as_json, width=output_width(out),
                               this_host=local_host_uuid(args, err, args.verb == "ps" and not args.all_hosts))
        return run_verb(ctx, args, stdin)
    except XSContainerError as exc:
        report_error(exc, as_json, err)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `xscontainer ps | head`
        return EXIT_FAILED
    finally:
        if session is not None:
            from xscontainer.xapi.session import close_session
            close_session(session)


if __name__ == "__main__":
    sys.exit(main())
