"""The routes onto a host, taken with dnf offline into scratch roots: ``yum install xscontainer``
from the yum repository iso/build writes, and the update ISO applied the way xapi applies it."""

import gzip
import os
import shutil
import xml.etree.ElementTree as ET

from original import build_original

from pkgharness import REPO_NS, digest, dnf_installed, dnf_root, extract_iso, primary_packages, repo_conf, run

RPM_NS = {"rpm": "http://linux.duke.edu/metadata/rpm"}


def xapi_yum_conf(label, url):
    """What xapi's Xapi_pool_update.create_yum_config writes for an update without a ``key``."""
    return "\n".join(["[main]", "keepcache=0", "reposdir=/dev/null", "gpgcheck=0", "repo_gpgcheck=0",
                      "installonlypkgs=", "group_command=compat", "", "[%s]" % label,
                      "name=%s" % label, "baseurl=%s" % url, "", ""])


def test_repository_lists_the_rpm_and_its_requirements(built):
    repo = built.path("repo")
    rpm_name = built.manifest["rpm"]
    assert sorted(os.listdir(repo)) == sorted([rpm_name, "repodata"])  # unsigned: no key, no .asc
    packages, data = primary_packages(repo)
    assert packages == {rpm_name: (digest(built.path("rpm"), "sha256"), "xscontainer", built.manifest["version"])}
    assert "sqlite" not in "".join(data)
    location = data["primary"].find("repo:location", REPO_NS).get("href")
    with open(os.path.join(repo, location), "rb") as handle:
        primary = ET.fromstring(gzip.decompress(handle.read()))
    entries = primary.findall(".//rpm:requires/rpm:entry", RPM_NS)
    requires = {(e.get("name"), e.get("flags"), e.get("ver")) for e in entries}
    assert ("python3", "GE", "3.6") in requires and ("systemd", None, None) in requires
    for name in built.manifest["files"]:
        if name.startswith("repo/"):
            assert digest(os.path.join(built.outdir, name), "sha256") == built.manifest["files"][name]["sha256"]


def test_yum_install_from_the_repository(built, dom0_base_repo, tmp_path):
    root = str(tmp_path / "root")
    dnf_root(root, repo_conf(dom0_base_repo, built.path("repo")), "install", "xscontainer")
    assert dnf_installed(root) == ["dom0-base-8.3-1", "xscontainer-%s-1" % built.manifest["version"]]
    assert os.access(os.path.join(root, "etc/xapi.d/plugins/xscontainer"), os.X_OK)
    assert run(["rpm", "--root", root, "-V", "--nodeps", "xscontainer"]).stdout == ""


def test_update_iso_installs_the_way_xapi_applies_it(built, dom0_base_repo, tmp_path):
    tree = extract_iso(built.path("iso"), str(tmp_path / "iso"))
    root = str(tmp_path / "root")
    dnf_root(root, repo_conf(dom0_base_repo, dom0_base_repo), "install", "dom0-base")
    # pool_update.apply: `dnf install -y --noplugins -c <xapi's yum.conf> @update`, the update's
    # repository alone (reposdir=/dev/null), its group "update" pulling update-xscontainer.
    dnf_root(root, xapi_yum_conf("xscontainer", "file://" + tree), "install", "@update")
    version = built.manifest["version"]
    assert dnf_installed(root) == ["dom0-base-8.3-1", "update-xscontainer-%s-1" % version,
                                   "xscontainer-%s-1" % version]


def test_yum_update_replaces_the_original_from_the_repository(built, dom0_base_repo, tmp_path):
    # The original as XCP-ng's repositories delivered it, then our repository added: yum update.
    old_repo = str(tmp_path / "xcp-ng-repo")
    os.mkdir(old_repo)
    shutil.copy(build_original(str(tmp_path / "original")), old_repo)
    run(["createrepo_c", "--quiet", old_repo])
    root = str(tmp_path / "root")
    dnf_root(root, repo_conf(dom0_base_repo, old_repo), "install", "xscontainer")
    assert "xscontainer-10.0.4-1" in dnf_installed(root)
    dnf_root(root, repo_conf(dom0_base_repo, old_repo) + "\n[ours]\nname=ours\nbaseurl=file://%s\n"
             % built.path("repo"), "upgrade", "xscontainer")
    assert dnf_installed(root) == ["dom0-base-8.3-1", "xscontainer-%s-1" % built.manifest["version"]]
    assert not os.path.lexists(os.path.join(root, "usr/lib/python2.7/site-packages/xscontainer"))
