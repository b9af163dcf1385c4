"""The Docker client through the SSH tunnel against a real testbed VM (sshd + dockerd in
namespaces, no xapi): every API call, events, and dockerd stopped mid-stream."""

import io
import os
import shutil
import tempfile
import threading

import paramiko
import pytest

from xscontainer.engine.client import DockerClient
from xscontainer.engine.http import HttpPool
from xscontainer.engine.probe import ping_engine
from xscontainer.errors import ConnectionFailure, NotFound
from xscontainer.hostkeys import MemoryHostKeyPin
from xscontainer.transport.ssh import SshTunnel
from xscontainer.vmsettings import VmSettings


@pytest.fixture(scope="module")
def bed():
    from xscontainer.testbed.testbed import Testbed, missing_prerequisites
    reasons = missing_prerequisites()
    if reasons:
        pytest.skip("no testbed here: %s" % "; ".join(reasons))
    directory = tempfile.mkdtemp(prefix="xsc-e4-")
    testbed = Testbed(directory)
    info = testbed.up(vms=1, containers=4, xapi=False)
    yield testbed, info["vms"][0]
    testbed.down()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def client(bed):
    testbed, vm = bed
    with open(os.path.join(testbed.directory, "testbed_key")) as handle:
        pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(handle.read()))
    settings = VmSettings(vm["name_label"], "", [vm["ip"]], vm["ssh_user"], "ssh", None, {})
    pin = MemoryHostKeyPin(vm["name_label"], vm["ssh_host_key"])  # the testbed made the key
    tunnel = SshTunnel(vm["name_label"], lambda: settings, lambda: pkey, pin, ping_engine, connect_timeout=5)
    client = DockerClient(HttpPool(tunnel.open_stream), vm["name_label"])
    yield client
    assert pin.pinned == vm["ssh_host_key"]
    client.close()
    tunnel.close()


def test_api_calls_on_a_real_engine(client):
    assert client.api_version == "1.41"
    names = sorted(c["Names"][0].lstrip("/") for c in client.containers())
    assert names == ["burner", "exited", "sleeper", "web"]
    assert client.info()["Containers"] == 4
    assert client.version()["ApiVersion"] == "1.41"
    web = client.inspect("web")
    assert client.inspect(web["Id"][:6])["Name"] == "/web"
    top = client.top("web")
    assert {"PID", "CMD", "TIME"} <= set(top["Titles"])
    assert "memory_stats" in client.stats("web")
    client.action("exited", "start")
    logs = client.logs("exited", tail=10)
    assert all(stream in ("stdout", "stderr") for stream, _ in logs)
    with pytest.raises(NotFound):
        client.inspect("nosuchcontainer")


def test_results_match_docker_py_the_reference_client(bed, client):
    """docker-py on the VM's socket (from this machine) and our client through the SSH tunnel see
    the same engine: the records our renderers and plugin functions use must be the same."""
    import docker
    _, vm = bed
    reference = docker.APIClient(base_url="unix://" + vm["docker_socket"], version="1.41")
    try:
        ours = {c["Id"]: c for c in client.containers(all=True)}
        theirs = {c["Id"]: c for c in reference.containers(all=True)}
        assert sorted(ours) == sorted(theirs)
        for cid, record in theirs.items():
            for field in ("Names", "Image", "ImageID", "Command", "Created", "Ports", "Labels", "State"):
                assert ours[cid][field] == record[field], (cid, field)
            mine = client.inspect(cid)
            ref = reference.inspect_container(cid)
            assert (mine["Id"], mine["Name"], mine["Config"], mine["HostConfig"]) == \
                (ref["Id"], ref["Name"], ref["Config"], ref["HostConfig"])
            assert mine["State"]["Status"] == ref["State"]["Status"]
        assert client.version() == reference.version()
        assert client.info()["ID"] == reference.info()["ID"]
        top_ours, top_ref = client.top("web"), reference.top("web")
        assert top_ours["Titles"] == top_ref["Titles"]
        assert [p[0] for p in top_ours["Processes"]] == [p[0] for p in top_ref["Processes"]]
        ours_logs = b"".join(chunk for _, chunk in client.logs("web", tail=20))
        assert ours_logs == reference.logs("web", tail=20)
    finally:
        reference.close()


def test_events_and_lifecycle(client):
    stream = client.events()
    seen = []

    def read():
        for event in stream:
            seen.append((event.action, event.name))
            if event.action == "unpause":
                return
    reader = threading.Thread(target=read)
    reader.start()
    client.pause("web")
    client.unpause("web")
    reader.join(30)
    stream.close()
    assert ("pause", "web") in seen and ("unpause", "web") in seen


def test_dockerd_stopped_mid_stream_then_back(bed, client):
    testbed, vm = bed
    stream = client.events()
    errors = []

    def read():
        try:
            for _ in stream:
                pass
        except ConnectionFailure as exc:
            errors.append(exc.code)
    reader = threading.Thread(target=read)
    reader.start()
    testbed.stop_dockerd(vm["name_label"])
    try:
        reader.join(30)
        assert not reader.is_alive()
        assert errors == ["CONNECTION_LOST"] or errors == []  # a clean end of stream is acceptable too
        with pytest.raises(ConnectionFailure) as info:
            client.containers()
        assert info.value.code in ("ENGINE_UNREACHABLE", "CONNECTION_LOST")
    finally:
        testbed.start_dockerd(vm["name_label"])
    assert len(client.containers()) == 4
