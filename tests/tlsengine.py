"""A testbed VM's dockerd replaced by the real one listening with --tlsverify on the VM's address
(port 2376), for the TLS tests; the testbed's own dockerd comes back afterwards."""

import os
import socket
import subprocess

from waiting import wait_for

READY_TIMEOUT = 60


def write_private(path, text, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as handle:
        handle.write(text)


def _tail(path, size=3000):
    try:
        with open(path, "rb") as handle:
            return handle.read()[-size:].decode("utf-8", "replace")
    except OSError:
        return ""


def _port_open(address, port):
    try:
        socket.create_connection((address, port), timeout=1).close()
        return True
    except OSError:
        return False


def _pidfile_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or "0")
    except (OSError, ValueError):
        return 0


class TlsEngine(object):
    """The VM's dockerd replaced by one that also listens with --tlsverify on ip:2376."""

    def __init__(self, testbed, vm, directory, bundle):
        self.testbed = testbed
        self.vm = vm
        self.log = os.path.join(directory, "dockerd-tls.log")
        files = {}
        for name, text in (("ca.pem", bundle.ca_cert), ("server-cert.pem", bundle.server_cert),
                           ("server-key.pem", bundle.server_key)):
            files[name] = os.path.join(directory, name)
            write_private(files[name], text)
        self.argv = testbed.dockerd_argv(vm["name_label"]) + [
            "-H", "tcp://%s:2376" % vm["ip"], "--tlsverify", "--tlscacert", files["ca.pem"],
            "--tlscert", files["server-cert.pem"], "--tlskey", files["server-key.pem"]]
        self.proc = None

    def start(self):
        name = self.vm["name_label"]
        self.testbed.stop_dockerd(name)
        pidfile = os.path.join(self.testbed.vm_dir(name), "run", "docker.pid")
        if os.path.exists(pidfile) and not os.path.exists("/proc/%d" % _pidfile_pid(pidfile)):
            os.unlink(pidfile)  # left by a killed dockerd
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.testbed.vm_exec_argv(name, self.argv), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("dockerd --tlsverify exited (%s): %s" % (self.proc.returncode, _tail(self.log)))
            return self.testbed.dockerd_running(name) and _port_open(self.vm["ip"], 2376)
        try:
            wait_for(ready, READY_TIMEOUT, "dockerd --tlsverify", interval=0.1)
        except AssertionError as exc:
            raise AssertionError("%s: %s" % (exc, _tail(self.log)))

    def stop(self):
        """Stop ours (graceful, so live-restore keeps the containers) and bring the testbed's back."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.testbed.start_dockerd(self.vm["name_label"])
