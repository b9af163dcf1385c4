"""The README's quick start on a bare Debian 12, run in a throwaway copy of a clean root.

Slow and needs the network (Debian's archive, PyPI), so it runs only when asked:
XSCONTAINER_QUICKSTART_ROOT names a pristine Debian 12 rootfs (``tools/bare-debian-check``
builds one with debootstrap and runs this file). Each test works on its own copy, so the
rootfs stays pristine. Inside the root: a clean export of the repository's HEAD, a cleared
environment (none of this machine's pip or pyenv settings), this machine's kernel and network.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRISTINE = os.environ.get("XSCONTAINER_QUICKSTART_ROOT", "")
CHECKOUT = "/root/xscontainer"
# A distinctive directory: testbed names (bridges, namespaces) derive from it and must not meet
# those of testbeds that other processes run on this kernel.
DEMO_DIR = "/var/tmp/xsc-quickstart-demo"
# What a booted Debian has and the demo needs: / a mount point of its own, /proc, /sys with the
# cgroup hierarchies (dockerd), /dev with ptys, an empty /run (network namespaces live there).
ENTER = """set -e
root=$1; shift
mount --make-rprivate /
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mkdir -p "$root/.oldroot"
cd "$root"
pivot_root . .oldroot
umount -l /.oldroot
cd /
exec "$@"
"""
CLEAN_ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]

pytestmark = pytest.mark.skipif(
    not PRISTINE or not os.path.isfile(os.path.join(PRISTINE, "etc", "debian_version")),
    reason="set XSCONTAINER_QUICKSTART_ROOT to a Debian 12 rootfs (tools/bare-debian-check builds one)")


class CleanRoot:
    """A copy of the pristine rootfs with the repository exported into it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def prepare(self) -> None:
        subprocess.run(["cp", "-a", PRISTINE + "/.", self.path], check=True)
        checkout = self.path + CHECKOUT
        os.makedirs(checkout)
        archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", "HEAD"],
                                 stdout=subprocess.PIPE, check=True).stdout
        subprocess.run(["tar", "-x", "-C", checkout], input=archive, check=True)
        shutil.copy("/etc/resolv.conf", os.path.join(self.path, "etc", "resolv.conf"))
        self._trust_local_authorities()

    def _trust_local_authorities(self) -> None:
        """This network's own CAs (a TLS-inspecting egress proxy), as its Debian machines have
        them: placed where ca-certificates' postinst adds them to the bundle when a package
        pulls it in (python3-venv does). A bare root has no bundle of its own."""
        local = "/usr/local/share/ca-certificates"
        if os.path.isdir(local):
            target = self.path + local
            os.makedirs(target, exist_ok=True)
            for name in os.listdir(local):
                if name.endswith(".crt"):
                    shutil.copy(os.path.join(local, name), target)

    def run(self, script: str, timeout: int = 3600) -> "subprocess.CompletedProcess[str]":
        """script, by bash, in new mount and pid namespaces whose root is this copy.

        pivot_root, not chroot: the testbed enters its VMs' mount namespaces with nsenter, and
        setns(2) resets a process's root to its namespace's root, which for a chroot is this
        machine's / (the VMs' dockerd then saw this machine's /var/run). The pid namespace ends
        every process the call started when it returns, and only those. So whatever must share
        state (the demo and its teardown) runs in one call.
        """
        return subprocess.run(["unshare", "--mount", "--pid", "--fork", "--", "sh", "-c", ENTER,
                               "enter", self.path] + CLEAN_ENV + ["bash", "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout)

    def packages(self) -> str:
        return self.run("dpkg-query -W -f '${Package} ${Version} ${Status}\\n'").stdout

    def close(self) -> None:
        subprocess.run(["rm", "-rf", "--one-file-system", self.path], check=False)


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
    # Debian 12 packages neither Python 3.6 nor pyenv: the message says how to get both.
    for expected in ["Python 3.6", "git clone https://github.com/pyenv/pyenv ~/.pyenv",
                     "apt-get install git curl build-essential libssl-dev", "pyenv install 3.6.15",
                     "XSCONTAINER_PYTHON36", "./dev.sh demo' does not need it"]:
        assert expected in out.stdout, out.stdout
    assert "installing Debian packages" not in out.stdout and "creating .venv" not in out.stdout
    assert clean_root.packages() == before
    assert not os.path.exists(clean_root.path + CHECKOUT + "/.venv")


def test_dev_sh_demo_needs_only_debian_python3_and_packages(clean_root):
    # One call: the demo's pool lives in this call's namespaces; it is explored, then torn down.
    out = clean_root.run(
        "cd {co} && ./dev.sh demo --dir {d}; echo \"demo-exit=$?\"; "
        "echo ==venv; cat .venv/pyvenv.cfg; .venv/bin/python -c 'import sys; print(sys.version_info[:2])'; "
        "echo ==ps; .venv/bin/xscontainer --help >/dev/null && echo cli-ok; "
        "echo ==down; .venv/bin/python -c 'from xscontainer.testbed import Testbed; Testbed(\"{d}\").down()'"
        .format(co=CHECKOUT, d=DEMO_DIR))
    text = out.stdout
    print(text)  # the record of what ran in the clean root (pytest shows it with -s or -rA)
    assert "demo-exit=0" in text, text[-5000:]
    demo, rest = text.split("demo-exit=0", 1)
    for expected in ["TrueNone", "<docker_ps>", "->80/tcp", "Up (Paused)", "config drive created",
                     "Tear it down with"]:
        assert expected in demo, (expected, demo[-5000:])
    venv = rest.split("==venv", 1)[1].split("==ps", 1)[0]
    assert "home = /usr/bin" in venv and "(3, 11)" in venv, venv
    assert "cli-ok" in rest, rest
