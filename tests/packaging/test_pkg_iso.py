"""The pack ISOs, read back with xorriso and pycdlib; their metadata against the RPM itself."""

import gzip
import hashlib
import os
import xml.etree.ElementTree as ET

import pycdlib
import pytest

from pkgharness import build_into, run

REPO_NS = {"repo": "http://linux.duke.edu/metadata/repo",
           "common": "http://linux.duke.edu/metadata/common"}


def digest(path, algorithm):
    with open(path, "rb") as handle:
        return hashlib.new(algorithm, handle.read()).hexdigest()


def extract(iso, dest):
    run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", dest])
    return dest


@pytest.fixture(scope="module")
def update_tree(built, tmp_path_factory):
    return extract(built.path("iso"), str(tmp_path_factory.mktemp("update-iso")))


@pytest.fixture(scope="module")
def legacy_tree(built, tmp_path_factory):
    return extract(built.path("legacy_iso"), str(tmp_path_factory.mktemp("legacy-iso")))


def primary_packages(tree):
    """{location href: (pkgid sha256, name, version)} from createrepo_c's primary.xml."""
    repomd = ET.parse(os.path.join(tree, "repodata", "repomd.xml")).getroot()
    data = {d.get("type"): d for d in repomd.findall("repo:data", REPO_NS)}
    location = data["primary"].find("repo:location", REPO_NS).get("href")
    raw = open(os.path.join(tree, location), "rb").read()
    assert hashlib.sha256(raw).hexdigest() == data["primary"].find("repo:checksum", REPO_NS).text
    primary = ET.fromstring(gzip.decompress(raw))
    result = {}
    for pkg in primary.findall("common:package", REPO_NS):
        checksum = pkg.find("common:checksum", REPO_NS)
        assert checksum.get("type") == "sha256" and checksum.get("pkgid") == "YES"
        result[pkg.find("common:location", REPO_NS).get("href")] = (
            checksum.text, pkg.find("common:name", REPO_NS).text,
            pkg.find("common:version", REPO_NS).get("ver"))
    return result, data


def test_update_iso_layout_and_manifest(built, update_tree):
    rpm_name, update_rpm = built.manifest["rpm"], built.manifest["update_rpm"]
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


def test_legacy_iso_repository_files(built, legacy_tree):
    rpm_name = built.manifest["rpm"]
    assert sorted(os.listdir(legacy_tree)) == sorted(["XS-REPOSITORY", "XS-PACKAGES", rpm_name, "repodata"])
    repo = ET.parse(os.path.join(legacy_tree, "XS-REPOSITORY")).getroot()
    assert (repo.get("originator"), repo.get("name"), repo.get("version")) == (
        "xs", "xscontainer", built.manifest["version"])
    assert repo.find("description").text == "XenServer Container Management"
    (req,) = repo.findall("requires")
    assert (req.get("originator"), req.get("name"), req.get("test"), req.get("version")) == (
        "xcp", "main", "ge", "3.2.0")
    (pkg,) = ET.parse(os.path.join(legacy_tree, "XS-PACKAGES")).getroot().findall("package")
    path = os.path.join(legacy_tree, pkg.text)
    assert pkg.text == rpm_name and pkg.get("type") == "rpm" and pkg.get("label") == "xscontainer"
    assert pkg.get("md5") == digest(path, "md5")
    assert int(pkg.get("size")) == os.path.getsize(path)
    packages, _ = primary_packages(legacy_tree)
    assert packages == {rpm_name: (digest(path, "sha256"), "xscontainer", built.manifest["version"])}


def test_isos_read_with_pycdlib_and_md5_side_files(built):
    for key, expected in (("iso", "/update.xml"), ("legacy_iso", "/XS-REPOSITORY")):
        iso = pycdlib.PyCdlib()
        iso.open(built.path(key))
        try:
            names = [os.path.join(path, f) for path, _, files in iso.walk(rr_path="/") for f in files]
            assert expected in names
            assert any(n.endswith("/" + built.manifest["rpm"]) for n in names)
        finally:
            iso.close()
        with open(built.path(key) + ".md5") as handle:
            assert handle.read() == "%s  %s\n" % (digest(built.path(key), "md5"), built.manifest[key])


def test_build_is_reproducible(built, snapshot, tmp_path_factory):
    """Same sources and SOURCE_DATE_EPOCH, another output dir: every output byte-identical."""
    again = build_into(snapshot, str(tmp_path_factory.mktemp("pkgout-again")))
    for name in sorted(built.manifest["files"]):
        assert digest(os.path.join(built.outdir, name), "sha256") == digest(
            os.path.join(again.outdir, name), "sha256"), name
    assert again.manifest == built.manifest
