"""The monitor's values fit in one xapi request (issue 12): xapi refuses any XML-RPC request over
300 KiB, and what counts is the request (the value XML-escaped inside ``VM.add_to_other_config``),
not the value. Pure: literal engine records in, the request we would send measured here with
``xmlrpc.client`` (independently of the product's own measure), the consumers' parsers reading it.
"""

import uuid
import xmlrpc.client

import pytest
import XenAPI

import consumer_xml as cx
from xscontainer import consumerxml
from xscontainer.consumerxml.state import StartTimes, render_state
from xscontainer.errors import XSContainerError
from xscontainer.xapi.maps import set_map_key

XAPI_LIMIT = 300 * 1024  # Constants.http_limit_max_rpc_size in xen-api


def request_bytes(key, value):
    """The body of the XML-RPC request the monitor sends to write ``key``."""
    params = ("OpaqueRef:" + str(uuid.uuid4()), "OpaqueRef:" + str(uuid.uuid4()), key, value)
    return len(xmlrpc.client.dumps(params, "VM.add_to_other_config").encode("utf-8"))


def compose_container(index, state):
    """A docker-compose service container as /containers/json?all=1 shows it (about 2.7 KB of XML)."""
    cid = ("%064x" % (index * 7919 + 1))[-64:]
    project, service = "shop%d" % (index // 10), "svc%d" % index
    status = {"running": "Up 2 hours", "paused": "Up 2 hours (Paused)"}.get(state, "Exited (0) 3 days ago")
    return {
        "Id": cid, "Names": ["/%s-%s-1" % (project, service)], "Image": "registry.example.com/%s/%s:1.4.2" % (project, service),
        "ImageID": "sha256:" + "ab" * 32, "Command": "/docker-entrypoint.sh node server.js --port 3000",
        "Created": 1700000000 + index, "State": state, "Status": status,
        "Ports": [{"IP": "0.0.0.0", "PrivatePort": 3000, "PublicPort": 13000 + index, "Type": "tcp"},
                  {"IP": "::", "PrivatePort": 3000, "PublicPort": 13000 + index, "Type": "tcp"}],
        "Labels": {
            "com.docker.compose.config-hash": "9f" * 32, "com.docker.compose.container-number": "1",
            "com.docker.compose.depends_on": "db:service_started:false,cache:service_started:false",
            "com.docker.compose.image": "sha256:" + "cd" * 32, "com.docker.compose.oneoff": "False",
            "com.docker.compose.project": project,
            "com.docker.compose.project.config_files": "/srv/%s/docker-compose.yml" % project,
            "com.docker.compose.project.working_dir": "/srv/%s" % project,
            "com.docker.compose.service": service, "com.docker.compose.version": "2.24.5",
            "traefik.http.routers.%s.rule" % service: "Host(`%s.example.com`) && PathPrefix(`/api`)" % service,
        },
        "SizeRw": 0, "SizeRootFs": 0,
        "HostConfig": {"NetworkMode": "%s_default" % project},
        "NetworkSettings": {"Networks": {"%s_default" % project: {
            "NetworkID": "12" * 32, "EndpointID": "34" * 32, "Gateway": "172.18.0.1",
            "IPAddress": "172.18.%d.%d" % (index // 250, index % 250 + 2), "IPPrefixLen": 16,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": "02:42:ac:12:00:02", "Aliases": None, "DriverOpts": None}}},
        "Mounts": [{"Type": "volume", "Name": "%s_data" % project, "Source": "/var/lib/docker/volumes/%s_data/_data" % project,
                    "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}],
    }


class FakeEngine:
    def __init__(self, containers, info=None, version=None):
        self._containers = containers
        self._info = info or {"Driver": "overlay2", "Containers": len(containers)}
        self._version = version or {"Version": "24.0.7", "ApiVersion": "1.43"}

    def containers(self, all=True):
        return self._containers

    def inspect(self, cid):
        return {"State": {"StartedAt": "2026-12-01T03:00:00.123Z"}}

    def info(self):
        return self._info

    def version(self):
        return self._version


def states(count):
    """Running, paused and exited containers interleaved (3:1:1), newest last."""
    return [("running", "running", "running", "paused", "exited")[i % 5] for i in range(count)]


def rendered(containers, kinds=("docker_ps",), **engine):
    return render_state(FakeEngine(containers, **engine), kinds, StartTimes())


def assert_consumers_read(docker_ps, containers):
    """Both consumers parse it; every entry they see carries what they read, as the engine says."""
    by_id = {c["Id"]: c for c in containers}
    seen = cx.xencenter_containers(docker_ps)
    for entry in seen:
        source = by_id[entry.id]
        assert entry.container == entry.id[:10] and entry.name == source["Names"][0][1:]
        assert entry.image == source["Image"] and entry.command == source["Command"]
        assert entry.created == str(source["Created"])
        assert entry.status == consumerxml.normalise_status(source["Status"])
        assert [p.private_port for p in entry.ports] == ["3000", "3000"]
    docker = cx.xo_vm_docker({"xscontainer-monitor": "True", "docker_ps": docker_ps})
    assert [c["entry"]["id"] for c in docker["containers"]] == [c.id for c in seen]
    return seen, docker["process"]


def test_a_thousand_containers_fit_in_one_request_running_ones_first_and_counted():
    containers = [compose_container(i, s) for i, s in enumerate(states(1000))]
    docker_ps = rendered(containers)["docker_ps"]
    assert request_bytes("docker_ps", docker_ps) < XAPI_LIMIT
    seen, root = assert_consumers_read(docker_ps, containers)
    assert 100 < len(seen) < 1000
    live = [c["Id"] for c in containers if c["State"] in ("running", "paused")]
    listed = set(c.id for c in seen)
    # Running (and paused) containers come first: none is left out while a stopped one is listed.
    assert listed <= set(live)
    # The count, where an administrator (or a script) looks, and the consumers ignore it.
    assert (root["total"], root["listed"]) == ("1000", str(len(seen)))
    assert int(root["abridged"]) == len(seen)  # no room for anything beyond the consumers' fields


def test_150_containers_are_all_listed_with_what_the_consumers_read():
    containers = [compose_container(i, s) for i, s in enumerate(states(150))]
    docker_ps = rendered(containers)["docker_ps"]
    assert request_bytes("docker_ps", docker_ps) < XAPI_LIMIT
    seen, root = assert_consumers_read(docker_ps, containers)
    assert sorted(c.id for c in seen) == sorted(c["Id"] for c in containers)
    assert (root["total"], root["listed"]) == ("150", "150")
    abridged = int(root["abridged"])
    assert 0 < abridged < 150
    detailed = [e for e in cx.entry_children(docker_ps) if "labels" in e]
    assert len(detailed) == 150 - abridged
    # The rest of the record goes to running containers first, and each entry is whole or abridged.
    running_ids = set(c["Id"] for c in containers if c["State"] != "exited")
    assert set(e["id"] for e in detailed) <= running_ids
    assert all("networksettings" in e and "mounts" in e and "started_at" in e for e in detailed)


def test_a_list_that_fits_is_written_whole_and_unmarked():
    containers = [compose_container(i, s) for i, s in enumerate(states(20))]
    docker_ps = rendered(containers)["docker_ps"]
    started = {c["Id"]: "2026-12-01T03:00:00.123Z" for c in containers if c["State"] != "exited"}
    assert docker_ps == consumerxml.render_docker_ps(containers, started)
    assert docker_ps.startswith('<?xml version="1.0" ?><docker_ps><item>')


def test_a_hostile_container_cannot_push_the_others_out():
    containers = [compose_container(i, "running") for i in range(3)]
    containers.append(dict(compose_container(3, "running"), Command="x" * (1024 * 1024)))
    containers.append(dict(compose_container(4, "running"), Labels={"l%d" % i: "<&>" * 50 for i in range(3000)}))
    docker_ps = rendered(containers)["docker_ps"]
    assert request_bytes("docker_ps", docker_ps) < XAPI_LIMIT
    seen, root = assert_consumers_read(docker_ps, containers)
    assert sorted(c.id for c in seen) == sorted(c["Id"] for c in containers if len(c["Command"]) < 1000)
    assert (root["total"], root["listed"]) == ("5", "4")


class CountedRecord(dict):
    """A container record that counts how often its fields are read whole (rendering reads them)."""

    readings = 0

    def items(self):
        CountedRecord.readings += 1
        return super().items()


def test_a_guest_listing_10000_containers_costs_what_fits_not_what_it_lists():
    # Rendering every entry of a hostile 10,000-container list cost 2.9 s of CPU per refresh for a
    # document that holds a few hundred of them (issue 13): what cannot be written is not rendered.
    containers = [CountedRecord(compose_container(i, s)) for i, s in enumerate(states(10000))]
    CountedRecord.readings = 0
    docker_ps = rendered(containers)["docker_ps"]
    assert request_bytes("docker_ps", docker_ps) < XAPI_LIMIT
    seen, root = assert_consumers_read(docker_ps, containers)
    assert root["total"] == "10000" and int(root["listed"]) == len(seen) > 100
    assert CountedRecord.readings <= len(seen) + 200


def test_docker_info_and_version_of_any_size_fit_and_keep_what_xencenter_reads():
    info = {"Driver": "overlay2", "Containers": 3, "NCPU": 4, "MemTotal": 2095882240, "Name": "vm",
            "Labels": ["label-%d=%s" % (i, "<>" * 40) for i in range(8000)], "Warnings": ["w" * 400000]}
    version = {"Version": "24.0.7", "ApiVersion": "1.43", "GitCommit": "311b9ff",
               "Components": [{"Name": "x" * 500000}]}
    values = rendered([], kinds=("docker_info", "docker_version", "docker_ps"), info=info, version=version)
    for key, value in values.items():
        assert request_bytes(key, value) < XAPI_LIMIT, key
    fields = cx.xencenter_docker_info(values["docker_info"])
    assert (fields["Driver"], fields["Containers"], fields["NCPU"], fields["Name"]) == ("overlay2", "3", "4", "vm")
    assert cx.xencenter_docker_version(values["docker_version"])["ApiVersion"] == "1.43"
    assert cx.xo_parse(values["docker_info"])["docker_info"]["Driver"] == "overlay2"


class RecordingMap:
    """A VM class whose calls are recorded; ``add`` refuses what xapi would refuse."""

    def __init__(self):
        self.calls = []
        self.config = {"docker_ps": "old"}

    def remove_from_other_config(self, ref, key):
        self.calls.append(("remove", key))
        self.config.pop(key, None)

    def add_to_other_config(self, ref, key, value):
        self.calls.append(("add", key))
        if request_bytes(key, value) > XAPI_LIMIT:
            raise xmlrpc.client.ProtocolError("xapi", 500, "Internal Server Error", {})
        if key in self.config:
            raise XenAPI.Failure(["MAP_DUPLICATE_KEY", "VM", "other_config", ref, key])
        self.config[key] = value


def test_a_value_xapi_would_refuse_is_never_sent_and_the_old_one_stays():
    api = RecordingMap()
    with pytest.raises(XSContainerError) as caught:
        set_map_key(api, "OpaqueRef:vm", "docker_ps", "<&>" * (100 * 1024))
    assert caught.value.code == "XAPI_REQUEST_TOO_LARGE"
    assert api.calls == [] and api.config == {"docker_ps": "old"}
    set_map_key(api, "OpaqueRef:vm", "docker_ps", "<&>" * (20 * 1024))
    assert api.config["docker_ps"] == "<&>" * (20 * 1024)
