"""dom0's log file (/var/log/xscontainer.log) is UTF-8 whatever the locale: the monitor's handler
and the plugin's, configured by their entry points, in a child with xapi's bare environment (on
Python 3.6 that is the ASCII C locale, where argv arrives as lone surrogates)."""

import subprocess
import sys

import pytest

BARE_ENV = {"PATH": "/sbin:/usr/sbin:/bin:/usr/bin"}
CHILD = """
import logging, sys
from %s import configure_logging
configure_logging(*([sys.argv[1]] + %s))
logging.getLogger("xscontainer.test").info("caf\\u00e9 \\U0001f600 %%s", sys.argv[2])
"""


@pytest.mark.parametrize("module, extra", [("xscontainer.monitor.cli", "[False]"),
                                           ("xscontainer.plugin.entry", "[]")])
def test_log_lines_are_utf8_and_never_lost_in_the_c_locale(tmp_path, module, extra):
    log = tmp_path / "xscontainer.log"
    child = subprocess.run([sys.executable, "-c", CHILD % (module, extra), str(log), "arg-\u00e9t\u00e9"],
                           env=BARE_ENV, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.returncode == 0 and child.stderr == b"", child.stderr.decode("utf-8", "replace")
    line = log.read_bytes().decode("utf-8")  # strict
    assert "xscontainer.test: caf\u00e9 \U0001f600 arg-" in line
    # 3.7+ decode argv as UTF-8 in the C locale; 3.6 gives lone surrogates, shown escaped.
    assert line.rstrip("\n").endswith(("arg-\u00e9t\u00e9", "arg-\\udcc3\\udca9t\\udcc3\\udca9"))
