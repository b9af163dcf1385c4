"""Imports point down the layers that README's Layout section states.

Every module of ``xscontainer`` is parsed (imports inside functions included, since a deferred
import is still a dependency) and each import of another part of the package is checked against
``LAYERS``. Known violations would be listed, each with why it is still there (there are none
today); the list may only shrink: a new upward import fails, and so does an entry that no longer
happens.
"""

import ast
import os
from typing import Dict, Iterator, Set, Tuple

import xscontainer

PACKAGE_DIR = os.path.dirname(os.path.abspath(xscontainer.__file__))

# Lowest first. A part (top-level module or subpackage of xscontainer) may import parts of a lower
# layer, and parts of its own layer unless the layer is marked independent.
LAYERS = (
    # Pure helpers: no xapi, no sockets of ours.
    ("pure", False, {"xscontainer", "errors", "exitcodes", "xmltext", "jsonbound", "digits", "logfile",
                     "backoff", "packaging", "vendorpath"}),
    # The xapi boundary, and our product's records and rules kept in xapi: settings, pins, pool
    # keys, secrets, which VMs are monitored, the wire rules of a call to our plugin.
    ("xapi", False, {"xapi", "vmsettings", "hostkeys", "poolkeys", "tlscerts", "monitorpolicy", "plugincall"}),
    # Byte streams to an engine: SSH and TLS tunnels, and the monitor's control socket.
    ("transport", False, {"transport"}),
    # What runs over a transport: the engine's HTTP and API and the operations on it, the consumer
    # XML, config drives, the metrics reporter.
    ("engine", False, {"engine", "consumerxml", "configdrive", "metrics"}),
    # Entry points: each stands on the layers below and none on another.
    ("entry", True, {"monitor", "plugin", "prepare"}),
    # The administrator's command stands on top: ``xscontainer prepare-vm`` hands over to
    # xscontainer-prepare-vm (see CLI_HANDS_OVER_TO).
    ("cli", False, {"cli"}),
)
# The entry points the CLI may import: it reaches the monitor and the plugin only through their
# wire rules (transport.control, plugincall), never their code.
CLI_HANDS_OVER_TO = {"prepare"}
# Development tools: they stand up a whole pool, so they may import anything (and nothing below
# may import them).
DEV_TOOLS = {"sim", "testbed", "demo"}

# Known upward imports (importer module, imported module), each with why it is still there: the
# list may only shrink (issue 17).
KNOWN_VIOLATIONS = set()  # type: Set[Tuple[str, str]]


def _rank(part: str) -> Tuple[int, bool]:
    if part in DEV_TOOLS:
        return len(LAYERS), False
    for index, (_name, independent, parts) in enumerate(LAYERS):
        if part in parts:
            return index, independent
    raise AssertionError("xscontainer.%s is in no layer: add it to LAYERS in %s" % (part, __file__))


def _part(module: str) -> str:
    """The top-level module or subpackage ``module`` belongs to ("xscontainer" for the package's
    own names, e.g. ``from xscontainer import __version__``)."""
    pieces = module.split(".")
    if len(pieces) > 1 and (os.path.isdir(os.path.join(PACKAGE_DIR, pieces[1]))
                            or os.path.isfile(os.path.join(PACKAGE_DIR, pieces[1] + ".py"))):
        return pieces[1]
    return "xscontainer"


def _modules() -> Iterator[Tuple[str, str]]:
    """(dotted module name, path) for every module of the package."""
    root = os.path.dirname(PACKAGE_DIR)
    for directory, _dirs, files in os.walk(PACKAGE_DIR):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                if dotted.endswith(".__init__"):
                    dotted = dotted[:-len(".__init__")]
                yield dotted, path


def imports_of(module: str, source: str) -> Set[str]:
    """Every xscontainer module ``source`` imports, wherever the import statement is."""
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from xscontainer import errors" names a module; "from xscontainer.x import y" may not.
            found.update(base + "." + alias.name if base == "xscontainer" else base for alias in node.names)
    return {name for name in found if name == "xscontainer" or name.startswith("xscontainer.")}


def package_imports() -> Iterator[Tuple[str, str]]:
    """(importer, imported) for every import of one part of the package by another."""
    for module, path in _modules():
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        for target in sorted(imports_of(module, source)):
            if _part(target) != _part(module):
                yield module, target


def upward_imports() -> Dict[Tuple[str, str], str]:
    """(importer, imported) -> why it is upward, for every import that breaks LAYERS."""
    bad = {}
    for module, target in package_imports():
        source_part, target_part = _part(module), _part(target)
        source_rank, independent = _rank(source_part)
        target_rank, _ = _rank(target_part)
        if target_rank > source_rank:
            bad[(module, target)] = "%s is above %s" % (target_part, source_part)
        elif target_rank == source_rank and independent:
            bad[(module, target)] = "%s and %s are independent entry points" % (target_part, source_part)
    return bad


def test_every_part_has_a_layer():
    for module, _path in _modules():
        _rank(_part(module))


def test_no_new_upward_import():
    new = {pair: why for pair, why in upward_imports().items() if pair not in KNOWN_VIOLATIONS}
    assert not new, "imports pointing up the layers (README, Layout):\n" + "\n".join(
        "  %s imports %s (%s)" % (a, b, why) for (a, b), why in sorted(new.items()))


def test_known_violations_still_happen():
    gone = set(KNOWN_VIOLATIONS) - set(upward_imports())
    assert not gone, "fixed: remove from KNOWN_VIOLATIONS: %s" % sorted(gone)


def test_the_cli_imports_no_entry_point_but_the_ones_it_hands_over_to():
    entry_points = LAYERS[-2][2]
    found = sorted((module, target) for module, target in package_imports()
                   if _part(module) == "cli" and _part(target) in entry_points - CLI_HANDS_OVER_TO)
    assert not found, "the CLI imports another entry point: %s" % found


def test_the_checker_sees_an_upward_import_inside_a_function():
    source = "def f():\n    from xscontainer.engine.http import Stream\n"
    assert imports_of("xscontainer.transport.ssh", source) == {"xscontainer.engine.http"}


def test_the_checker_resolves_relative_and_package_imports():
    source = "from . import http\nfrom ..xapi import maps\nfrom xscontainer import errors\n"
    assert imports_of("xscontainer.engine.client", source) == {
        "xscontainer.engine", "xscontainer.xapi", "xscontainer.errors"}
