"""The one rule for text in XML 1.0: what XML cannot carry is made visible, nothing is dropped."""

import xml.parsers.expat
import xmlrpc.client

from hypothesis import given
from hypothesis import strategies as st

from xscontainer.xmltext import is_xml_clean, xml_clean


def parses(text):
    """True when ``text`` is acceptable character data for a strict XML 1.0 parser."""
    parser = xml.parsers.expat.ParserCreate()
    try:
        parser.Parse(("<a>%s</a>" % text.replace("&", "&amp;").replace("<", "&lt;")).encode(
            "utf-8", "surrogatepass"), True)
    except xml.parsers.expat.ExpatError:
        return False
    return True


def test_controls_surrogates_and_nonchars_become_visible_escapes():
    assert xml_clean("\x1b[31mrouge\x1b[0m") == "\\x1b[31mrouge\\x1b[0m"
    assert xml_clean("a\x00b\x07c\x0bd\x0ce\x1f") == "a\\x00b\\x07c\\x0bd\\x0ce\\x1f"
    assert xml_clean("lone \udcff and \ud800") == "lone \\udcff and \\ud800"
    assert xml_clean("\ufffe\uffff") == "\\ufffe\\uffff"


def test_what_xml_carries_is_left_alone():
    text = "tab\tlf\ncr\r caf\u00e9 \u20ac \U0001f600 \x7f \x85 back\\slash <&>"
    assert xml_clean(text) == text
    assert is_xml_clean(text)
    assert not is_xml_clean("\x1b")


def test_an_unclean_string_breaks_the_xmlrpc_response_a_clean_one_does_not():
    """Why the rule exists: xmlrpc.client writes control characters raw, and the parser refuses."""
    raw = xmlrpc.client.dumps(({"Status": "Success", "Value": "\x1b[1mbold"},), "", True)
    try:
        xmlrpc.client.loads(raw)
        raise AssertionError("expat accepted a raw ESC")
    except xml.parsers.expat.ExpatError:
        pass
    clean = xmlrpc.client.dumps(({"Status": "Success", "Value": xml_clean("\x1b[1mbold")},), "", True)
    assert xmlrpc.client.loads(clean)[0][0]["Value"] == "\\x1b[1mbold"


@given(st.text(st.characters(blacklist_categories=())))
def test_any_text_becomes_parseable_and_cleaning_is_idempotent(text):
    cleaned = xml_clean(text)
    assert parses(cleaned)
    assert is_xml_clean(cleaned)
    assert xml_clean(cleaned) == cleaned
    # Nothing dropped: every character is kept or replaced by a longer visible escape.
    assert len(cleaned) >= len(text)
    assert cleaned == text or not is_xml_clean(text)
