"""Latency of GET /containers/json against one testbed VM, three ways:

(a) directly on the VM's Docker socket (its path on this machine), HTTP/1.1 keep-alive;
(b) through our warm SSH tunnel (persistent connection, reused stream-local channel);
(c) the original product's way: a fresh SSH connection per call, authenticating with a 4096-bit
    RSA key parsed from its file each time, then ``ncat -U /var/run/docker.sock`` and HTTP/1.0.

Prints one JSON object: median and p95 (ms) of each, and the ratios b/a and c/b.
Usage: bench/tunnel.py [--testbed DIR] [--calls N] [--original-calls N]
Without --testbed it brings up a one-VM testbed (no xapi) in a temporary directory and removes it.
"""

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from xscontainer.engine.http import HttpPool
from xscontainer.engine.probe import ping_engine
from xscontainer.hostkeys import MemoryHostKeyPin
from xscontainer.transport.ssh import SshTunnel
from xscontainer.transport.stream import SocketStream
from xscontainer.vmsettings import VmSettings

TARGET = "/v1.41/containers/json?all=1"


def percentiles(samples):
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 3), "p95_ms": round(p95 * 1000, 3),
            "calls": len(ordered)}


def timed(call, count, warmup=5):
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def rsa_key_file(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    path = os.path.join(directory, "id_rsa")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return path, public.decode("ascii") + " bench-original"


def original_call(address, user, key_path):
    """One API call as the original did it (ssh.py: SSHClient, RSAKey.from_private_key_file, ncat)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    key = paramiko.RSAKey.from_private_key_file(key_path)
    client.connect(address, username=user, pkey=key, look_for_keys=False, allow_agent=False, timeout=10)
    try:
        stdin, stdout, _ = client.exec_command("ncat -U /var/run/docker.sock")
        stdin.write("GET %s HTTP/1.0\r\n\r\n" % TARGET)
        stdin.flush()
        stdin.channel.shutdown_write()  # ncat leaves when its stdin ends and the engine has answered
        data = stdout.read()
    finally:
        client.close()
    if b" 200 " not in data.split(b"\r\n", 1)[0]:
        raise RuntimeError("original-style call failed: %r" % data[:200])
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--testbed", help="an existing testbed directory (else one is brought up)")
    parser.add_argument("--vm", default="vm1")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--original-calls", type=int, default=15)
    args = parser.parse_args(argv)

    from xscontainer.testbed.testbed import Testbed
    own = args.testbed is None
    directory = args.testbed or tempfile.mkdtemp(prefix="xsc-bench-")
    testbed = Testbed(directory)
    work = tempfile.mkdtemp(prefix="xsc-bench-keys-")
    try:
        info = testbed.up(vms=1, containers=4, xapi=False) if own else testbed.info()
        vm = [v for v in info["vms"] if v["name_label"] == args.vm][0]
        key_path = os.path.join(testbed.directory, "testbed_key")
        with open(key_path) as handle:
            private_pem = handle.read()
        pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(private_pem))
        rsa_path, rsa_public = rsa_key_file(work)
        ours_public = serialization.load_ssh_private_key(private_pem.encode(), None).public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")
        testbed.authorize_key(args.vm, ours_public + " xscontainer\n" + rsa_public)

        # (a) the socket itself
        def open_unix():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(vm["docker_socket"])
            return SocketStream(sock, "direct")
        direct = HttpPool(open_unix)
        a = timed(lambda: direct.request("GET", TARGET), args.calls)

        # (b) our warm tunnel
        settings = VmSettings("bench", "", [vm["ip"]], vm["ssh_user"], "ssh", None, {})
        pin = MemoryHostKeyPin("bench", vm["ssh_host_key"])  # the testbed made the key
        tunnel = SshTunnel("bench", lambda: settings, lambda: pkey, pin, ping_engine)
        tunneled = HttpPool(tunnel.open_stream)
        b = timed(lambda: tunneled.request("GET", TARGET), args.calls)
        assert tunnel.connects == 1

        # (c) the original's way
        c = timed(lambda: original_call(vm["ip"], vm["ssh_user"], rsa_path), args.original_calls, warmup=1)
        direct.close()
        tunneled.close()
        tunnel.close()
        result = {"a_direct_socket": percentiles(a), "b_warm_tunnel": percentiles(b),
                  "c_original_fresh_ssh_rsa4096_ncat": percentiles(c),
                  "tunnel_method": tunnel.method}
        result["ratio_b_over_a"] = round(result["b_warm_tunnel"]["median_ms"] / result["a_direct_socket"]["median_ms"], 2)
        result["ratio_c_over_b"] = round(result["c_original_fresh_ssh_rsa4096_ncat"]["median_ms"]
                                         / result["b_warm_tunnel"]["median_ms"], 1)
        print(json.dumps(result))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own:
            testbed.down()
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
