"""Helpers for the packaging tests: run tools, build with ``iso/build``, read its manifest, install
RPMs into scratch roots (with scriptlets: in a chroot with busybox and the host's systemctl)."""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCH = 1700000000
TOOLS = ("rpmbuild", "rpm", "createrepo_c", "xorriso")
REPO_NS = {"repo": "http://linux.duke.edu/metadata/repo",
           "common": "http://linux.duke.edu/metadata/common"}


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
    """The outputs of one ``iso/build`` run: ``path(key)`` for rpm, update_rpm, iso, repo."""

    def __init__(self, outdir):
        self.outdir = outdir
        with open(os.path.join(outdir, "build.json")) as handle:
            self.manifest = json.load(handle)

    def path(self, key):
        return os.path.join(self.outdir, self.manifest[key])


def build_into(snapshot, outdir, *extra):
    proc = run([sys.executable, os.path.join(snapshot, "iso", "build"),
                "--source-date-epoch", str(EPOCH), outdir] + list(extra), check=False)
    if proc.returncode != 0:
        raise AssertionError("iso/build failed:\n%s" % proc.stderr)
    return Build(outdir)


def digest(path, algorithm):
    with open(path, "rb") as handle:
        return hashlib.new(algorithm, handle.read()).hexdigest()


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


def extract_iso(iso, dest):
    run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", dest])
    return dest


class ThrowawayKey(object):
    """A new RSA signing key without passphrase in its own gpg home (``home``), ultimately
    trusted there as gpg trusts the keys it generates; ``close()`` stops its gpg-agent."""

    def __init__(self, home, uid="xscontainer test <test@example.invalid>"):
        self.home = home
        os.makedirs(home, mode=0o700, exist_ok=True)
        self.gpg("--passphrase", "", "--quick-gen-key", uid, "rsa2048", "sign", "never")
        colons = self.gpg("--with-colons", "--list-secret-keys", uid).stdout
        self.fingerprint = [line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")][0]

    def gpg(self, *args, **kwargs):
        return run(["gpg", "--homedir", self.home, "--batch", "--no-tty"] + list(args), **kwargs)

    def export(self, path):
        with open(path, "w") as handle:
            handle.write(self.gpg("--armor", "--export", self.fingerprint).stdout)
        return path

    def close(self):
        run(["gpgconf", "--homedir", self.home, "--kill", "all"], check=False)


DOM0_BASE_SPEC = """Name: dom0-base
Version: 8.3
Release: 1
Summary: Stand-in for what a dom0 provides that xscontainer requires
License: none
BuildArch: noarch
Provides: python3 = 3.6.8
Provides: systemd = 219
Provides: platform-version = 3.4.0
Provides: /bin/sh
Provides: python-paramiko
Provides: mkisofs
%description
Test fixture.
%files
"""


def build_dom0_base_repo(workdir):
    """A yum repository (file path) with one package providing python3 3.6, systemd,
    platform-version and /bin/sh (and the original product's python-paramiko and mkisofs): what
    a host's own repositories give ``yum install``."""
    spec = os.path.join(workdir, "dom0-base.spec")
    with open(spec, "w") as handle:
        handle.write(DOM0_BASE_SPEC)
    run(["rpmbuild", "-bb", "--quiet", "--define", "_topdir %s" % os.path.join(workdir, "rpmbuild"), spec])
    repo = os.path.join(workdir, "repo")
    os.makedirs(repo)
    shutil.copy(os.path.join(workdir, "rpmbuild", "RPMS", "noarch", "dom0-base-8.3-1.noarch.rpm"), repo)
    run(["createrepo_c", "--quiet", repo])
    return repo


def dnf_root(root, conf_text, *args):
    """``dnf -c CONF --installroot ROOT ARGS`` offline (file:// repositories only), scriptlets
    off; the cache and the rpm database live in the root."""
    if shutil.which("dnf") is None:
        pytest.skip("dnf missing (Debian package dnf; ./dev.sh setup installs it)")
    os.makedirs(root, exist_ok=True)
    conf = root + ".dnf.conf"
    with open(conf, "w") as handle:
        handle.write(conf_text)
    return run(["dnf", "-y", "--noplugins", "-c", conf, "--installroot", root, "--releasever", "8",
                "--setopt=tsflags=noscripts", "--setopt=install_weak_deps=False"] + list(args))


def repo_conf(base_repo, repo, extra=""):
    """A host's yum configuration: its own repositories (the stand-in base) and ours."""
    return ("[main]\nreposdir=/dev/null\ngpgcheck=0\nkeepcache=0\n\n"
            "[dom0-base]\nname=dom0-base\nbaseurl=file://%s\n\n"
            "[xscontainer]\nname=xscontainer\nbaseurl=file://%s\n%s" % (base_repo, repo, extra))


def dnf_installed(root):
    """NAME-VERSION-RELEASE of what dnf installed in ``root`` (rpm with dnf's own database path)."""
    return sorted(run(["rpm", "--root", root, "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n"]).stdout.split())


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
