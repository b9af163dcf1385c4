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
# Each xapi call of the monitor waits at most this long: far above event.from's 2 s wait and a
# loaded xapi's slowest answer to the calls we make, short enough that a hung xapi is left
# (and reconnected to) within a minute instead of blocking a thread forever.
XAPI_TIMEOUT = 60.0


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
        monitor = Monitor(lambda: open_local_session(args.xapi_socket, XAPI_TIMEOUT), args.inventory, options)
    except XSContainerError as exc:
        print("xscontainer-monitor: %s (%s)" % (exc.message, exc.code), file=sys.stderr)
        return 1
    running.append(monitor)
    if stopping.is_set():
        return 0
    logging.getLogger(__name__).info("xscontainer-monitor starting (control socket %s)", monitor.control_path)
    return run_monitor(monitor, stopping)


def run_monitor(monitor, stopping: threading.Event) -> int:
    """Run ``monitor`` (``run()``/``stop()``) until it ends; the exit status. 0 only when it ended
    because a signal asked it to: a monitor that fails or ends by itself exits 1, so that
    systemd's Restart=on-failure starts it again."""
    log = logging.getLogger(__name__)
    failure = []  # type: List[BaseException]

    def run() -> None:
        try:
            monitor.run()
        except BaseException as exc:  # whatever ends the thread must reach the exit status
            failure.append(exc)
            if not isinstance(exc, XSContainerError):
                log.exception("xscontainer-monitor: unexpected error")

    runner = threading.Thread(target=run, name="monitor")
    runner.start()
    if stopping.is_set():
        monitor.stop()
    while runner.is_alive():
        runner.join(0.5)  # the main thread stays free to receive signals
    if failure:
        exc = failure[0]
        message = exc.message if isinstance(exc, XSContainerError) else "%s: %s" % (type(exc).__name__, exc)
        code = exc.code if isinstance(exc, XSContainerError) else "INTERNAL_ERROR"
        log.error("xscontainer-monitor failed: %s (%s)", message, code)
        print("xscontainer-monitor: %s (%s)" % (message, code), file=sys.stderr)
        return 1
    if not stopping.is_set():
        log.error("xscontainer-monitor stopped without being asked to")
        print("xscontainer-monitor: stopped without being asked to (INTERNAL_ERROR)", file=sys.stderr)
        return 1
    log.info("xscontainer-monitor stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
