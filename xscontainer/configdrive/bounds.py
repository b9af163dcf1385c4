"""Bounds on what a configuration may make a parser build: nesting depth (YAML and JSON) and the
nodes YAML aliases add. A configuration beyond them is INVALID_CONFIGURATION with a sentence,
never an internal RecursionError, and never a document cloud-init in the guest would expand
without bound (the "billion laughs": nine aliases of nine aliases of ... make 9**9 nodes from a
few hundred bytes).
"""

from typing import Any, Dict, List, Tuple

import yaml

from xscontainer import jsonbound
from xscontainer.errors import ConfigDriveError

# cloud-config and Ignition documents nest well under 10 levels.
MAX_DEPTH = jsonbound.MAX_DEPTH
# Anchors are rare in cloud-configs; where used (shared write_files defaults, one key list for two
# users) they add tens of nodes. Past this many, expansion is an attack or a mistake.
MAX_ALIAS_NODES = 10000
_CAP = 1 << 40  # node counts saturate here: exponential expansions stay small integers


def _too_deep(what: str) -> ConfigDriveError:
    return ConfigDriveError("The %s nests deeper than %d levels; no %s needs that many."
                            % (what, MAX_DEPTH, what), code="INVALID_CONFIGURATION")


class _DepthBoundLoader(yaml.SafeLoader):
    """PyYAML's safe loader, whose composer (recursive: three frames a level) stops at MAX_DEPTH."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_DEPTH:
            raise _too_deep("cloud-config")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` within the bounds: YAMLError for bad YAML (the caller says where),
    ConfigDriveError(INVALID_CONFIGURATION) beyond the bounds."""
    loader = _DepthBoundLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> List[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases add more than MAX_ALIAS_NODES nodes, nest it
    deeper than MAX_DEPTH once expanded, or make a structure contain itself.

    An alias is the very node of its anchor, so the composed document is a graph: walked without
    recursion, each distinct node once, with its expanded size and depth memoized.
    """
    expanded = {}  # type: Dict[int, Tuple[int, int]]  # id(node) -> (nodes, depth) once expanded
    open_nodes = set()  # nodes whose children are being walked: the path from the root
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes = [expanded[id(child)] for child in _children(node)]
            depth = 1 + max([d for _, d in sizes] or [0])
            if depth > MAX_DEPTH:
                raise _too_deep("cloud-config (with its aliases expanded)")
            expanded[key] = (min(_CAP, 1 + sum(n for n, _ in sizes)), depth)
            continue
        if key in expanded:
            continue
        if key in open_nodes:
            raise ConfigDriveError("The cloud-config has an alias inside its own anchor: a structure that "
                                   "contains itself, which cloud-init cannot use.", code="INVALID_CONFIGURATION")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in expanded)
    added = expanded[id(root)][0] - len(expanded)
    if added > MAX_ALIAS_NODES:
        raise ConfigDriveError("The cloud-config's aliases (*name) would expand it by more than %d nodes, "
                               "which cloud-init in the guest would build; write the repeated parts out "
                               "or use fewer aliases." % MAX_ALIAS_NODES, code="INVALID_CONFIGURATION")


def load_json(text: str, what: str) -> Any:
    """``json.loads`` within MAX_DEPTH: ValueError for bad JSON, ConfigDriveError beyond the bound."""
    try:
        return jsonbound.loads(text, MAX_DEPTH)
    except jsonbound.TooDeep as exc:
        raise _too_deep(what) from exc
