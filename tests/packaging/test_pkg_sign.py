"""``iso/build --sign-key``: the signatures xapi verifies before it accepts an update, checked
the way xapi's gpg.ml checks them, and a signed repository dnf installs from with repo_gpgcheck."""

import glob
import os
import sys

from pkgharness import ThrowawayKey, dnf_installed, dnf_root, extract_iso, repo_conf, run


def xapi_verdict(home, path):
    """Xapi_pool_update.verify on one file: ``gpg --homedir H --no-default-keyring --keyring
    H/pubring.kbx --status-fd N --verify FILE.asc FILE``; accepted only with GOODSIG and
    TRUST_ULTIMATE, and the VALIDSIG fingerprint is what it logs. Returns that fingerprint or None."""
    proc = run(["gpg", "--homedir", home, "--no-default-keyring", "--keyring", os.path.join(home, "pubring.kbx"),
                "--status-fd", "1", "--verify", path + ".asc", path], check=False)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not (any(l.startswith("[GNUPG:] GOODSIG") for l in lines)
                                    and any(l.startswith("[GNUPG:] TRUST_ULTIMATE") for l in lines)):
        return None
    valid = [l.split() for l in lines if l.startswith("[GNUPG:] VALIDSIG")]
    return valid[0][2] if valid else None


def test_signed_update_iso_carries_the_signatures_xapi_verifies(built_signed, signing_key, tmp_path):
    tree = extract_iso(built_signed.path("iso"), str(tmp_path / "iso"))
    assert built_signed.manifest["signed_by"] == signing_key.fingerprint
    for name in ("update.xml", "repodata/repomd.xml"):
        with open(os.path.join(tree, name + ".asc")) as handle:
            assert handle.read().startswith("-----BEGIN PGP SIGNATURE-----\n")
        assert xapi_verdict(signing_key.home, os.path.join(tree, name)) == signing_key.fingerprint


def test_xapi_would_refuse_a_key_it_does_not_ultimately_trust(built_signed, signing_key, tmp_path):
    tree = extract_iso(built_signed.path("iso"), str(tmp_path / "iso"))
    imported = ThrowawayKey(str(tmp_path / "host-gnupg"), uid="another key <other@example.invalid>")
    try:
        imported.gpg("--import", signing_key.export(str(tmp_path / "key.asc")))
        # In the keyring, a good signature, but not ultimately trusted: gpg.ml says no.
        assert xapi_verdict(imported.home, os.path.join(tree, "update.xml")) is None
        imported.gpg("--import-ownertrust", input="%s:6:\n" % signing_key.fingerprint)
        assert xapi_verdict(imported.home, os.path.join(tree, "update.xml")) == signing_key.fingerprint
    finally:
        imported.close()
    with open(os.path.join(tree, "update.xml"), "a") as handle:
        handle.write("<!-- changed after signing -->\n")
    assert xapi_verdict(signing_key.home, os.path.join(tree, "update.xml")) is None


def test_signed_repository_installs_with_repo_gpgcheck(built_signed, signing_key, dom0_base_repo, tmp_path):
    repo = built_signed.path("repo")
    key = os.path.join(repo, "RPM-GPG-KEY-xscontainer")
    assert sorted(os.listdir(os.path.join(repo, "repodata")))[-2:] == ["repomd.xml", "repomd.xml.asc"]
    assert xapi_verdict(signing_key.home, os.path.join(repo, "repodata", "repomd.xml")) == signing_key.fingerprint
    root = str(tmp_path / "root")
    try:
        dnf_root(root, repo_conf(dom0_base_repo, repo, "repo_gpgcheck=1\ngpgkey=file://%s\n" % key),
                 "install", "xscontainer")
        assert "xscontainer-%s-1" % built_signed.manifest["version"] in dnf_installed(root)
    finally:
        # dnf checks repomd.xml.asc with a keyring of its own in the root's cache, whose gpg-agent
        # would outlive the test.
        for home in glob.glob(os.path.join(root, "var/cache/dnf/*/pubring")):
            run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)


def test_an_unknown_sign_key_fails_before_building(snapshot, signing_key, tmp_path):
    out = str(tmp_path / "out")
    proc = run([sys.executable, os.path.join(snapshot, "iso", "build"), out, "--sign-key",
                "nobody@example.invalid", "--gnupg-home", signing_key.home], check=False)
    assert proc.returncode == 1
    assert "SIGN_KEY_MISSING" in proc.stderr and "nobody@example.invalid" in proc.stderr
    assert not os.path.exists(out)  # refused before anything was built


def test_the_simulator_refuses_the_unsigned_iso_and_accepts_the_signed_one(built, built_signed, signing_key,
                                                                            tmp_path):
    from xscontainer.sim.process import SimulatorProcess
    sim = SimulatorProcess(str(tmp_path / "sim"))
    sim.start(60.0)
    home = os.path.join(sim.directory, "gpg")  # the simulator's /opt/xensource/gpg
    os.makedirs(home, mode=0o700)
    try:
        run(["gpg", "--homedir", home, "--batch", "--import", signing_key.export(str(tmp_path / "key.asc"))])
        run(["gpg", "--homedir", home, "--batch", "--import-ownertrust"],
            input="%s:6:\n" % signing_key.fingerprint)
        env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=sim.socket_path)

        def upload(iso):
            return run([sys.executable, "-m", "xscontainer.sim.xe", "update-upload", "file-name=" + iso],
                       check=False, env=env)
        refused = upload(built.path("iso"))
        assert (refused.returncode, refused.stderr) == (
            1, "The uploaded update package is invalid.\ninfo: Invalid signature\n")
        accepted = upload(built_signed.path("iso"))
        assert (accepted.returncode, accepted.stdout) == (0, built_signed.manifest["update_uuid"] + "\n")
        session = sim.local_session()
        try:
            record = session.xenapi.pool_update.get_record(
                session.xenapi.pool_update.get_by_uuid(built_signed.manifest["update_uuid"]))
        finally:
            session.xenapi.session.logout()
        size = run(["rpm", "-qp", "--qf", "%{SIZE}", built_signed.path("rpm")]).stdout
        assert (record["name_label"], record["name_description"], record["version"],
                record["installation_size"]) == ("xscontainer", "XenServer Container Management",
                                                 built_signed.manifest["version"], size)
    finally:
        sim.stop()
        run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
