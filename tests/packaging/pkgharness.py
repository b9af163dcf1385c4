"""Helpers for the packaging tests: run tools, build with ``iso/build``, read its manifest, install
RPMs into scratch roots (with scriptlets: in a chroot with busybox and the host's systemctl)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCH = 1700000000
TOOLS = ("rpmbuild", "rpm", "createrepo_c", "xorriso")


def run(argv, check=True, **kwargs):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (argv, proc.returncode, proc.stdout,
                                                          proc.stderr))
    return proc


def missing_tools():
    return [t for t in TOOLS if shutil.which(t) is None]


class Build(object):
    """The outputs of one ``iso/build`` run: ``path(key)`` for rpm, update_rpm, iso, legacy_iso."""

    def __init__(self, outdir):
        self.outdir = outdir
        with open(os.path.join(outdir, "build.json")) as handle:
            self.manifest = json.load(handle)

    def path(self, key):
        return os.path.join(self.outdir, self.manifest[key])


def build_into(snapshot, outdir):
    proc = run([sys.executable, os.path.join(snapshot, "iso", "build"),
                "--source-date-epoch", str(EPOCH), outdir], check=False)
    if proc.returncode != 0:
        raise AssertionError("iso/build failed:\n%s" % proc.stderr)
    return Build(outdir)


def rpm_root(root, *args):
    """``rpm --root ROOT ARGS``, without dependency checks for installs, upgrades and erasures
    (a scratch root has no python3 nor systemd package)."""
    nodeps = ["--nodeps"] if args[0] in ("-i", "-U", "-e", "-V", "--noscripts") else []
    return run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm"] + nodeps + list(args))


def installed_paths(root, files):
    return [p for p in files if os.path.lexists(os.path.join(root, p.lstrip("/")))]


def chroot_root(base):
    """A root where the scriptlets really run: busybox as /bin/sh and the host's systemctl."""
    systemctl, busybox = shutil.which("systemctl"), shutil.which("busybox")
    if os.geteuid() != 0:
        pytest.skip("rpm runs scriptlets in a chroot, which needs root")
    if not systemctl or not busybox:
        pytest.skip("needs systemctl and busybox (Debian packages systemd, busybox-static)")
    os.makedirs(os.path.join(base, "bin"))
    os.makedirs(os.path.join(base, "usr/bin"))
    os.makedirs(os.path.join(base, "dev"))
    shutil.copy(busybox, os.path.join(base, "bin/busybox"))
    for applet in ("sh", "rm"):
        os.symlink("busybox", os.path.join(base, "bin", applet))
    shutil.copy(systemctl, os.path.join(base, "usr/bin/systemctl"))
    for line in run(["ldd", systemctl]).stdout.splitlines():
        for word in line.split():
            if word.startswith("/"):
                target = os.path.join(base, word.lstrip("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(os.path.realpath(word), target)
    if subprocess.call(["mknod", "-m", "666", os.path.join(base, "dev/null"), "c", "1", "3"]) != 0:
        pytest.skip("cannot create dev/null in the scratch root (mknod not permitted here)")


def unit_state(root, unit="xscontainer-monitor.service"):
    """``systemctl is-enabled`` of ``unit`` inside a ``chroot_root``."""
    return run(["chroot", root, "/usr/bin/systemctl", "is-enabled", unit], check=False).stdout.strip()
