"""Test harness: start the simulator as a subprocess (as users do); talk to it with XenAPI."""

import os

import XenAPI

from xscontainer.sim.process import SimulatorProcess

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


class Sim(SimulatorProcess):
    """The simulator with the product's plugins plus the test-only failure plugins."""

    def __init__(self, directory, extra=(), plugins=None):
        super().__init__(directory, plugins=plugins or plugins_dir(directory), extra_args=extra)
        self.start(30.0)

    def session(self):
        s = XenAPI.Session(self.url)
        s.xenapi.login_with_password("root", self.info["password"], "1.0", "tests")
        return s

    def unix_session(self, password="anything"):
        s = XenAPI.Session("http://" + self.info["unix_socket"].replace("/", "_"),
                           transport=XenAPI.UDSTransport())
        s.xenapi.login_with_password("root", password, "1.0", "tests")
        return s
