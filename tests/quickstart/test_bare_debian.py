"""The README's quick start on a bare Debian 12, run in a throwaway copy of a clean root.

Slow and needs the network (Debian's archive, PyPI), so it runs only when asked:
XSCONTAINER_QUICKSTART_ROOT names a pristine Debian 12 rootfs (``tools/bare-debian-check``
builds one with debootstrap and runs this file). Each test works on its own copy, so the
rootfs stays pristine. Inside the root: a clean export of the repository's HEAD, a cleared
environment (none of this machine's pip or pyenv settings), this machine's kernel and network.
"""

import os
import shutil
import signal
import subprocess
import tempfile
from typing import List

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRISTINE = os.environ.get("XSCONTAINER_QUICKSTART_ROOT", "")
CHECKOUT = "/root/xscontainer"
# A distinctive directory: testbed names (bridges, namespaces) derive from it and must not meet
# those of testbeds that other processes run on this kernel.
DEMO_DIR = "/var/tmp/xsc-quickstart-demo"
CLEAN_ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]

pytestmark = pytest.mark.skipif(
    not PRISTINE or not os.path.isfile(os.path.join(PRISTINE, "etc", "debian_version")),
    reason="set XSCONTAINER_QUICKSTART_ROOT to a Debian 12 rootfs (tools/bare-debian-check builds one)")


class CleanRoot:
    """A copy of the pristine rootfs with the repository exported into it, entered by chroot."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mounts = []  # type: List[str]

    def prepare(self) -> None:
        subprocess.run(["cp", "-a", PRISTINE + "/.", self.path], check=True)
        checkout = self.path + CHECKOUT
        os.makedirs(checkout)
        archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", "HEAD"],
                                 stdout=subprocess.PIPE, check=True).stdout
        subprocess.run(["tar", "-x", "-C", checkout], input=archive, check=True)
        shutil.copy("/etc/resolv.conf", os.path.join(self.path, "etc", "resolv.conf"))
        self._trust_local_authorities()
        # A booted machine's / is a mount point; `ip -n` remounts / in its own mount namespace
        # and fails with EINVAL on a chroot whose root is not one.
        subprocess.run(["mount", "--bind", self.path, self.path], check=True)
        self.mounts.append(self.path)
        # What a booted Debian has and the demo needs: /proc, /sys with the cgroup
        # hierarchies (dockerd), /dev with ptys, a fresh /run (network namespaces live there).
        self._mount(["-t", "proc", "proc"], "proc")
        self._mount(["--rbind", "/sys"], "sys")
        self._mount(["--rbind", "/dev"], "dev")
        self._mount(["-t", "tmpfs", "tmpfs"], "run")

    def _trust_local_authorities(self) -> None:
        """This network's own CAs (a TLS-inspecting egress proxy), as its Debian machines have
        them: placed where ca-certificates' postinst adds them to the bundle, when dev.sh installs
        it. Without the package (a bare root has none) they are not trusted."""
        local = "/usr/local/share/ca-certificates"
        if os.path.isdir(local):
            target = self.path + local
            os.makedirs(target, exist_ok=True)
            for name in os.listdir(local):
                if name.endswith(".crt"):
                    shutil.copy(os.path.join(local, name), target)

    def _mount(self, how: List[str], where: str) -> None:
        target = os.path.join(self.path, where)
        subprocess.run(["mount"] + how + [target], check=True)
        self.mounts.append(target)
        if "--rbind" in how:
            subprocess.run(["mount", "--make-rslave", target], check=True)

    def run(self, script: str, timeout: int = 3600) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(["chroot", self.path] + CLEAN_ENV + ["bash", "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout)

    def packages(self) -> str:
        return self.run("dpkg-query -W -f '${Package} ${Version} ${Status}\\n'").stdout

    def close(self) -> None:
        self._kill_processes_inside()
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-R", "-l", target], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", self.path], check=False)

    def _kill_processes_inside(self) -> None:
        """Only processes whose root is this copy: what the tests started in it, nothing else."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                root = os.readlink("/proc/%s/root" % pid)
            except OSError:
                continue
            if root == self.path or root.startswith(self.path + "/"):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def clean_root():
    # Under /var/tmp, not tmp_path: the copy grows to about a gigabyte once the demo's packages
    # are in it, and tmp_path may be a small tmpfs.
    root = CleanRoot(tempfile.mkdtemp(prefix="xsc-quickstart-", dir="/var/tmp"))
    try:
        root.prepare()
        yield root
    finally:
        root.close()


def test_the_root_is_bare(clean_root):
    """Nothing the quick start needs is there beforehand, or the other tests prove nothing."""
    out = clean_root.run("cat /etc/debian_version; command -v python3 pyenv python3.6 docker || true")
    assert out.stdout.startswith("12."), out.stdout
    assert "/" not in out.stdout.split("\n", 1)[1], out.stdout


def test_dev_sh_test_without_python36_stops_at_once_saying_what_to_install(clean_root):
    before = clean_root.packages()
    out = clean_root.run("cd %s && ./dev.sh test" % CHECKOUT)
    assert out.returncode != 0, out.stdout
    for expected in ["Python 3.6", "pyenv install 3.6.15", "build-essential libssl-dev",
                     "XSCONTAINER_PYTHON36", "./dev.sh demo' does not need it"]:
        assert expected in out.stdout, out.stdout
    assert clean_root.packages() == before
    assert not os.path.exists(clean_root.path + CHECKOUT + "/.venv")


def test_dev_sh_demo_needs_only_debian_python3_and_packages(clean_root):
    out = clean_root.run("cd %s && ./dev.sh demo --dir %s" % (CHECKOUT, DEMO_DIR))
    try:
        assert out.returncode == 0, out.stdout[-5000:]
        for expected in ["TrueNone", "<docker_ps>", "->80/tcp", "Up (Paused)", "config drive created",
                         "Tear it down with"]:
            assert expected in out.stdout, (expected, out.stdout[-5000:])
        venv = clean_root.run("cat %s/.venv/pyvenv.cfg; %s/.venv/bin/python -c "
                              "'import sys; print(sys.version_info[:2])'" % (CHECKOUT, CHECKOUT)).stdout
        assert "home = /usr/bin" in venv and "(3, 11)" in venv, venv
        ps = clean_root.run("%s/.venv/bin/xscontainer --help" % CHECKOUT)
        assert ps.returncode == 0, ps.stdout
    finally:
        clean_root.run("cd %s && [ -x .venv/bin/python ] && .venv/bin/python -c "
                       "'from xscontainer.testbed import Testbed; Testbed(\"%s\").down()'" % (CHECKOUT, DEMO_DIR))
