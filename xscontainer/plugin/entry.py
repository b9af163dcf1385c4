"""Map the plugin functions onto xapi's plugin protocol (``XenAPIPlugin.dispatch``).

Everything about the host comes from the dom0 tree the plugin was started from
(``xscontainer.xapi.dom0``), never from the environment, which xapi leaves empty but for ``PATH``.
The plugin logs to ``<root>/var/log/xscontainer.log`` (the monitor's file), in UTF-8 whatever the
locale: failures with their code, never arguments such as a configuration.
"""

import logging
import sys
from typing import Callable, Dict

from xscontainer import logfile, xapi
from xscontainer.errors import XSContainerError
from xscontainer.plugin.functions import FUNCTIONS, Here, run_function
from xscontainer.plugin.validate import UUID_RE
from xscontainer.xapi import dom0, xenapiplugin

PLUGIN_FAILURE = "XENAPI_PLUGIN_FAILURE"
LOG_FORMAT = "%(asctime)s %(levelname)s [plugin %(process)d] %(name)s: %(message)s"
log = logging.getLogger(__name__)


def _about(fn: str, args: Dict[str, str]) -> str:
    """``fn`` and the VM it is about, when the caller named one by a well-formed uuid."""
    vm = args.get("vmuuid", "")
    return "%s (VM %s)" % (fn, vm) if UUID_RE.fullmatch(vm) else fn


def _wrap(fn: str, tree: dom0.Dom0) -> Callable:
    def call(session: xapi.Session, args: Dict[str, str]) -> str:
        try:
            return run_function(session, fn, args, Here(tree.host_uuid(), tree.xapi_socket))
        except XSContainerError as exc:
            log.info("%s failed: %s (%s)", _about(fn, args), exc.message, exc.code)
            raise xenapiplugin.Failure(PLUGIN_FAILURE, [fn, exc.code, exc.message]) from exc
        except xapi.Failure as exc:
            # A forwarded call's failure, or xapi's own, reaches the caller unchanged.
            details = [str(d) for d in exc.details] or ["INTERNAL_ERROR"]
            log.info("%s failed in xapi: %s", _about(fn, args), details[0])
            raise xenapiplugin.Failure(details[0], details[1:]) from exc
        except Exception as exc:  # the caller gets a code and a sentence, never a traceback
            log.exception("%s failed", _about(fn, args))
            raise xenapiplugin.Failure(PLUGIN_FAILURE, [fn, "INTERNAL_ERROR", "%s: %s" % (
                exc.__class__.__name__, exc)]) from exc
    return call


def configure_logging(path: str) -> None:
    """Append to ``path`` in UTF-8 (xscontainer.logfile); without a writable log the call runs."""
    try:
        handler = logfile.file_handler(path, LOG_FORMAT, watched=False)  # a short-lived process
    except OSError:
        return
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("paramiko").setLevel(logging.WARNING)


def main() -> None:
    tree = dom0.of_plugin(sys.argv[0])
    configure_logging(tree.log_file)
    xenapiplugin.dispatch({fn: _wrap(fn, tree) for fn in FUNCTIONS})
