"""Argument checks of the plugin, as pure functions."""

import pytest

from xscontainer import plugincall
from xscontainer.errors import InvalidArgument
from xscontainer.plugin import validate

UUID = "0a1b2c3d-0000-4000-8000-00000000abcd"


@pytest.mark.parametrize("value", ["web", "Web_1.x-2", "/web", "0123456789", "a" * 64, "3f1c9a0b2d"])
def test_container_names_ids_and_prefixes_are_accepted(value):
    assert validate.container_arg({"c": value}, "c") == value.lstrip("/")


@pytest.mark.parametrize("value", ["", "-x", ".x", "a;rm -rf /", "$(id)", "a b", "../../etc", "a" * 300,
                                   "x\n", "é"])
def test_hostile_container_references_are_refused(value):
    with pytest.raises(InvalidArgument):
        validate.container_arg({"c": value}, "c")


def test_uuids_must_look_like_uuids():
    assert validate.uuid_arg({"vmuuid": UUID.upper()}, "vmuuid") == UUID
    for bad in ["", "x", UUID + "0", UUID.replace("-", ""), "../" + UUID]:
        with pytest.raises(InvalidArgument):
            validate.uuid_arg({"vmuuid": bad}, "vmuuid")


def test_sizes_missing_and_extra_keys():
    with pytest.raises(InvalidArgument, match="larger than"):
        validate.check_sizes({"object": "x" * (validate.MAX_ARGUMENT_BYTES + 1)})
    validate.check_sizes({"configuration": "x" * (validate.MAX_ARGUMENT_BYTES + 1)})
    with pytest.raises(InvalidArgument, match="larger than"):
        validate.check_sizes({"configuration": "x" * (validate.MAX_CONFIGURATION_BYTES + 1)})
    validate.check_sizes({"configuration": "x" * validate.MAX_CONFIGURATION_BYTES})
    with pytest.raises(InvalidArgument, match="Missing argument"):
        validate.require({"vmuuid": UUID}, ["vmuuid", "container"])
    assert validate.unexpected_keys({"vmuuid": UUID, "x": "1"}, ["vmuuid"]) == "x"
    assert validate.unexpected_keys({"vmuuid": UUID}, ["vmuuid"]) is None


def test_numbers_and_api_paths():
    assert validate.int_arg({}, "tail", 100, 1, 10) == 100
    assert validate.int_arg({"tail": "7"}, "tail", 100, 1, 10) == 7
    for bad in ["0", "11", "-1", "1e3", "x"]:
        with pytest.raises(InvalidArgument):
            validate.int_arg({"tail": bad}, "tail", 100, 1, 10)
    assert validate.api_path_arg({"command": "/containers/json"}, "command") == "/containers/json"
    for bad in ["containers/json", "/a/../b", "/a?x=1", "/a b", "/a;b"]:
        with pytest.raises(InvalidArgument):
            validate.api_path_arg({"command": bad}, "command")


SESSION = "OpaqueRef:" + UUID  # xapi's refs are always this long


def test_call_size_is_that_of_xapis_argv_element():
    # xapi_plugins.ml: Xml.to_string of XMLRPC.To.methodCall; esc_pcdata escapes & < > " and
    # drops control characters; an empty string is <value/>.
    args = {"vmuuid": UUID, "sruuid": "", "configuration": 'a<b>&"c\x1b\u00e9'}
    expected = ("<methodCall><methodName>create_config_drive</methodName><params><param><value>"
                + SESSION + "</value></param><param><value><struct><member><name>vmuuid</name>"
                "<value>" + UUID + "</value></member><member><name>sruuid</name><value/>"
                "</member><member><name>configuration</name><value>a&lt;b&gt;&amp;&quot;c\u00e9"
                "</value></member></struct></value></param></params></methodCall>")
    assert plugincall.plugin_call_bytes("create_config_drive", SESSION, args) == \
        len(expected.encode("utf-8"))


def test_configuration_limit_is_what_one_argv_element_can_carry():
    # Linux MAX_ARG_STRLEN is 131072 bytes with the NUL; a forwarded call carries one more key.
    assert plugincall.MAX_CALL_BYTES == 131071
    biggest = {"vmuuid": UUID, "sruuid": UUID,
               "configuration": "x" * validate.MAX_CONFIGURATION_BYTES}
    forwarded = dict(biggest, **{plugincall.FORWARDED_KEY: "1"})
    assert plugincall.plugin_call_bytes("create_config_drive", SESSION, forwarded) == \
        plugincall.MAX_CALL_BYTES
    plugincall.check_call_size("create_config_drive", SESSION, biggest)


def test_a_call_too_large_once_escaped_is_refused_with_its_size():
    escaped = {"vmuuid": UUID, "sruuid": UUID,
               "configuration": "&" * (validate.MAX_CONFIGURATION_BYTES // 5 + 1)}
    validate.check_sizes(escaped)
    with pytest.raises(InvalidArgument) as err:
        plugincall.check_call_size("create_config_drive", SESSION, escaped)
    assert err.value.code == "ARGUMENT_TOO_LARGE"
    assert "131071" in err.value.message and "configuration" in err.value.message
