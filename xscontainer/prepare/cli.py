"""``xscontainer-prepare-vm``: parse, open the xapi session, run one step function, map errors to
exit codes (the table in ``xscontainer.exitcodes``, also in ``--help``)."""

import logging
import sys
import traceback
from typing import List, Optional

from xscontainer.errors import InvalidArgument, XSContainerError
from xscontainer.prepare import steps
from xscontainer.prepare.guest import read_secret_file
from xscontainer.exitcodes import EXIT_INTERNAL, EXIT_REFUSED, EXIT_USAGE
from xscontainer.prepare.options import PROG, PrepareOptions, exit_code_for, parse_args
from xscontainer.xapi.session import close_session, open_local_session, open_url_session


def open_session(options: PrepareOptions, console: steps.Console):
    if not options.url:
        return open_local_session()
    if options.password_file_xapi:
        password = read_secret_file(options.password_file_xapi, "xapi password")
    elif console.interactive:
        password = console.secret("Password of %s at %s: " % (options.username_xapi, options.url))
    else:
        raise InvalidArgument("There is no terminal to ask for the xapi password: give --password-file-xapi.",
                              code="USAGE")
    if options.insecure_xapi:
        console.error("%s: warning: --insecure-xapi: the TLS certificate of xapi at %s is not verified; whoever "
                      "sits between here and the pool can read the password and act as root in the pool."
                      % (PROG, options.url))
    return open_url_session(options.url, options.username_xapi, password, ca_file=options.ca_file_xapi,
                            insecure=options.insecure_xapi, options=("--ca-file-xapi", "--insecure-xapi"))


def run(options: PrepareOptions, console: steps.Console) -> int:
    credentials = steps.file_credentials(options, console) if options.mode == "ssh" else None
    session = open_session(options, console)
    try:
        if options.verify_only:
            return steps.verify_only(options, session, console)
        if options.mode == "ssh":
            return steps.prepare_ssh(options, session, console, credentials)
        return steps.prepare_tls(options, session, console)
    finally:
        close_session(session)


def main(argv: Optional[List[str]] = None, console: Optional[steps.Console] = None) -> int:
    console = console or steps.Console()
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv)
    except InvalidArgument as exc:
        console.error("%s: %s (see --help)" % (PROG, exc.message))
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.INFO if options.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not options.verbose:
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    try:
        return run(options, console)
    except XSContainerError as exc:
        console.error("%s: %s [%s]" % (PROG, exc.message, exc.code))
        return exit_code_for(exc)
    except KeyboardInterrupt:
        console.error("%s: interrupted." % PROG)
        return EXIT_REFUSED
    except Exception:  # a bug: say so, with what is needed to report it
        console.error("%s: internal error, please report it:\n%s" % (PROG, traceback.format_exc()))
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
