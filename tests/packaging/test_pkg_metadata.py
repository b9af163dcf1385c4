"""The pure metadata builders and the vendor-path hook, with literal inputs."""

import os
import xml.etree.ElementTree as ET

import pytest

from xscontainer import vendorpath
from xscontainer.errors import PackagingError
from xscontainer.packaging import metadata as md


def test_update_xml_has_the_attributes_xapi_requires():
    root = ET.fromstring(md.update_xml(md.UPDATE_UUID, "xscontainer", "1.2.3",
                                       "XenServer Container Management", 4096))
    assert root.tag == "update"
    assert root.attrib == {"name-label": "xscontainer", "version": "1.2.3",
                           "uuid": "df95997f-0332-4f1e-afd6-dcec74940b82",
                           "installation-size": "4096"}
    assert root.find("name-description").text == "XenServer Container Management"


def test_update_xml_escapes_and_validates():
    root = ET.fromstring(md.update_xml(md.UPDATE_UUID, "x", "1", 'a<b & "c"', 0))
    assert root.find("name-description").text == 'a<b & "c"'
    with pytest.raises(PackagingError):
        md.update_xml("not-a-uuid", "x", "1", "d", 0)
    with pytest.raises(PackagingError):
        md.update_xml(md.UPDATE_UUID, "bad label", "1", "d", 0)


def test_groups_xml_makes_update_rpm_mandatory():
    root = ET.fromstring(md.groups_xml("xscontainer"))
    group = root.find("group")
    assert group.find("id").text == "update"
    req = group.find("packagelist/packagereq")
    assert (req.get("type"), req.text) == ("mandatory", "update-xscontainer")


def test_read_version_from_the_package_source():
    assert md.read_version('"""doc"""\n\n__version__ = "0.9.0"\n') == "0.9.0"
    with pytest.raises(PackagingError) as info:
        md.read_version("x = 1\n")
    assert info.value.code == "NO_VERSION"
    with pytest.raises(PackagingError) as info:
        md.read_version('__version__ = "1.0-rc1"\n')  # "-" separates version and release
    assert info.value.code == "BAD_VERSION"


def test_the_real_version_is_an_rpm_version():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "xscontainer", "__init__.py")) as handle:
        import xscontainer
        assert md.read_version(handle.read()) == xscontainer.__version__


def test_vendor_pins_take_versions_from_the_requirements_file():
    pins = md.vendor_pins(["# comment", "PyNaCl", "cffi==1.15.1", "paramiko  # ssh"],
                          ["pynacl==1.5.0", "paramiko==3.4.1", "docker==5.0.3"])
    assert pins == [("cffi", "1.15.1"), ("paramiko", "3.4.1"), ("PyNaCl", "1.5.0")]
    with pytest.raises(PackagingError) as info:
        md.vendor_pins(["unpinned"], [])
    assert info.value.code == "BAD_PIN"


def test_wheel_matches_normalized_names_and_exact_versions():
    assert md.wheel_matches("PyYAML-6.0.1-cp36-cp36m-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                            "pyyaml", "6.0.1")
    assert md.wheel_matches("xenapi-26.21.1-py3-none-any.whl", "XenAPI", "26.21.1")
    assert not md.wheel_matches("xenapi-26.21.10-py3-none-any.whl", "XenAPI", "26.21.1")
    assert not md.wheel_matches("xenapi-26.21.1.tar.gz", "XenAPI", "26.21.1")


def test_vendorpath_activate(tmp_path):
    path = ["/a"]
    assert vendorpath.activate(str(tmp_path / "absent"), path) is False
    assert path == ["/a"]
    assert vendorpath.activate(str(tmp_path), path) is True
    assert vendorpath.activate(str(tmp_path), path) is True
    assert path == [str(tmp_path), "/a"]
    assert vendorpath.VENDOR_DIR == "/usr/lib/xscontainer/vendor"
