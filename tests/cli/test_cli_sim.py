"""The command line against the simulator over --url, where xapi itself refuses: a user whose role
is read-only, and a configuration too large to reach the plugin."""

import os
import subprocess
import sys

import pytest

from xscontainer.exitcodes import EXIT_PERMISSION
from xscontainer.plugin import validate
from xscontainer.sim.process import SimulatorProcess
from xscontainer.xapi.session import close_session


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sim")
    sim = SimulatorProcess(str(directory))
    info = sim.start(30.0)
    session = sim.local_session()
    api = session.xenapi
    api.VM.create({"name_label": "guest"})
    api.sim.add_user("auditor", "s3cret", "read-only")
    (directory / "root-password").write_text(info["password"] + "\n")
    (directory / "auditor-password").write_text("s3cret\n")
    yield sim, session, directory
    close_session(session)
    assert sim.stop() == 0


def run(pool, user, *argv):
    sim, _, directory = pool
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCONTAINER_")}
    base = [sys.executable, "-m", "xscontainer.cli.main", "--url", sim.url, "--username", user,
            "--password-file", str(directory / ("%s-password" % user))]
    return subprocess.run(base + list(argv), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def test_a_read_only_user_can_list_but_not_act(pool):
    assert run(pool, "auditor", "ps", "--json").returncode == 0
    result = run(pool, "auditor", "register", "guest")
    assert result.returncode == EXIT_PERMISSION, result.stderr
    assert "[RBAC_PERMISSION_DENIED]" in result.stderr
    assert "host.call_plugin" in result.stderr and "pool-admin" in result.stderr
    assert "Traceback" not in result.stderr
    _, session, _ = pool
    vm = session.xenapi.VM.get_by_name_label("guest")[0]
    assert "xscontainer-monitor" not in session.xenapi.VM.get_other_config(vm)


def _configuration(size, filler="x"):
    head = "#cloud-config\n# "
    return head + filler * (size - len(head) - 1) + "\n"


def test_a_configuration_too_large_for_xapi_is_refused_before_the_call(pool, tmp_path):
    _, session, _ = pool
    vdis_before = set(session.xenapi.VDI.get_all())
    big = tmp_path / "big.yaml"
    big.write_text(_configuration(validate.MAX_CONFIGURATION_BYTES + 1))
    result = run(pool, "root", "config-drive", "create", "guest", "--sr", "Local storage",
                 "--file", str(big))
    assert result.returncode == 2, result.stderr
    assert "[ARGUMENT_TOO_LARGE]" in result.stderr and "131071" in result.stderr
    # Escaping counts: 30,000 '&' are 150,000 bytes in the call.
    escaped = tmp_path / "escaped.yaml"
    escaped.write_text(_configuration(30000, "&"))
    result = run(pool, "root", "config-drive", "create", "guest", "--sr", "Local storage",
                 "--file", str(escaped))
    assert result.returncode == 2 and "[ARGUMENT_TOO_LARGE]" in result.stderr, result.stderr
    assert set(session.xenapi.VDI.get_all()) == vdis_before


def test_the_largest_configuration_that_fits_is_made_into_a_drive(pool, tmp_path):
    largest = tmp_path / "largest.yaml"
    largest.write_text(_configuration(validate.MAX_CONFIGURATION_BYTES))
    result = run(pool, "root", "config-drive", "create", "guest", "--sr", "Local storage",
                 "--file", str(largest), "--json")
    assert result.returncode == 0, result.stderr


def test_a_host_without_xscontainer_is_named(pool):
    sim, session, _ = pool
    host = session.xenapi.host.get_all()[0]
    session.xenapi.sim.remove_plugin(host, "xscontainer")
    try:
        result = run(pool, "root", "register", "guest")
    finally:
        session.xenapi.sim.restore_plugin(host, "xscontainer")
    assert result.returncode == 1, result.stderr
    assert "[PLUGIN_NOT_INSTALLED]" in result.stderr
    assert "xscontainer is not installed on host %s (%s)" % (
        sim.info["hosts"][0]["name_label"], sim.info["hosts"][0]["uuid"]) in result.stderr
