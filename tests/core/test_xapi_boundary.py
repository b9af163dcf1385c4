"""XenAPI (xapi's client library) is imported only behind ``xscontainer.xapi`` (issue 17).

Code about our product reaches xapi through ``xscontainer.xapi``, which re-exports what it needs
(``Failure``, ``Session``); the simulator (``xscontainer.sim``) is about xapi itself and may import
XenAPI. Every module is parsed, imports inside functions included.
"""

import ast
import os
from typing import List, Tuple

import XenAPI

import xscontainer
import xscontainer.xapi

PACKAGE_DIR = os.path.dirname(os.path.abspath(xscontainer.__file__))
# Where XenAPI may be imported: the xapi boundary itself, and the simulator.
ALLOWED = ("xapi", "sim")


def xenapi_imports(source: str) -> List[int]:
    """Line numbers of the imports of XenAPI (or one of its modules) in ``source``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(name == "XenAPI" or name.startswith("XenAPI.") for name in names):
            lines.append(node.lineno)
    return sorted(lines)


def importers_outside_the_boundary() -> List[Tuple[str, int]]:
    found = []
    for directory, _dirs, files in os.walk(PACKAGE_DIR):
        relative = os.path.relpath(directory, PACKAGE_DIR).split(os.sep)
        if relative[0] in ALLOWED:
            continue
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as handle:
                    source = handle.read()
                found.extend((os.path.relpath(path, os.path.dirname(PACKAGE_DIR)), line)
                             for line in xenapi_imports(source))
    return sorted(found)


def test_only_the_xapi_package_and_the_simulator_import_xenapi():
    found = importers_outside_the_boundary()
    assert not found, "import XenAPI outside xscontainer/xapi and xscontainer/sim (use xscontainer.xapi):\n" \
        + "\n".join("  %s:%d" % place for place in found)


def test_a_failure_xenapi_raises_is_caught_as_the_boundarys_failure():
    try:
        raise XenAPI.Failure(["UUID_INVALID", "VM", "nope"])
    except xscontainer.xapi.Failure as exc:
        assert exc.details == ["UUID_INVALID", "VM", "nope"]
    assert xscontainer.xapi.Session is XenAPI.Session


def test_the_checker_sees_every_form_of_the_import():
    source = ("import XenAPI\nfrom XenAPI import Failure\nimport os, XenAPI.XenAPI as x\n"
              "def f():\n    import XenAPI\nfrom .XenAPI import y\nimport XenAPIPlugin\n")
    assert xenapi_imports(source) == [1, 2, 3, 5]
