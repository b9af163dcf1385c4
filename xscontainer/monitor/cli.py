"""``xscontainer-monitor``: the per-host daemon (run by systemd as xscontainer-monitor.service)."""

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import threading
from typing import List, Optional

from xscontainer import logfile
from xscontainer.errors import XSContainerError

DEFAULT_LOG = "/var/log/xscontainer.log"
DEFAULT_CONTROL_DIR = "/run/xscontainer"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xscontainer-monitor", description=__doc__)
    parser.add_argument("--inventory", help="host inventory file (default /etc/xensource-inventory)")
    parser.add_argument("--xapi-socket", help="xapi's Unix socket (default /var/lib/xcp/xapi)")
    parser.add_argument("--log-file", default=DEFAULT_LOG, help="log file ('-' for stderr)")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--warn-after", type=float, default=120.0,
                        help="seconds of failure before the xapi message about a VM (default 120)")
    parser.add_argument("--control-dir", default=DEFAULT_CONTROL_DIR,
                        help="directory of the local control socket")
    parser.add_argument("--rrdd-socket", default=os.environ.get("XSCONTAINER_RRDD_SOCKET", "/var/lib/xcp/xcp-rrdd"),
                        help="xcp-rrdd's socket, for per-container metrics ('' turns them off)")
    return parser


def configure_logging(path: str, debug: bool) -> None:
    """``path`` ('-': stderr) gets every line, in UTF-8 whatever the locale (xscontainer.logfile)."""
    if path == "-":
        handler = logging.StreamHandler(sys.stderr)  # type: logging.Handler
        handler.setFormatter(logging.Formatter(logfile.LINE_FORMAT))
    else:
        handler = logfile.file_handler(path)  # reopened after logrotate moved it away
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("paramiko").setLevel(logging.WARNING)


def main(argv: Optional[List[str]] = None) -> int:
    # Signals first: systemd may stop the service while it is still importing and connecting.
    stopping = threading.Event()
    running = []  # the Monitor, once built

    def on_signal(signum, frame):
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        stopping.set()
        for monitor in running:
            monitor.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    args = _parser().parse_args(argv)
    configure_logging(args.log_file, args.debug)
    from xscontainer.monitor.service import Monitor, MonitorOptions
    from xscontainer.xapi.session import open_local_session
    options = MonitorOptions(warn_after=args.warn_after, control_dir=args.control_dir,
                             rrdd_socket=args.rrdd_socket or None)
    try:
        monitor = Monitor(lambda: open_local_session(args.xapi_socket), args.inventory, options)
    except XSContainerError as exc:
        print("xscontainer-monitor: %s (%s)" % (exc.message, exc.code), file=sys.stderr)
        return 1
    running.append(monitor)
    if stopping.is_set():
        return 0
    logging.getLogger(__name__).info("xscontainer-monitor starting (control socket %s)", monitor.control_path)
    failure = []

    def run() -> None:
        try:
            monitor.run()
        except XSContainerError as exc:
            failure.append(exc)

    runner = threading.Thread(target=run, name="monitor")
    runner.start()
    if stopping.is_set():
        monitor.stop()
    while runner.is_alive():
        runner.join(0.5)  # the main thread stays free to receive signals
    if failure:
        logging.getLogger(__name__).error("xscontainer-monitor failed: %s", failure[0])
        print("xscontainer-monitor: %s (%s)" % (failure[0].message, failure[0].code), file=sys.stderr)
        return 1
    logging.getLogger(__name__).info("xscontainer-monitor stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
