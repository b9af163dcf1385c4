"""``xscontainer-xapi-sim``: run a simulated pool in the foreground; print one JSON line when
ready; SIGTERM/SIGINT stop it cleanly with the database flushed."""

import argparse
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from typing import List, Optional

from xscontainer.sim import datamodel as dm
from xscontainer.sim import dom0 as sim_dom0
from xscontainer.sim.api import Api, SimConfig
from xscontainer.sim.db import CorruptDatabase, Database, Persister
from xscontainer.sim.rrddserver import start_hub
from xscontainer.sim.seed import host_summaries, seed, write_inventories
from xscontainer.sim.server import Servers

log = logging.getLogger("xscontainer.sim")

PROG = "xscontainer-xapi-sim"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="A simulated XenServer pool "
                                     "speaking the XenAPI wire protocol.")
    parser.add_argument("--dir", required=True, help="state directory (db, sockets, logs)")
    parser.add_argument("--hosts", type=int, default=1, help="hosts in a new pool (default 1)")
    parser.add_argument("--plugins", default=None,
                        help="host plugins directory (default: the project's plugins/)")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    args = parser.parse_args(argv)
    if args.hosts < 1:
        parser.error("--hosts must be at least 1")
    return args


def _fail(message: str, code: int) -> int:
    sys.stderr.write("%s: %s\n" % (PROG, message))
    sys.stderr.flush()
    return code


def short_dir(directory: str) -> str:
    """A short /tmp directory of our own for DIR (made on first use)."""
    # Derived from DIR, so a restarted simulator listens where its clients expect it, as xapi does.
    digest = hashlib.sha256(os.path.realpath(directory).encode("utf-8")).hexdigest()[:12]
    short = os.path.join("/tmp", "xsc-" + digest)  # TMPDIR may be long or contain "_"
    os.makedirs(short, mode=0o700, exist_ok=True)
    if os.stat(short).st_uid != os.getuid():
        raise OSError("%s belongs to another user" % short)
    return short


def socket_path(directory: str) -> str:
    """DIR/xapi, or a short /tmp path when DIR would break XenAPI's UDSTransport ('_')."""
    path = os.path.join(directory, "xapi")
    if "_" not in path and len(path.encode()) <= sim_dom0.MAX_SOCKET_PATH:
        return path
    return os.path.join(short_dir(directory), "xapi")


def dom0_base(directory: str) -> str:
    """Where the hosts' dom0 trees go: DIR/dom0, or the short /tmp directory when too long."""
    base = os.path.join(directory, "dom0")
    return base if sim_dom0.fits(base) else os.path.join(short_dir(directory), "dom0")


def _password(directory: str) -> str:
    path = os.path.join(directory, "password")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
        if value:
            return value
    value = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def _setup_logging(directory: str) -> None:
    handler = logging.FileHandler(os.path.join(directory, "sim.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s "
                                           "[%(threadName)s] %(message)s"))
    root = logging.getLogger("xscontainer")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    directory = os.path.abspath(args.dir)
    try:
        os.makedirs(os.path.join(directory, "vdis"), exist_ok=True)
    except OSError as exc:
        return _fail("cannot create %s: %s" % (directory, exc), 1)
    _setup_logging(directory)

    db = Database()
    db_path = os.path.join(directory, "db.json")
    if os.path.exists(db_path):
        try:
            with open(db_path, encoding="utf-8") as handle:
                db.load(handle.read())
            if not db.tables["pool"] or not db.tables["host"]:
                raise CorruptDatabase("no pool or no host")
        except (CorruptDatabase, OSError, UnicodeDecodeError) as exc:
            log.error("cannot load %s: %s", db_path, exc)
            return _fail("the database %s is corrupt or unreadable (%s); move it away to "
                         "start a fresh pool" % (db_path, exc), 2)
        log.info("database loaded from %s", db_path)
    else:
        with db.lock:
            seed(db, args.hosts, dm.now_string(time.time))
        log.info("new pool with %d host(s)", args.hosts)

    plugins = args.plugins
    if plugins is None and os.path.isdir(os.path.join(PROJECT_ROOT, "plugins")):
        plugins = os.path.join(PROJECT_ROOT, "plugins")
    plugins = os.path.abspath(plugins) if plugins else None
    try:
        inventories = write_inventories(db, directory)
        unix_path = socket_path(directory)
        base = dom0_base(directory)
        roots = sim_dom0.build_trees(base, directory, unix_path, inventories, plugins)
    except OSError as exc:
        return _fail(str(exc), 1)
    if os.path.exists(unix_path):
        os.unlink(unix_path)
    config = SimConfig(
        directory=directory, username="root", password=_password(directory),
        plugins_dir=plugins, unix_socket=unix_path,
        vdi_dir=os.path.join(directory, "vdis"), inventories=inventories, dom0_roots=roots)
    api = Api(db, config)
    persister = Persister(db, db_path)
    persister.start()
    persister.flush()
    try:
        servers = Servers(api, args.port, unix_path)
    except OSError as exc:
        persister.stop()
        return _fail("cannot listen: %s" % exc, 1)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    servers.start()
    rrdd_hub = start_hub(api, unix_path, directory)
    with db.lock:
        pool_uuid = db.tables["pool"][db.refs("pool")[0]]["uuid"]
        hosts = host_summaries(db, inventories)
    for host in hosts:  # each host's dom0 tree and xcp-rrdd socket (xscontainer.sim.rrddserver)
        host["dom0_root"] = roots[host["uuid"]]
        host["rrdd_socket"] = rrdd_hub.sockets[host["uuid"]]
    ready = {
        "xapi_url": "http://127.0.0.1:%d/" % servers.port, "unix_socket": unix_path,
        "username": config.username, "password": config.password, "pool_uuid": pool_uuid,
        "hosts": hosts, "dir": directory, "log": os.path.join(directory, "sim.log"),
        "plugins_dir": config.plugins_dir, "pid": os.getpid(),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    log.info("ready: %s (unix %s)", ready["xapi_url"], unix_path)
    while not stop.wait(0.5):
        pass

    log.info("stopping")
    with db.lock:
        db.closing = True
        db.changed.notify_all()
    servers.stop()
    rrdd_hub.stop()
    api.join_tasks(5.0)
    persister.stop()
    try:
        os.unlink(unix_path)
    except OSError:
        pass
    for made in {os.path.dirname(unix_path), os.path.dirname(base)} - {directory}:
        shutil.rmtree(made, ignore_errors=True)  # the short /tmp directory
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
