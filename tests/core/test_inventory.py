import pytest

from xscontainer.errors import XapiError
from xscontainer.xapi.inventory import parse_inventory, this_host_uuid


def test_parse_inventory_reads_shell_quoted_values():
    text = ("PRODUCT_BRAND='XCP-ng'\n# comment\nINSTALLATION_UUID='8a1b-2c'\n"
            "BUILD_NUMBER=release/8.3\nEMPTY=''\ngarbage line\n")
    inventory = parse_inventory(text)
    assert inventory["INSTALLATION_UUID"] == "8a1b-2c"
    assert inventory["PRODUCT_BRAND"] == "XCP-ng"
    assert inventory["BUILD_NUMBER"] == "release/8.3"
    assert inventory["EMPTY"] == ""
    assert "garbage line" not in inventory


def test_this_host_uuid_from_file_and_env(tmp_path, monkeypatch):
    path = tmp_path / "inventory"
    path.write_text("INSTALLATION_UUID='c0ffee00-0000-4000-8000-000000000001'\n")
    assert this_host_uuid(str(path)) == "c0ffee00-0000-4000-8000-000000000001"
    monkeypatch.setenv("XSCONTAINER_INVENTORY", str(path))
    assert this_host_uuid() == "c0ffee00-0000-4000-8000-000000000001"


def test_missing_inventory_is_a_clear_error(tmp_path):
    with pytest.raises(XapiError) as info:
        this_host_uuid(str(tmp_path / "absent"))
    assert info.value.code == "INVENTORY_UNREADABLE"
    path = tmp_path / "inventory"
    path.write_text("PRODUCT_BRAND='XenServer'\n")
    with pytest.raises(XapiError, match="no INSTALLATION_UUID"):
        this_host_uuid(str(path))
