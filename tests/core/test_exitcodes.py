"""One table of exit codes: xscontainer and xscontainer-prepare-vm give a failure the same number,
and each --help lists the table's rows for its command."""

import pytest

from xscontainer import exitcodes
from xscontainer.cli.failures import exit_code
from xscontainer.cli.main import build_parser
from xscontainer.errors import ConnectionFailure, InvalidArgument, NotFound, XapiError
from xscontainer.prepare.options import EPILOG, exit_code_for


def test_a_number_means_one_thing_and_scripts_keep_xscontainers_numbers():
    numbers = [row.number for row in exitcodes.TABLE]
    assert numbers == sorted(set(numbers))
    assert [number for number, _ in exitcodes.rows(exitcodes.XSCONTAINER)] == [0, 1, 2, 3, 4, 5, 6]
    assert [number for number, _ in exitcodes.rows(exitcodes.PREPARE_VM)] == [0, 1, 2, 3, 4, 5, 7, 8, 9]


@pytest.mark.parametrize("exc,number", [
    (InvalidArgument("bad option"), exitcodes.EXIT_USAGE),
    (NotFound("no such VM", code="VM_NOT_FOUND"), exitcodes.EXIT_NOT_FOUND),
    (ConnectionFailure("no route", code="SSH_HOSTKEY_MISMATCH"), exitcodes.EXIT_UNREACHABLE),
    (XapiError("cannot log in", code="XAPI_UNREACHABLE"), exitcodes.EXIT_XAPI),
    (XapiError("refused the login", code="XAPI_AUTH_FAILED"), exitcodes.EXIT_XAPI),
])
def test_both_commands_give_a_failure_the_same_number(exc, number):
    assert exit_code(exc) == exit_code_for(exc) == number


def test_each_help_lists_its_rows():
    xscontainer_help = build_parser().format_help()
    for number, meaning in exitcodes.rows(exitcodes.XSCONTAINER):
        assert "    %d  %s" % (number, meaning.split()[0]) in xscontainer_help
    assert EPILOG == exitcodes.help_text(exitcodes.PREPARE_VM)
    assert "    9  refused" in EPILOG and "    6  " not in EPILOG
