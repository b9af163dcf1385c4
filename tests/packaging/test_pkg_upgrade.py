"""``rpm -U`` from the package XCP-ng shipped (a stand-in ``xscontainer-10.0.4-1`` with its file
list and scriptlets, see original.py) to ours, in scratch roots."""

import os

import pytest

from original import FILES as ORIGINAL_FILES
from original import SYSTEM_DIRS, build_original
from pkgharness import chroot_root, installed_paths, rpm_root, run, unit_state

WANTS = "etc/systemd/system/multi-user.target.wants/xscontainer-monitor.service"
OLD_SITELIB = "usr/lib/python2.7/site-packages"
# What the original wrote at run time and never removed: TLS client keys in /tmp, and byte code.
OLD_RUNTIME_LEFTOVERS = ["tmp/xscontainer/tls/0f0c7a5e-8c36-4a36-8a47-0fbd00aa3b2b/client-key.pem",
                         OLD_SITELIB + "/xscontainer/util/tls_secret.pyc.stale"]


@pytest.fixture(scope="module")
def original_rpm(tmp_path_factory):
    return build_original(str(tmp_path_factory.mktemp("original")))


@pytest.fixture(scope="module")
def original_files(original_rpm):
    return run(["rpm", "-qpl", original_rpm]).stdout.split()


def nvr(root):
    return sorted(rpm_root(root, "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n").stdout.split())


def test_the_stand_in_has_the_originals_file_list(original_files):
    assert set(ORIGINAL_FILES) <= set(original_files)
    assert "/etc/xapi.d/plugins/xscontainer" in original_files
    assert "/usr/lib/python2.7/site-packages/xscontainer/remote_helper/ssh.pyo" in original_files


def test_upgrade_from_the_original_takes_over_its_paths_and_leaves_none_of_its_files(
        built, rpm_files, original_rpm, original_files, tmp_path):
    root = str(tmp_path / "root")
    os.mkdir(root)
    rpm_root(root, "--noscripts", "-i", original_rpm)
    assert nvr(root) == ["xscontainer-10.0.4-1"]
    shared = sorted(set(original_files) & set(rpm_files))
    assert "/etc/xapi.d/plugins/xscontainer" in shared and "/usr/bin/xscontainer-monitor" in shared

    upgrade = rpm_root(root, "--noscripts", "-U", built.path("rpm"))
    assert "conflict" not in upgrade.stderr and "newer" not in upgrade.stderr, upgrade.stderr
    assert nvr(root) == ["xscontainer-%s-1" % built.manifest["version"]]
    assert installed_paths(root, rpm_files) == rpm_files
    assert rpm_root(root, "-V", "xscontainer").stdout == ""  # the shared paths hold our files
    gone = [p for p in original_files if p not in rpm_files]
    assert installed_paths(root, gone) == []
    assert not os.path.lexists(os.path.join(root, OLD_SITELIB, "xscontainer"))


def test_update_package_is_not_satisfied_by_the_original(built, original_rpm, tmp_path):
    root = str(tmp_path / "root")
    os.mkdir(root)
    rpm_root(root, "--noscripts", "-i", original_rpm)
    ours = "xscontainer >= %s-1" % built.manifest["version"]

    def missing_for_update():
        proc = run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--test", "-i",
                    built.path("update_rpm")], check=False)
        assert proc.returncode != 0
        return proc.stderr

    assert ours in missing_for_update()
    rpm_root(root, "--noscripts", "-U", built.path("rpm"))
    after = missing_for_update()
    assert ours not in after and "platform-version >= 3.2.0" in after


def _install_original_with_scriptlets(root, original_rpm):
    chroot_root(root)
    rpm_root(root, "-i", original_rpm)
    assert unit_state(root) == "enabled"  # the original's preset enabled it
    for path in OLD_RUNTIME_LEFTOVERS:
        target = os.path.join(root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write("left at run time by the original\n")


def test_upgrade_with_scriptlets_keeps_the_monitor_enabled_and_removes_the_originals_leftovers(
        built, rpm_files, original_rpm, original_files, tmp_path):
    root = str(tmp_path / "root")
    _install_original_with_scriptlets(root, original_rpm)
    rpm_root(root, "-U", built.path("rpm"))
    assert nvr(root) == ["xscontainer-%s-1" % built.manifest["version"]]
    assert unit_state(root) == "enabled"
    assert os.path.islink(os.path.join(root, WANTS))
    gone = [p for p in original_files if p not in rpm_files + SYSTEM_DIRS]
    assert installed_paths(root, gone) == []
    assert installed_paths(root, OLD_RUNTIME_LEFTOVERS) == []
    assert not os.path.lexists(os.path.join(root, "tmp/xscontainer"))
    assert not os.path.lexists(os.path.join(root, OLD_SITELIB, "xscontainer"))
    # A later removal of ours removes everything, the unit's enablement included.
    rpm_root(root, "-e", "xscontainer")
    assert installed_paths(root, [p for p in rpm_files + original_files if p not in SYSTEM_DIRS]) == []
    assert not os.path.lexists(os.path.join(root, WANTS))


def test_upgrade_keeps_a_monitor_the_administrator_disabled(built, original_rpm, tmp_path):
    root = str(tmp_path / "root")
    _install_original_with_scriptlets(root, original_rpm)
    run(["chroot", root, "/usr/bin/systemctl", "disable", "xscontainer-monitor.service"])
    rpm_root(root, "-U", built.path("rpm"))
    assert unit_state(root) == "disabled"
