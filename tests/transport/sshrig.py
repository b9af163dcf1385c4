"""A real OpenSSH sshd on 127.0.0.1 (root login with a test key) in front of a scripted engine
on a Unix socket: the SSH tunnel's mechanics without needing the full testbed."""

import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import paramiko

from waiting import wait_for

from xscontainer.poolkeys import generate_keypair
from xscontainer.vmsettings import VmSettings

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class MemoryPin(object):
    """The pin store interface kept in memory: the xapi one is tested on the testbed.
    ``pinned`` is the verified key; None refuses every key (no trust on first use)."""

    def __init__(self, vm_uuid="vm-test", pinned=None):
        self.vm_uuid = vm_uuid
        self.pinned = pinned
        self.pins = 0

    def state(self):
        from xscontainer.hostkeys import PinState
        return PinState(self.pinned, None, None, True)

    def get(self):
        return self.pinned

    def pin_verified(self, offered):
        self.pins += 1
        self.pinned = offered

    def bind(self):
        pass


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class SshRig(object):
    def __init__(self, allow_streamlocal=True):
        self.dir = tempfile.mkdtemp(prefix="xsc-sshrig-")
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        self.port = free_port()
        self.host_key = os.path.join(self.dir, "host_ed25519")
        subprocess.check_call(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key])
        self.pair = generate_keypair()
        self.authorized = os.path.join(self.dir, "authorized_keys")
        self.authorize(True)
        self.log = os.path.join(self.dir, "sshd.log")
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as handle:
            handle.write("\n".join([
                "ListenAddress 127.0.0.1:%d" % self.port, "HostKey %s" % self.host_key,
                "PidFile %s" % os.path.join(self.dir, "sshd.pid"), "UsePAM no", "StrictModes no",
                "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "AuthorizedKeysFile %s" % self.authorized,
                "AllowStreamLocalForwarding %s" % ("yes" if allow_streamlocal else "no"),
                "LogLevel DEBUG1", "UseDNS no", ""]))
        self.proc = None
        self.start()

    def authorize(self, yes):
        with open(self.authorized, "w") as handle:
            handle.write(self.pair.public_line + "\n" if yes else "")

    def pkey(self):
        return paramiko.Ed25519Key.from_private_key(io.StringIO(self.pair.private_pem))

    def host_key_b64(self):
        with open(self.host_key + ".pub") as handle:
            return handle.read().split()[1]

    def settings(self):
        return VmSettings("vm-test", "OpaqueRef:x", ["127.0.0.1"], "root", "ssh", None, {})

    def start(self):
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config], stderr=open(self.log, "a"))
        def answers():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        try:
            wait_for(answers, 10, "sshd on port %d" % self.port, interval=0.02)
        except AssertionError:
            raise RuntimeError("sshd did not start: %s" % open(self.log).read()[-2000:])

    def stop(self):
        """Kill sshd and every session process it forked (a dead 'VM sshd')."""
        if self.proc is None:
            return
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], stdout=subprocess.PIPE,
                                  universal_newlines=True).stdout.split()
        self.proc.kill()
        self.proc.wait()
        for pid in children:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        self.proc = None

    def log_text(self):
        with open(self.log) as handle:
            return handle.read()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
