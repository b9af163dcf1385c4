"""Restart with refs and uuids unchanged; corrupt database gives a clear error and exit 2."""

import json
import os
import subprocess
import sys

import pytest
import XenAPI

from simharness import ROOT, Sim


def test_restart_keeps_refs_and_uuids(tmp_path):
    directory = str(tmp_path / "state")
    first = Sim(directory)
    s = first.session()
    vm = s.xenapi.VM.create({"name_label": "survivor"})
    s.xenapi.VM.add_to_other_config(vm, "xscontainer-monitor", "True")
    msg = s.xenapi.message.create("M", "3", "VM", s.xenapi.VM.get_uuid(vm), "b")
    before = s.xenapi.VM.get_all_records()
    token = s.xenapi.event_from(["vm"], "", 0.0)["token"]
    old_handle = s.handle
    assert first.stop() == 0

    second = Sim(directory)
    try:
        assert second.info["pool_uuid"] == first.info["pool_uuid"]
        assert second.info["password"] == first.info["password"]
        assert second.info["hosts"] == first.info["hosts"]
        fresh = second.session()
        assert fresh.xenapi.VM.get_all_records() == before
        assert fresh.xenapi.message.get_record(msg)["name"] == "M"
        # Sessions do not survive a restart, as in xapi.
        stale = XenAPI.Session(second.url)
        out = getattr(stale, "VM.get_all")(old_handle)
        assert out["ErrorDescription"] == ["SESSION_INVALID", old_handle]
        # Old tokens stay meaningful.
        fresh.xenapi.VM.set_name_label(vm, "renamed")
        result = fresh.xenapi.event_from(["vm"], token, 5.0)
        assert [(e["operation"], e["ref"]) for e in result["events"]] == [("mod", vm)]
    finally:
        assert second.stop() == 0


@pytest.mark.parametrize("content", ["{not json", '{"format": 99}', ""])
def test_corrupt_database_is_a_clear_error(tmp_path, content):
    directory = tmp_path / "state"
    directory.mkdir()
    (directory / "db.json").write_text(content)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "xscontainer.sim.cli", "--dir",
                           str(directory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == b""
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "corrupt" in lines[0] and "Traceback" not in lines[0]


def test_long_or_underscored_directory_gets_a_short_socket(tmp_path):
    directory = str(tmp_path / ("with_underscore_" + "x" * 80))
    sim = Sim(directory)
    try:
        sock = sim.info["unix_socket"]
        assert "_" not in sock and len(sock) <= 107
        assert sim.unix_session().xenapi.pool.get_all()
    finally:
        assert sim.stop() == 0
    assert not os.path.exists(sock)
    assert not os.path.exists(os.path.dirname(sock))


def test_a_large_database_is_dumped_less_often(tmp_path):
    """The dump holds the database lock: however long it takes (a thousand VMs' docker_*
    keys), persistence may take only a small share of the lock, or every xapi call waits."""
    from xscontainer.sim.db import Database, Persister
    ticks = iter([0.0, 0.001, 10.0, 12.0])  # a quick dump, then one holding the lock for 2 s
    persister = Persister(Database(), str(tmp_path / "db.json"), delay=0.05, lock_share=0.05,
                          clock=lambda: next(ticks))
    persister.flush()
    assert persister.next_wait() == 0.05
    persister.flush()
    assert persister.next_wait() == pytest.approx(40.0)
    assert os.path.exists(str(tmp_path / "db.json"))


def test_a_dump_after_changes_holds_every_change(tmp_path):
    """Rows are encoded once per change (see Database.dump): a dump after any mix of creates,
    changes and destroys holds exactly the live state, and loads back to it."""
    from xscontainer.sim.db import Database
    db = Database()
    with db.lock:
        vms = [db.create("VM", {"name_label": "vm%d" % index, "other_config": {}}) for index in range(20)]
        first = db.dump()
        db.set("VM", vms[0], "name_label", "renamed")
        db.get("VM", vms[1])["other_config"]["docker_ps"] = "<docker_ps/>"
        db.touch("VM", vms[1])
        db.destroy("VM", vms[2])
        added = db.create("VM", {"name_label": "late"})
        second = db.dump()
        live = {"tables": {t: db.tables[t] for t in ("VM", "host")},
                "stamps": {t: db.stamps[t] for t in ("VM", "host")},
                "tombs": {t: db.tombs[t] for t in ("VM", "host")}}
    assert json.loads(first)["tables"]["VM"][vms[0]]["name_label"] == "vm0"
    data = json.loads(second)
    for part in ("tables", "stamps", "tombs"):
        for table in ("VM", "host"):
            assert data[part][table] == json.loads(json.dumps(live[part][table]))
    assert "task" not in data["tables"] and "session" not in data["tables"]
    assert data["generation"] == db.generation
    reloaded = Database()
    reloaded.load(second)
    assert reloaded.get("VM", added)["name_label"] == "late"
    assert reloaded.get("VM", vms[1])["other_config"] == {"docker_ps": "<docker_ps/>"}
    assert not reloaded.exists("VM", vms[2])
    assert reloaded.dump() == second
