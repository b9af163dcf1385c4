"""The one rule for text that travels in XML 1.0 (plugin results, ``VM.other_config`` documents).

XML 1.0 cannot carry C0 control characters other than TAB, LF and CR, lone surrogates, U+FFFE or
U+FFFF, not even as character references; xapi's parser (xmlm) refuses a plugin output holding
one. Each such character is written as a visible escape instead: ``\\x1b`` (the four characters
backslash, x, 1, b) for a control character, ``\\udc80`` or ``\\ufffe`` for the others. Nothing is
dropped, and every other character, backslashes included, is left as it is, so the escape is for
a reader, not for decoding back. The rule is idempotent: clean text stays unchanged.
"""

import re
from typing import Match

_NOT_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _visible(match: Match) -> str:
    code = ord(match.group())
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code


def xml_clean(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry made visible (see the module)."""
    return _NOT_XML_RE.sub(_visible, text)


def is_xml_clean(text: str) -> bool:
    return _NOT_XML_RE.search(text) is None
