"""The generic encoding of the consumer XML (the original's ``converttoxml``, made always
well-formed), pure, no I/O:

* The document is ``<?xml version="1.0" ?>`` followed by the root element, no newline, no
  indentation; an element without content is written ``<name/>``.
* A dict becomes one child element per key, **keys sorted** (code-point order) so that the same
  state always gives byte-identical XML; a list becomes one ``<item>`` per element, in order; a
  scalar becomes text: ``True``/``False`` for booleans, ``None`` for null, ``str()`` otherwise.
* A key becomes ``<SPECIAL_XS_ENCODED_ELEMENT name="the key">`` when it is not a plain XML name
  (ASCII ``[A-Za-z_][A-Za-z0-9_.-]*``), starts with ``xml`` in any case, is the literal
  ``SPECIAL_XS_ENCODED_ELEMENT`` or a member of JavaScript's ``Object.prototype``
  (``hasOwnProperty``, ``constructor``, ``__proto__`` ...: Xen Orchestra's parser throws on them),
  or is reserved at that depth: the document's root name anywhere
  below the root (XenCenter looks ``docker_info`` up by descendant search), and ``entry``/``item``
  anywhere below a ``docker_ps`` entry (XenCenter collects every descendant ``entry``). Labels such
  as ``traefik.frontend.rule`` are plain names and stay elements; ``traefik...domains[0].main``,
  ``a:b``, ``80/tcp``, ``1abc`` are encoded. XenCenter's details tree shows the ``name``.
* Text and attribute values are escaped exactly once with the predefined entities only (``&amp;``
  ``&lt;`` ``&gt;``, and ``&quot;`` in attributes) -- no numeric references, which Xen Orchestra's
  parser does not decode. What we write is what parsers read: line ends are normalised to ``\\n``
  (XML parsers would do it anyway), tabs and newlines in attribute values become spaces
  (attribute-value normalisation), and characters XML 1.0 cannot carry at all (C0 controls other
  than tab/newline, lone surrogates, U+FFFE/U+FFFF) are made visible by ``xscontainer.xmltext``'s
  rule, the one every plugin result follows (ESC becomes the four characters ``\\x1b``).
"""

import collections.abc
import re
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

from xscontainer.xmltext import xml_clean

XML_DECLARATION = '<?xml version="1.0" ?>'
SPECIAL_ELEMENT = "SPECIAL_XS_ENCODED_ELEMENT"

# Xen Orchestra's fast-xml-parser builds plain JS objects: an element named after a member of
# Object.prototype (``hasOwnProperty`` followed by any other key) makes it throw, parseXml returns
# '' and the whole VM object fails. Such names are encoded like invalid ones.
JS_OBJECT_MEMBERS = frozenset([
    "constructor", "__proto__", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf",
    "propertyIsEnumerable", "toLocaleString", "__defineGetter__", "__defineSetter__",
    "__lookupGetter__", "__lookupSetter__"])
_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.\-]*\Z")


# -- escaping ------------------------------------------------------------------------------

def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return xml_clean(text)


def escape_text(text: str) -> str:
    """Character data as consumers will read it back, escaped once."""
    return _clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(text: str) -> str:
    """A double-quoted attribute value as consumers will read it back, escaped once."""
    text = escape_text(text).replace('"', "&quot;")
    return text.replace("\t", " ").replace("\n", " ")


def scalar_text(value: Any) -> str:
    """The original's scalar rule: str(), so booleans are ``True``/``False`` and null is ``None``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def is_plain_name(key: str) -> bool:
    """True when ``key`` can be written as an element name that every consumer accepts."""
    return (bool(_NAME_RE.match(key)) and not key.lower().startswith("xml")
            and key != SPECIAL_ELEMENT and key not in JS_OBJECT_MEMBERS)


# -- generic encoding ----------------------------------------------------------------------

def open_tag(key: Any, reserved: FrozenSet[str]) -> Tuple[str, str]:
    """(start tag without '>', end tag) for a dict key."""
    name = key if isinstance(key, str) else scalar_text(key)
    if is_plain_name(name) and name not in reserved:
        return "<" + name, "</%s>" % name
    return ('<%s name="%s"' % (SPECIAL_ELEMENT, escape_attribute(name)),
            "</%s>" % SPECIAL_ELEMENT)


def sorted_items(mapping: Mapping) -> List[Tuple[Any, Any]]:
    return sorted(mapping.items(), key=lambda kv: kv[0] if isinstance(kv[0], str) else scalar_text(kv[0]))


def append_element(parts: List[str], start: str, end: str, value: Any, reserved: FrozenSet[str]) -> None:
    """Append one element (start tag already decided) holding ``value``."""
    if isinstance(value, collections.abc.Mapping):
        if not value:
            parts.append(start + "/>")
            return
        parts.append(start + ">")
        for key, child in sorted_items(value):
            child_start, child_end = open_tag(key, reserved)
            append_element(parts, child_start, child_end, child, reserved)
        parts.append(end)
    elif isinstance(value, (list, tuple)):
        if not value:
            parts.append(start + "/>")
            return
        parts.append(start + ">")
        for child in value:
            append_element(parts, "<item", "</item>", child, reserved)
        parts.append(end)
    else:
        parts.append(start + ">" + escape_text(scalar_text(value)) + end)


def render_document(root: str, value: Any, reserved: Iterable[str] = ()) -> str:
    """The generic encoding of ``value`` as the document element ``root`` (a plain name).

    ``reserved`` names are encoded like invalid ones wherever they occur as keys; ``root`` itself
    always is, so consumers looking ``root`` up by descendant search find only the root."""
    if not is_plain_name(root):
        raise ValueError("not a plain XML name: %r" % (root,))
    parts = [XML_DECLARATION]
    append_element(parts, "<" + root, "</%s>" % root, value, frozenset(reserved) | {root})
    return "".join(parts)


def utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def fit_document(root: str, value: Mapping, budget: Optional[int] = None,
                 cost: Callable[[str], int] = utf8_length, first: Sequence[str] = ()) -> str:
    """``render_document(root, value)`` when it fits in ``budget``; else the top-level keys named in
    ``first`` (in that order), then the others by name, each while it fits, and the root says how
    many were left out: ``<root omitted="N">``."""
    document = render_document(root, value)
    if budget is None or cost(document) <= budget:
        return document
    reserved = frozenset([root])
    pieces = {}  # type: Dict[Any, str]
    for key, child in value.items():
        parts = []  # type: List[str]
        start, end = open_tag(key, reserved)
        append_element(parts, start, end, child, reserved)
        pieces[key] = "".join(parts)
    names = [k for k in first if k in pieces] + [k for k, _ in sorted_items(value) if k not in first]
    opening = '<%s omitted="%d">' % (root, len(names))
    room = budget - cost(XML_DECLARATION + opening + "</%s>" % root)
    kept = set()
    for key in names:
        size = cost(pieces[key])
        if size <= room:
            kept.add(key)
            room -= size
    body = "".join(pieces[k] for k, _ in sorted_items(value) if k in kept)
    return '%s<%s omitted="%d">%s</%s>' % (XML_DECLARATION, root, len(names) - len(kept), body, root)
