"""The README's main job, end to end: the demo leaves a pool that its printed commands explore."""

import os
import subprocess
import sys

import pytest


def test_demo_runs_and_leaves_an_explorable_pool(tmp_path):
    from xscontainer.testbed import Testbed, missing_prerequisites
    missing = missing_prerequisites()
    if missing:
        pytest.skip("the demo needs a testbed: " + "; ".join(missing))
    directory = str(tmp_path / "demo")
    try:
        out = subprocess.run([sys.executable, "-m", "xscontainer.demo", "--dir", directory],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                             timeout=600)
        assert out.returncode == 0, out.stdout[-3000:]
        text = out.stdout
        for expected in ["TrueNone", "<docker_ps>", "169.254.", "->80/tcp", "<TIME>", "Up (Paused)",
                         "Reflected in VM.other_config:docker_ps after", "config drive created",
                         "Tear it down with"]:
            assert expected in text, expected
        # The printed exploration commands work.
        info = Testbed(directory).info()
        env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=info["unix_socket"],
                   XSCONTAINER_INVENTORY=info["hosts"][0]["inventory"])
        listing = subprocess.run([info["xe"], "vm-list", "params=uuid,name-label,resident-on"],
                                 stdout=subprocess.PIPE, universal_newlines=True, env=env, check=True).stdout
        assert "vm1" in listing and "vm3" in listing
        ps = subprocess.run([os.path.join(os.path.dirname(sys.executable), "xscontainer"), "ps", "--all-hosts",
                             "--json"], stdout=subprocess.PIPE, universal_newlines=True, env=env, check=True)
        assert '"web"' in ps.stdout
    finally:
        Testbed(directory).down()
