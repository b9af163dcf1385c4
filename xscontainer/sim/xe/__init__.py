"""The ``xe`` command: real xe syntax and output, as a pure XenAPI client (simulator or real host).

Pure modules (tested with literal records): ``specs`` (record schemas, error texts), ``argv`` (the
command line), ``formatting`` (values, records, filters), ``catalogue`` (which commands exist and
what they require). I/O: ``commands`` (each command over a XenAPI session) and ``session`` (login,
``run``, ``main``). Texts and layout follow xapi's CLI server (xen-api ``ocaml/xapi-cli-server``:
cli_printer.ml, cli_operations.ml, records.ml, xapi_cli.ml, cli_util.ml) and client
(``ocaml/xe-cli/newcli.ml``).
"""

from xscontainer.sim.xe.argv import parse_argv, require
from xscontainer.sim.xe.catalogue import resolve_command
from xscontainer.sim.xe.commands import Output, plugin_args
from xscontainer.sim.xe.formatting import (chosen_fields, filter_records, find_field, format_minimal,
                                           format_server_error, format_table, format_value, list_filters,
                                           login_failure_text, qualifier, record_rows)
from xscontainer.sim.xe.session import main, run
from xscontainer.sim.xe.specs import CLASSES, XeFailure

__all__ = ["CLASSES", "Output", "XeFailure", "chosen_fields", "filter_records", "find_field", "format_minimal",
           "format_server_error", "format_table", "format_value", "list_filters", "login_failure_text", "main",
           "parse_argv", "plugin_args", "qualifier", "record_rows", "require", "resolve_command", "run"]
