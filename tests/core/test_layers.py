"""Imports point down the layers that README's Layout section states.

Every module of ``xscontainer`` is parsed (imports inside functions included, since a deferred
import is still a dependency) and each import of another part of the package is checked against
``LAYERS``. Today's known violations are listed, each with why it is still there; the list may only
shrink: a new upward import fails, and so does an entry that no longer happens.
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
    ("pure", False, {"xscontainer", "errors", "exitcodes", "xmltext", "jsonbound", "logfile", "backoff",
                     "packaging", "vendorpath"}),
    # The xapi boundary, and our product's records kept in xapi (settings, pins, pool keys, secrets).
    ("xapi", False, {"xapi", "vmsettings", "hostkeys", "poolkeys", "tlscerts", "xenapiplugin"}),
    ("transport", False, {"transport"}),
    # What runs over a transport: the engine's HTTP and API, the operations on it, config drives,
    # the metrics reporter.
    ("engine", False, {"engine", "operations", "configdrive", "metrics"}),
    # Entry points: each stands on the layers below and none on another.
    ("entry", True, {"monitor", "plugin", "cli", "prepare"}),
)
# Development tools: they stand up a whole pool, so they may import anything (and nothing below
# may import them).
DEV_TOOLS = {"sim", "testbed", "demo"}

# Known upward imports (importer module, imported module): the list may only shrink (issue 17).
KNOWN_VIOLATIONS = {
    # The byte-stream seam (Stream, SocketStream) belongs in transport; it lives in engine/http.py,
    # which another change owns at the moment: move it down, leaving a re-export there.
    ("xscontainer.transport.ssh", "xscontainer.engine.http"),
    ("xscontainer.transport.tls", "xscontainer.engine.http"),
    # The SSH tunnel's /_ping probe parses the reply with the engine's HTTP parser; goes away when
    # "connect a VM" (the probe included) moves up into engine.
    ("xscontainer.transport.ssh", "xscontainer.engine.httpparse"),
    # The plugin uses the monitor's control-socket client and its consumer-XML renderers: the
    # consumer XML becomes its own package under both, the client goes to whoever calls it.
    ("xscontainer.plugin.engine_access", "xscontainer.monitor.coalesce"),
    ("xscontainer.plugin.engine_access", "xscontainer.monitor.control"),
    ("xscontainer.plugin.engine_access", "xscontainer.monitor.policy"),
    ("xscontainer.plugin.engine_access", "xscontainer.monitor.render"),
    ("xscontainer.plugin.engine_access", "xscontainer.monitor.state"),
    # The CLI's console and "is the monitor up" use the monitor's control-socket client (same fix).
    ("xscontainer.cli.console", "xscontainer.monitor.control"),
    ("xscontainer.cli.main", "xscontainer.monitor.control"),
    # The CLI sizes a create_config_drive call as the plugin will, and explains a failed
    # forwarding as the plugin does: both belong below plugin and cli (the plugin call's wire
    # rules), not in plugin.
    ("xscontainer.cli.commands", "xscontainer.plugin"),
    ("xscontainer.cli.xapiclient", "xscontainer.plugin.routing"),
    # ``xscontainer prepare-vm`` hands its arguments to xscontainer-prepare-vm (deferred import).
    ("xscontainer.cli.main", "xscontainer.prepare.cli"),
}


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


def upward_imports() -> Dict[Tuple[str, str], str]:
    """(importer, imported) -> why it is upward, for every import that breaks LAYERS."""
    bad = {}
    for module, path in _modules():
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        source_part = _part(module)
        source_rank, independent = _rank(source_part)
        for target in sorted(imports_of(module, source)):
            target_part = _part(target)
            if target_part == source_part:
                continue
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


def test_the_checker_sees_an_upward_import_inside_a_function():
    source = "def f():\n    from xscontainer.engine.http import Stream\n"
    assert imports_of("xscontainer.transport.ssh", source) == {"xscontainer.engine.http"}


def test_the_checker_resolves_relative_and_package_imports():
    source = "from . import http\nfrom ..xapi import maps\nfrom xscontainer import errors\n"
    assert imports_of("xscontainer.engine.client", source) == {
        "xscontainer.engine", "xscontainer.xapi", "xscontainer.errors"}
