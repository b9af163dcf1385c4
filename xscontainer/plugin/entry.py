"""Map the plugin functions onto xapi's plugin protocol (``XenAPIPlugin.dispatch``)."""

import logging
from typing import Callable, Dict

import XenAPI

from xscontainer import xenapiplugin
from xscontainer.errors import XSContainerError
from xscontainer.plugin.functions import FUNCTIONS, run_function

PLUGIN_FAILURE = "XENAPI_PLUGIN_FAILURE"
log = logging.getLogger(__name__)


def _wrap(fn: str) -> Callable:
    def call(session: "XenAPI.Session", args: Dict[str, str]) -> str:
        try:
            return run_function(session, fn, args)
        except XSContainerError as exc:
            raise xenapiplugin.Failure(PLUGIN_FAILURE, [fn, exc.code, exc.message]) from exc
        except XenAPI.Failure as exc:
            # A forwarded call's failure, or xapi's own, reaches the caller unchanged.
            details = [str(d) for d in exc.details] or ["INTERNAL_ERROR"]
            raise xenapiplugin.Failure(details[0], details[1:]) from exc
        except Exception as exc:  # the caller gets a code and a sentence, never a traceback
            log.exception("plugin function %s failed", fn)
            raise xenapiplugin.Failure(PLUGIN_FAILURE, [fn, "INTERNAL_ERROR", "%s: %s" % (
                exc.__class__.__name__, exc)]) from exc
    return call


def main() -> None:
    xenapiplugin.dispatch({fn: _wrap(fn) for fn in FUNCTIONS})
