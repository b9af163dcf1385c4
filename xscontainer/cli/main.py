"""``xscontainer``: opens the xapi session, runs one verb (the command line is ``parser``: its
usage, verbs and exit codes), and maps errors to exit codes and messages."""

import argparse
import json
import logging
import os
import shutil
import sys
import warnings
from typing import List, Optional, TextIO

from xscontainer.cli import commands
from xscontainer.cli.failures import exit_code
from xscontainer.cli.parser import PROG, build_parser, prepare_vm_argv, split_exec_command, split_prepare_vm
from xscontainer.errors import InvalidArgument, XapiError, XSContainerError
from xscontainer.exitcodes import EXIT_FAILED, EXIT_USAGE


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
        from xscontainer.transport.control import control_socket_path
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
