"""The demo (``./dev.sh demo``): a simulated pool of two hosts whose VMs run real containers,
explored with the commands an administrator types in dom0.

It brings up a testbed with a monitor per host, registers the VMs through the plugin, waits
until their containers are reflected in xapi, then shows the view, the processes, a pause
reflected within a second and a config drive for a new VM. The pool stays up afterwards.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.dom.minidom
from typing import List, Optional

from xscontainer.errors import XSContainerError

DEFAULT_DIR = "/tmp/xscontainer-demo"


def _say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)
        self.bin = os.path.dirname(sys.executable)
        self.info = {}  # type: Dict
        self.env = dict(os.environ)

    # -- running what an administrator would type ----------------------------------------------
    def run(self, argv: List[str], show: Optional[List[str]] = None, limit: int = 1600) -> str:
        shown = show or argv
        _say("$ " + " ".join(shlex.quote(a) for a in shown))
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
                              universal_newlines=True)
        out = proc.stdout.rstrip()
        _say(out if len(out) <= limit else out[:limit] + " ... (%d more characters)" % (len(out) - limit))
        _say()
        if proc.returncode != 0:
            raise XSContainerError("The demo command failed: %s" % " ".join(shown), code="DEMO_FAILED")
        return proc.stdout

    def xe(self, *args: str) -> str:
        return self.run([self.info["xe"]] + list(args), ["xe"] + list(args))

    def cli(self, *args: str) -> str:
        return self.run([os.path.join(self.bin, "xscontainer")] + list(args), ["xscontainer"] + list(args))

    # -- the steps --------------------------------------------------------------------------------
    def up(self) -> None:
        from xscontainer.testbed import Testbed, missing_prerequisites
        missing = missing_prerequisites()
        if missing:
            raise XSContainerError("This machine cannot run the demo pool: " + "; ".join(missing),
                                   code="DEMO_PREREQUISITES")
        _say("Bringing up a simulated pool (2 hosts, 3 VMs with sshd and dockerd, a monitor per host) in %s ..."
             % self.directory)
        started = time.monotonic()
        testbed = Testbed(self.directory)
        testbed.up(hosts=2, vms=3, containers=4, monitor=True)
        self.info = testbed.info()
        # The demo plays dom0 of the first host (the coordinator).
        self.env["XSCONTAINER_XAPI_SOCKET"] = self.info["unix_socket"]
        self.env["XSCONTAINER_INVENTORY"] = self.info["hosts"][0]["inventory"]
        _say("Up in %.1f s.\n" % (time.monotonic() - started))

    def register(self) -> None:
        coordinator = self.info["hosts"][0]["uuid"]
        _say("# Register every VM for container management, as XenCenter does (on the coordinator):")
        for vm in self.info["vms"]:
            self.xe("host-call-plugin", "host-uuid=" + coordinator, "plugin=xscontainer", "fn=register",
                    "args:vmuuid=" + vm["uuid"])
        self._wait_reflected()

    def _wait_reflected(self, timeout: float = 60.0) -> None:
        from xscontainer.xapi.session import close_session, open_local_session
        session = open_local_session(self.info["unix_socket"])
        try:
            deadline = time.monotonic() + timeout
            for vm in self.info["vms"]:
                ref = session.xenapi.VM.get_by_uuid(vm["uuid"])
                while "docker_ps" not in session.xenapi.VM.get_other_config(ref):
                    if time.monotonic() > deadline:
                        raise XSContainerError("The monitor did not reflect %s in time; see %s/logs."
                                               % (vm["name_label"], self.directory), code="DEMO_FAILED")
                    time.sleep(0.1)
        finally:
            close_session(session)

    def show_view(self) -> None:
        vm1 = self.info["vms"][0]
        _say("# What XenCenter and Xen Orchestra read: the monitor's keys in VM.other_config")
        self.xe("vm-list", "other-config:xscontainer-monitor=True", "params=uuid,name-label,power-state")
        self.xe("vm-param-get", "uuid=" + vm1["uuid"], "param-name=other-config", "param-key=docker_ps")
        _say("# The same, pool-wide, from the administrator's CLI")
        self.cli("ps", "--all-hosts")

    def show_processes(self) -> None:
        vm2 = self.info["vms"][1]
        coordinator = self.info["hosts"][0]["uuid"]
        _say("# Processes with their cumulative CPU TIME; the call is made on the coordinator and runs on the")
        _say("# host the VM lives on (%s)" % next(h["name_label"] for h in self.info["hosts"]
                                                   if h["uuid"] == vm2["host_uuid"]))
        self.xe("host-call-plugin", "host-uuid=" + coordinator, "plugin=xscontainer", "fn=get_top",
                "args:vmuuid=" + vm2["uuid"], "args:object=burner")
        self.cli("top", vm2["name_label"], "burner")

    def show_pause(self) -> None:
        from xscontainer.xapi.session import close_session, open_local_session
        vm1 = self.info["vms"][0]
        _say("# A pause made inside the VM, with the engine itself, reaches xapi through the event stream:")
        session = open_local_session(self.info["unix_socket"])
        try:
            ref = session.xenapi.VM.get_by_uuid(vm1["uuid"])
            token = session.xenapi.event_from(["vm"], "", 0.0)["token"]
            started = time.monotonic()
            self.run(["docker", "-H", "unix://" + vm1["docker_socket"], "pause", "web"],
                     ["docker", "-H", "unix://<%s's engine>" % vm1["name_label"], "pause", "web"])
            while time.monotonic() - started < 10:
                batch = session.xenapi.event_from(["vm"], token, 1.0)
                token = batch["token"]
                if _status(session.xenapi.VM.get_other_config(ref).get("docker_ps"), "web") == "Up (Paused)":
                    break
            _say("Reflected in VM.other_config:docker_ps after %.0f ms.\n" % ((time.monotonic() - started) * 1000))
        finally:
            close_session(session)
        self.cli("ps", "--vm", vm1["name_label"])
        _say("# ... and back, through the plugin this time:")
        self.cli("unpause", vm1["name_label"], "web")

    def show_config_drive(self) -> None:
        from xscontainer.xapi.session import close_session, open_local_session
        session = open_local_session(self.info["unix_socket"])
        try:
            api = session.xenapi
            template = next(r["uuid"] for r in api.VM.get_all_records().values()
                            if r["is_a_template"] and "coreos" in r["name_label"].lower())
            api.VM.create({"name_label": "new-container-host"})
            sr = api.SR.get_uuid(api.pool.get_default_SR(api.pool.get_all()[0]))
        finally:
            close_session(session)
        _say("# A config drive for a new VM: the default cloud-config (with the pool's key), then the drive")
        default = self.cli("config-drive", "default", template)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, dir=self.directory) as handle:
            handle.write(default)
            path = handle.name
        self.cli("config-drive", "create", "new-container-host", "--sr", sr, "--file", path)
        self.xe("vdi-list", "name-label=Automatic Config Drive", "params=uuid,name-label,virtual-size")

    def explain(self) -> None:
        _say("The pool is still running. Explore it with:")
        _say("  export XSCONTAINER_XAPI_SOCKET=%s" % self.info["unix_socket"])
        _say("  export XSCONTAINER_INVENTORY=%s   # act as host1's dom0" % self.info["hosts"][0]["inventory"])
        _say("  %s vm-list params=uuid,name-label,resident-on" % self.info["xe"])
        _say("  %s/xscontainer ps --all-hosts       # or: top, inspect, logs, stats, pause, doctor ..." % self.bin)
        _say("  %s/xscontainer-testbed vm-exec --dir %s vm1 -- docker ps" % (self.bin, self.directory))
        _say("Logs: %s/logs/. Tear it down with:" % self.directory)
        _say("  %s/xscontainer-testbed down --dir %s" % (self.bin, self.directory))


def _status(docker_ps: Optional[str], name: str) -> Optional[str]:
    if not docker_ps:
        return None
    for entry in xml.dom.minidom.parseString(docker_ps).getElementsByTagName("entry"):
        values = {c.tagName: "".join(t.data for t in c.childNodes if t.nodeType == t.TEXT_NODE)
                  for c in entry.childNodes if c.nodeType == c.ELEMENT_NODE}
        if values.get("names") == name:
            return values.get("status")
    return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xscontainer.demo", description=__doc__)
    parser.add_argument("--dir", default=DEFAULT_DIR, help="where the demo pool lives (default %(default)s)")
    args = parser.parse_args(argv)
    demo = Demo(args.dir)
    try:
        demo.up()
        demo.register()
        demo.show_view()
        demo.show_processes()
        demo.show_pause()
        demo.show_config_drive()
        demo.explain()
    except XSContainerError as exc:
        print("demo: %s (%s)" % (exc.message, exc.code), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
