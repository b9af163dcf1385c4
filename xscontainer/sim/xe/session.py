"""Logging in (as xe does: a password file, a local socket or a server) and running one command."""

import sys
import xmlrpc.client
from typing import Optional, Sequence, Tuple

from xscontainer.errors import XSContainerError
from xscontainer.sim.xe.argv import ConnOptions, is_true, param, parse_argv, require
from xscontainer.sim.xe.catalogue import help_text, resolve_command
from xscontainer.sim.xe.commands import (OTHER_IMPLS, PARAM_IMPLS, Output, RecordCache, cmd_update_upload,
                                         ref_convert)
from xscontainer.sim.xe.formatting import format_server_error, login_failure_text
from xscontainer.sim.xe.specs import XeFailure


def read_password_file(path: str) -> Tuple[str, str]:
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except (OSError, IOError):
        raise XeFailure("Error opening password file '%s'" % path)
    if len(lines) < 2:
        raise XeFailure("Error: password file format: expecting username on the first line, "
                        "password on the second line")
    return lines[0], lines[1]


def open_session(conn: ConnOptions):
    """Local Unix socket unless ``-s`` names a server (then plain HTTP over TCP)."""
    import XenAPI
    from xscontainer.xapi import session as xsession
    username, password = conn.username, conn.password
    if conn.password_file:
        username, password = read_password_file(conn.password_file)
    unreachable = XeFailure("Unable to contact server. Please check server and port settings.")
    if conn.server is None:
        try:
            return xsession.open_local_session()
        except XSContainerError as exc:
            cause = exc.__cause__
            if isinstance(cause, XenAPI.Failure):
                raise XeFailure(format_server_error(cause.details[0], cause.details[1:]))
            raise unreachable
    host = conn.server
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host  # an IPv6 literal
    url = "http://%s:%d/" % (host, conn.port if conn.port is not None else 80)
    session = XenAPI.Session(url)
    try:
        session.xenapi.login_with_password(username, password, "1.0", "xe")
    except XenAPI.Failure as exc:
        if exc.details and exc.details[0] == "SESSION_AUTHENTICATION_FAILED":
            raise XeFailure(login_failure_text(exc.details))
        raise XeFailure(format_server_error(exc.details[0], exc.details[1:]))
    except (OSError, IOError):
        raise unreachable
    return session


def run(argv: Sequence[str], stdout, stderr, session_factory=open_session) -> int:
    """Run one xe invocation; returns the exit code (0, or 1 on any error like the real xe)."""
    import XenAPI
    try:
        inv = parse_argv(argv)
        if inv.command is None:
            # newcli.ml: a bare "xe" prints the usage on stderr and exits 0.
            stderr.write(help_text())
            return 0
        if inv.command == "help" or inv.help:
            stdout.write(help_text())
            return 0
        op, spec, required = resolve_command(inv.command)
        require(inv.params, required)
        out = Output(is_true(param(inv.params, "minimal")))
        session = session_factory(inv.conn)
        try:
            try:
                if spec is not None:
                    PARAM_IMPLS[op](session, spec, inv.params, out)
                elif op == "update-upload":
                    cmd_update_upload(session, inv.conn, inv.params, out)
                else:
                    OTHER_IMPLS[op](session, inv.params, out)
            except XenAPI.Failure as exc:
                details = [str(d) for d in exc.details] or ["INTERNAL_ERROR"]
                cache = RecordCache(session)
                raise XeFailure(format_server_error(
                    details[0], [ref_convert(cache, d) for d in details[1:]]))
        finally:
            try:
                session.xenapi.session.logout()
            except Exception:  # the session may already be gone; nothing to report
                pass
        stdout.write(out.text())
        return 0
    except XeFailure as exc:
        stderr.write(exc.message.rstrip("\n") + "\n")
        return 1
    except (OSError, IOError, EOFError, xmlrpc.client.Error):
        stderr.write("Lost connection to the server.\n")
        return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    code = run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr)
    sys.stdout.flush()
    return code
