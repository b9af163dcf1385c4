"""CPU cost of parsing an ``event.from`` reply whose VM records carry the monitor's keys, with
xmlrpc.client's parser (the baseline, measured in the same run) and with the one the monitor's
local transport uses (xscontainer.xapi.xmlrpcparse).

Each record is the simulator's VM record (89 fields, xapi's) whose other_config holds a
docker_ps of --containers containers, a docker_info and a docker_version as the monitor renders
them: the shape every write of the monitor comes back in.

Prints one JSON object: ms of CPU per record (``_common.best_cpu``: best of --repeat) for each
parser, and their ratio.

Usage: bench/xapi_parse.py [--records N] [--containers N] [--repeat N]
"""

import argparse
import os
import sys
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xscontainer.consumerxml.documents import render_docker_info, render_docker_version  # noqa: E402
from xscontainer.consumerxml.ps import render_docker_ps  # noqa: E402
from xscontainer.sim.datamodel import default_record, encode_record  # noqa: E402
from xscontainer.xapi.xmlrpcparse import tree_parser  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

INFO = dict([("ID", "7TRN:IPZB:QYBB:VPBQ:UWLY:TCZG:SCXA:UGZG:6TPY:3ASK:2IUN:MB6L"), ("Containers", 3),
             ("ContainersRunning", 2), ("ContainersPaused", 0), ("ContainersStopped", 1), ("Images", 5),
             ("Driver", "overlay2"), ("DriverStatus", [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]]),
             ("Plugins", {"Volume": ["local"], "Network": ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"],
                          "Log": ["awslogs", "fluentd", "gcplogs", "gelf", "journald", "json-file", "local"]}),
             ("MemoryLimit", True), ("SwapLimit", True), ("CpuCfsPeriod", True), ("CpuCfsQuota", True),
             ("KernelVersion", "6.1.0-28-amd64"), ("OperatingSystem", "Debian GNU/Linux 12 (bookworm)"),
             ("OSType", "linux"), ("Architecture", "x86_64"), ("NCPU", 2), ("MemTotal", 25270000000),
             ("DockerRootDir", "/var/lib/docker"), ("Name", "vm1"), ("Labels", []), ("ServerVersion", "20.10.24"),
             ("Runtimes", {"runc": {"path": "runc"}}), ("DefaultRuntime", "runc"), ("LiveRestoreEnabled", True),
             ("Isolation", ""), ("InitBinary", "docker-init"), ("SecurityOptions", ["name=seccomp,profile=default"])])
VERSION = {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "GitCommit": "5d6db84",
           "GoVersion": "go1.19.8", "Os": "linux", "Arch": "amd64", "KernelVersion": "6.1.0-28-amd64",
           "BuildTime": "2023-05-18T16:30:39.000000000+00:00",
           "Components": [{"Name": "Engine", "Version": "20.10.24+dfsg1"}]}


def container(index):
    return {"Id": "%064x" % index, "Names": ["/web%d" % index], "Image": "xscontainer/busybox:latest",
            "ImageID": "sha256:%064x" % (index + 7), "Command": "httpd -f -p 80", "Created": 1764700000,
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080 + index, "Type": "tcp"}],
            "Labels": {"com.example.role": "web"}, "State": "running", "Status": "Up 2 hours",
            "HostConfig": {"NetworkMode": "default"},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.%d" % (index + 2)}}},
            "Mounts": []}


def reply(records, containers):
    record = encode_record("VM", default_record("VM"))
    record["other_config"] = {
        "xscontainer-monitor": "True",
        "docker_ps": render_docker_ps([container(index) for index in range(containers)]),
        "docker_info": render_docker_info(INFO),
        "docker_version": render_docker_version(VERSION),
    }
    events = [{"class": "vm", "operation": "mod", "ref": "OpaqueRef:%036d" % index, "snapshot": record,
               "id": str(index), "timestamp": "20261202T18:00:00Z"} for index in range(records)]
    value = {"Status": "Success", "Value": {"events": events, "token": "1,2", "valid_ref_counts": {}}}
    return xmlrpc.client.dumps((value,), methodresponse=True).encode("utf-8")


def with_getparser(getparser):
    def parse(body):
        parser, unmarshaller = getparser()
        for start in range(0, len(body), 1024):  # xmlrpc.client's Transport reads 1 KiB at a time
            parser.feed(body[start:start + 1024])
        parser.close()
        return unmarshaller.close()
    return parse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--containers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    body = reply(args.records, args.containers)
    stock, ours = with_getparser(xmlrpc.client.getparser), with_getparser(tree_parser)
    if stock(body) != ours(body):
        raise SystemExit("bench: the two parsers disagree")
    stock_s = _common.best_cpu(args.repeat, stock, body)
    ours_s = _common.best_cpu(args.repeat, ours, body)
    _common.emit({
        "bench": "xapi_parse", "python": "%d.%d.%d" % sys.version_info[:3], "records": args.records,
        "containers": args.containers, "reply_bytes": len(body),
        "xmlrpc_client_ms_per_record": round(1000.0 * stock_s / args.records, 4),
        "xmlrpcparse_ms_per_record": round(1000.0 * ours_s / args.records, 4),
        "ratio": round(ours_s / stock_s, 3),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
