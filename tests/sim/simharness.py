"""Test harness: start the simulator as a subprocess (as users do); talk to it with XenAPI."""

import json
import os
import signal
import subprocess
import sys
import threading

import XenAPI

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")


def plugins_dir(base):
    """Product plugins (echo) plus the test-only failure plugins, as symlinks."""
    path = os.path.join(base, "plugins")
    os.makedirs(path, exist_ok=True)
    sources = [os.path.join(ROOT, "plugins", "echo")]
    sources += [os.path.join(TEST_PLUGINS, n) for n in sorted(os.listdir(TEST_PLUGINS))]
    for src in sources:
        link = os.path.join(path, os.path.basename(src))
        if not os.path.lexists(link):
            os.symlink(src, link)
    return path


class Sim:
    def __init__(self, directory, extra=(), plugins=None):
        self.directory = directory
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
        argv = [sys.executable, "-m", "xscontainer.sim.cli", "--dir", directory,
                "--plugins", plugins or plugins_dir(directory)] + list(extra)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)
        line = self._readline(20.0)
        if not line:
            self.proc.kill()
            raise RuntimeError("simulator did not start: %s" % self.proc.stderr.read())
        self.info = json.loads(line.decode())

    def _readline(self, timeout):
        result = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        return result[0] if result else b""

    @property
    def url(self):
        return self.info["xapi_url"]

    def session(self):
        s = XenAPI.Session(self.url)
        s.xenapi.login_with_password("root", self.info["password"], "1.0", "tests")
        return s

    def unix_session(self, password="anything"):
        s = XenAPI.Session("http://" + self.info["unix_socket"].replace("/", "_"),
                           transport=XenAPI.UDSTransport())
        s.xenapi.login_with_password("root", password, "1.0", "tests")
        return s

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode

