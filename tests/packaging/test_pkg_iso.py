"""The update ISO, read back with xorriso and pycdlib; its metadata against the RPM itself."""

import os
import xml.etree.ElementTree as ET

import pycdlib
import pytest

from pkgharness import REPO_NS, build_into, digest, extract_iso, primary_packages, run


@pytest.fixture(scope="module")
def update_tree(built, tmp_path_factory):
    return extract_iso(built.path("iso"), str(tmp_path_factory.mktemp("update-iso")))


def test_update_iso_layout_and_manifest(built, update_tree):
    rpm_name, update_rpm = built.manifest["rpm"], built.manifest["update_rpm"]
    # Unsigned without --sign-key (xapi will refuse it; see test_pkg_sign.py for signed ones).
    assert sorted(os.listdir(update_tree)) == ["Packages", "repodata", "update.xml"]
    assert not [n for n in os.listdir(os.path.join(update_tree, "repodata")) if n.endswith(".asc")]
    assert built.manifest["signed_by"] == ""
    assert sorted(os.listdir(os.path.join(update_tree, "Packages"))) == sorted([rpm_name, update_rpm])
    root = ET.parse(os.path.join(update_tree, "update.xml")).getroot()
    assert root.get("uuid") == "df95997f-0332-4f1e-afd6-dcec74940b82"
    assert root.get("name-label") == "xscontainer"
    assert root.get("version") == built.manifest["version"]
    assert root.find("name-description").text == "XenServer Container Management"
    size = run(["rpm", "-qp", "--qf", "%{SIZE}", built.path("rpm")]).stdout
    assert root.get("installation-size") == size


def test_update_repo_metadata_matches_the_rpms(built, update_tree):
    packages, data = primary_packages(update_tree)
    assert set(packages) == {"Packages/" + built.manifest["rpm"], "Packages/" + built.manifest["update_rpm"]}
    for href, (sha, name, version) in packages.items():
        assert sha == digest(os.path.join(update_tree, href), "sha256") == digest(
            os.path.join(built.outdir, os.path.basename(href)), "sha256")
        assert version == built.manifest["version"]
    assert "group" in data  # groups.xml is part of the repo metadata
    group_href = data["group"].find("repo:location", REPO_NS).get("href")
    comps = ET.parse(os.path.join(update_tree, group_href)).getroot()
    assert comps.find("group/id").text == "update"
    assert comps.find("group/packagelist/packagereq").text == "update-xscontainer"
    assert "sqlite" not in "".join(data)  # no databases: they are not reproducible


def test_iso_reads_with_pycdlib_and_md5_side_file(built):
    iso = pycdlib.PyCdlib()
    iso.open(built.path("iso"))
    try:
        names = [os.path.join(path, f) for path, _, files in iso.walk(rr_path="/") for f in files]
        assert "/update.xml" in names
        assert "/Packages/" + built.manifest["rpm"] in names
    finally:
        iso.close()
    with open(built.path("iso") + ".md5") as handle:
        assert handle.read() == "%s  %s\n" % (digest(built.path("iso"), "md5"), built.manifest["iso"])
    # One ISO only: the legacy supplemental-pack layout is gone (no host with Python 3.6 takes it).
    assert sorted(n for n in os.listdir(built.outdir) if n.endswith(".iso")) == [built.manifest["iso"]]


def test_build_is_reproducible(built, snapshot, tmp_path_factory):
    """Same sources and SOURCE_DATE_EPOCH, another output dir: every output byte-identical."""
    again = build_into(snapshot, str(tmp_path_factory.mktemp("pkgout-again")))
    for name in sorted(built.manifest["files"]):
        assert digest(os.path.join(built.outdir, name), "sha256") == digest(
            os.path.join(again.outdir, name), "sha256"), name
    assert again.manifest == built.manifest
