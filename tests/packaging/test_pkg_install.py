"""The RPM installed into scratch roots: files, scriptlets with the real systemctl, removal, and
the installed plugin answering ``host.call_plugin`` from the simulator under Python 3.6."""

import os
import sys

import pytest

from xscontainer.sim.process import SimulatorProcess
import XenAPI

from pkgharness import ROOT, chroot_root, installed_paths, rpm_root, run, unit_state

WANTS = "etc/systemd/system/multi-user.target.wants/xscontainer-monitor.service"
SITELIB = "usr/lib/python3.6/site-packages"


def test_install_and_erase_without_scripts(built, rpm_files, tmp_path):
    root = str(tmp_path / "root")
    os.mkdir(root)
    rpm_root(root, "--noscripts", "-i", built.path("rpm"))
    assert installed_paths(root, rpm_files) == rpm_files
    plugin = os.path.join(root, "etc/xapi.d/plugins/xscontainer")
    assert os.access(plugin, os.X_OK)
    assert "xscontainer" in rpm_root(root, "-qa").stdout
    assert rpm_root(root, "-V", "xscontainer").stdout == ""  # every file as packaged
    rpm_root(root, "--noscripts", "-e", "xscontainer")
    assert installed_paths(root, rpm_files) == []
    assert not os.path.lexists(os.path.join(root, WANTS))


def test_scriptlets_enable_on_install_and_disable_on_removal(built, rpm_files, tmp_path):
    root = str(tmp_path / "root")
    chroot_root(root)

    def enabled():
        return unit_state(root)

    rpm_root(root, "-i", built.path("rpm"))
    assert os.path.islink(os.path.join(root, WANTS))
    assert enabled() == "enabled"
    rpm_root(root, "-U", "--replacepkgs", built.path("rpm"))  # an upgrade keeps it enabled
    assert enabled() == "enabled"
    rpm_root(root, "-e", "xscontainer")
    assert installed_paths(root, rpm_files) == []
    assert not os.path.lexists(os.path.join(root, WANTS))
    assert enabled() != "enabled"
    for leftover in ("usr/lib/xscontainer", SITELIB + "/xscontainer", "usr/share/xscontainer"):
        assert not os.path.lexists(os.path.join(root, leftover)), leftover


def _python36():
    """The base Python 3.6 interpreter behind .venv36 (or this one, when it is 3.6)."""
    if sys.version_info[:2] == (3, 6):
        candidate = sys.executable
    else:
        candidate = os.path.join(ROOT, ".venv36", "bin", "python")
        if not os.path.exists(candidate):
            pytest.skip("no .venv36 (Python 3.6) to run the installed plugin with")
    prefix = run([candidate, "-c", "import sys; print(sys.base_prefix)"]).stdout.strip()
    return os.path.join(prefix, "bin", "python3.6")


class InstalledSim(SimulatorProcess):
    """The simulator started from the installed tree, plugins from the installed plugin dir."""

    def __init__(self, python, directory, plugins):
        super().__init__(directory, plugins=plugins, python=python, cwd="/", env={"PATH": "/usr/bin:/bin"})
        self.start(60.0)


def test_installed_plugin_answers_call_plugin_under_python36(built, tmp_path):
    root = str(tmp_path / "root")
    os.mkdir(root)
    rpm_root(root, "--noscripts", "-i", built.path("rpm"))
    # A Python 3.6 environment that sees only what the RPM installed: the package and the
    # vendored wheels, not this repository nor any venv's site-packages.
    venv = str(tmp_path / "py36")
    run([_python36(), "-m", "venv", "--without-pip", venv])
    site = os.path.join(venv, "lib", "python3.6", "site-packages")
    with open(os.path.join(site, "xscontainer-root.pth"), "w") as handle:
        handle.write(os.path.join(root, "usr/lib/xscontainer/vendor") + "\n")
        handle.write(os.path.join(root, SITELIB) + "\n")
    python = os.path.join(venv, "bin", "python")
    where = run([python, "-c", "import xscontainer, XenAPI, paramiko, yaml, pycdlib, nacl, "
                               "cryptography.hazmat.bindings._rust; "
                               "print(xscontainer.__file__); print(paramiko.__file__)"],
                cwd="/", env={"PATH": "/usr/bin:/bin"}).stdout
    assert all(line.startswith(root) for line in where.split()), where

    sim = InstalledSim(python, str(tmp_path / "sim"), os.path.join(root, "etc/xapi.d/plugins"))
    try:
        session = XenAPI.Session(sim.info["xapi_url"])
        session.xenapi.login_with_password(sim.info["username"], sim.info["password"], "1.0", "tests")
        try:
            host = session.xenapi.host.get_by_uuid(sim.info["hosts"][0]["uuid"])
            vm = session.xenapi.VM.create({"name_label": "packaging-test"})
            vm_uuid = session.xenapi.VM.get_uuid(vm)
            result = session.xenapi.host.call_plugin(host, "xscontainer", "register", {"vmuuid": vm_uuid})
            assert result == "TrueNone"
            assert session.xenapi.VM.get_other_config(vm)["xscontainer-monitor"] == "True"
            with pytest.raises(XenAPI.Failure) as info:
                session.xenapi.host.call_plugin(host, "xscontainer", "register", {"vmuuid": "nope"})
            assert info.value.details[0] == "XENAPI_PLUGIN_FAILURE"
            assert info.value.details[1] == "register"
        finally:
            session.xenapi.session.logout()
    finally:
        sim.stop()
