"""Fixtures: one frozen copy of the sources, built once per session with ``iso/build``.

The build runs from a snapshot (not the live tree) so that two builds see the same input even
while the working tree changes, which the reproducibility test needs.
"""

import io
import os
import shutil
import subprocess
import tarfile

import pytest

from pkgharness import ROOT, ThrowawayKey, build_dom0_base_repo, build_into, missing_tools, run


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory):
    missing = missing_tools()
    if missing:
        pytest.skip("packaging tools missing: %s (./dev.sh setup installs rpm, createrepo-c, "
                    "xorriso)" % ", ".join(missing))
    base = str(tmp_path_factory.mktemp("pkgsrc"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for name in ("xscontainer", "plugins", "templates", "iso", "requirements"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(base, name), ignore=ignore)
    return base


@pytest.fixture(scope="session")
def built(snapshot, tmp_path_factory):
    return build_into(snapshot, str(tmp_path_factory.mktemp("pkgout")))


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory):
    """A throwaway gpg key in a temporary GNUPGHOME (never the user's keyring)."""
    if shutil.which("gpg") is None or shutil.which("gpgconf") is None:
        pytest.skip("gpg missing (Debian package gnupg; ./dev.sh setup installs it)")
    key = ThrowawayKey(str(tmp_path_factory.mktemp("gnupg")))
    yield key
    key.close()


@pytest.fixture(scope="session")
def built_signed(snapshot, signing_key, tmp_path_factory):
    return build_into(snapshot, str(tmp_path_factory.mktemp("pkgout-signed")),
                      "--sign-key", signing_key.fingerprint, "--gnupg-home", signing_key.home)


@pytest.fixture(scope="session")
def dom0_base_repo(snapshot, tmp_path_factory):
    return build_dom0_base_repo(str(tmp_path_factory.mktemp("dom0-base")))


@pytest.fixture(scope="session")
def rpm_files(built):
    """The main RPM's file list (``rpm -qpl``)."""
    return run(["rpm", "-qpl", built.path("rpm")]).stdout.split()


@pytest.fixture(scope="session")
def payload(built):
    """``payload(path)``: a file of the main RPM as text, read with rpm2archive (not rpm -i)."""
    with open(built.path("rpm"), "rb") as handle:
        proc = subprocess.run(["rpm2archive", "-n", "-"], stdin=handle, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    archive = tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:")

    def read(member):
        return archive.extractfile("." + member).read().decode("utf-8")
    yield read
    archive.close()
