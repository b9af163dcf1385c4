"""pool_update.introduce in the simulator: update ISOs uploaded as VDIs, signatures checked against
the simulator's keyring (DIR/gpg) the way xapi's gpg.ml checks them, xapi's errors word for word."""

import io
import os
import shutil
import subprocess
import sys

import pycdlib
import pytest
import XenAPI

from xscontainer.configdrive import transfer
from xscontainer.packaging import metadata as md
from xscontainer.sim.failures import XapiFailure
from xscontainer.sim.pool_update import parse_gpg_status, parse_update_info

UPDATE_XML = md.update_xml(md.UPDATE_UUID, "xscontainer", "11.0.0", "XenServer Container Management", 4096)
REPOMD = b'<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo"/>\n'


def gpg(home, *args, **kwargs):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--no-tty"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, **kwargs).stdout


class Key(object):
    """A throwaway RSA signing key in its own gpg home."""

    def __init__(self, home, uid):
        os.makedirs(home, mode=0o700)
        self.home = home
        gpg(home, "--passphrase", "", "--quick-gen-key", uid, "rsa2048", "sign", "never")
        colons = gpg(home, "--with-colons", "--list-secret-keys").decode()
        self.fingerprint = [l.split(":")[9] for l in colons.splitlines() if l.startswith("fpr:")][0]

    def sign(self, data):
        return gpg(self.home, "--armor", "--detach-sign", input=data)

    def public(self):
        return gpg(self.home, "--armor", "--export", self.fingerprint)


def kill_agents(home):
    subprocess.call(["gpgconf", "--homedir", home, "--kill", "all"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    if shutil.which("gpg") is None:
        pytest.skip("gpg missing (Debian package gnupg; ./dev.sh setup installs it)")
    base = tmp_path_factory.mktemp("keys")
    made = [Key(str(base / "signer"), "signer <signer@example.invalid>"),
            Key(str(base / "stranger"), "stranger <stranger@example.invalid>")]
    yield made
    for key in made:
        kill_agents(key.home)


@pytest.fixture(scope="module")
def keyring(sim, keys):
    """The simulator's keyring holding the signer's key, ultimately trusted (as a host's
    /opt/xensource/gpg holds its vendor's key)."""
    home = os.path.join(sim.directory, "gpg")
    os.makedirs(home, mode=0o700, exist_ok=True)
    gpg(home, "--import", input=keys[0].public())
    gpg(home, "--import-ownertrust", input=("%s:6:\n" % keys[0].fingerprint).encode())
    yield home
    kill_agents(home)


def make_iso(files):
    """An ISO 9660 image with Rock Ridge and Joliet names, as xorriso -r -J writes them."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, rock_ridge="1.09", joliet=3)
    dirs = sorted({os.path.dirname(name) for name in files if os.path.dirname(name)})
    for index, d in enumerate(dirs):
        iso.add_directory("/D%d" % index, rr_name=d, joliet_path="/" + d)
    for index, (name, data) in enumerate(sorted(files.items())):
        parent = os.path.dirname(name)
        iso_dir = "/D%d" % dirs.index(parent) if parent else ""
        iso.add_fp(io.BytesIO(data), len(data), "%s/F%d.;1" % (iso_dir, index),
                   rr_name=os.path.basename(name), joliet_path="/" + name)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def signed_files(key, update_xml=UPDATE_XML, repomd=REPOMD):
    return {"update.xml": update_xml, "update.xml.asc": key.sign(update_xml),
            "repodata/repomd.xml": repomd, "repodata/repomd.xml.asc": key.sign(repomd)}


def upload(sim, session, data):
    """What ``xe update-upload`` does before introduce: a new VDI holding the ISO's bytes."""
    api = session.xenapi
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    vdi = api.VDI.create({"SR": sr, "virtual_size": str(len(data)), "type": "user",
                          "sharable": False, "read_only": False, "other_config": {},
                          "name_label": "update upload"})
    transfer.import_raw(session, api.VDI.get_uuid(vdi), data, socket_path=sim.socket_path)
    return vdi


def introduce_error(sim, session, data):
    with pytest.raises(XenAPI.Failure) as info:
        session.xenapi.pool_update.introduce(upload(sim, session, data))
    return info.value.details


def test_an_unsigned_update_is_refused_with_xapis_error(sim, session, keyring):
    iso = make_iso({"update.xml": UPDATE_XML, "repodata/repomd.xml": REPOMD})
    assert introduce_error(sim, session, iso) == ["INVALID_UPDATE", "Invalid signature"]
    assert session.xenapi.pool_update.get_all() == []


def test_a_key_outside_the_keyring_and_a_file_changed_after_signing_are_refused(sim, session, keys, keyring):
    assert introduce_error(sim, session, make_iso(signed_files(keys[1]))) == [
        "INVALID_UPDATE", "Invalid signature"]
    files = signed_files(keys[0])
    files["repodata/repomd.xml"] = REPOMD.replace(b"/>", b"></repomd>")
    assert introduce_error(sim, session, make_iso(files)) == ["INVALID_UPDATE", "Invalid signature"]
    assert session.xenapi.pool_update.get_all() == []


def test_a_key_in_the_keyring_needs_ultimate_trust(make_sim, keys):
    other = make_sim()
    s = other.session()
    home = os.path.join(other.directory, "gpg")
    os.makedirs(home, mode=0o700)
    try:
        gpg(home, "--import", input=keys[0].public())  # known, but not ultimately trusted
        assert introduce_error(other, s, make_iso(signed_files(keys[0]))) == [
            "INVALID_UPDATE", "Invalid signature"]
    finally:
        kill_agents(home)


def test_a_signed_update_is_introduced_with_its_name_version_and_size(sim, session, keys, keyring):
    api = session.xenapi
    vdi = upload(sim, session, make_iso(signed_files(keys[0])))
    ref = api.pool_update.introduce(vdi)
    record = api.pool_update.get_record(ref)
    assert record == {
        "uuid": md.UPDATE_UUID, "name_label": "xscontainer",
        "name_description": "XenServer Container Management", "version": "11.0.0",
        "installation_size": "4096", "key": "", "after_apply_guidance": [], "vdi": vdi,
        "hosts": [], "other_config": {}, "enforce_homogeneity": False}
    assert api.pool_update.get_by_uuid(md.UPDATE_UUID) == ref
    # Introducing the same VDI again is a no-op; the same update from another upload is refused.
    assert api.pool_update.introduce(vdi) == ref
    assert introduce_error(sim, session, make_iso(signed_files(keys[0]))) == [
        "UPDATE_ALREADY_EXISTS", md.UPDATE_UUID]


def test_package_errors_come_before_signatures(sim, session, keyring):
    assert introduce_error(sim, session, b"not an iso" * 300) == [
        "INVALID_UPDATE", "Please upload a valid package."]
    assert introduce_error(sim, session, make_iso({"repodata/repomd.xml": REPOMD})) == [
        "INVALID_UPDATE", "missing update document (update.xml) in the package."]
    unversioned = UPDATE_XML.replace(b' version="11.0.0"', b"")
    assert introduce_error(sim, session, make_iso({"update.xml": unversioned})) == [
        "INVALID_UPDATE", "missing <version> in update.xml"]


def _failure(call):
    with pytest.raises(XapiFailure) as info:
        call()
    return info.value.details


def test_parse_update_info_as_xapi():
    info = parse_update_info(b'<update uuid="u" name-label="n" version="1" key="/etc/pki/k" '
                             b'installation-size="12" after-apply-guidance="restartHost,restartXAPI" '
                             b'enforce-homogeneity="TRUE"><name-description>d</name-description></update>')
    assert (info.key, info.installation_size, info.after_apply_guidance, info.enforce_homogeneity) == (
        "k", 12, ["restartHost", "restartXAPI"], True)
    odd = parse_update_info(b'<update uuid="u" name-label="n" version="1" installation-size="x" '
                            b'after-apply-guidance="restartHost,reboot"><name-description>d'
                            b'</name-description></update>')
    assert (odd.installation_size, odd.after_apply_guidance, odd.key) == (0, [], "")
    assert _failure(lambda: parse_update_info(b"<patch/>")) == ["INVALID_UPDATE", "missing <update> in update.xml"]
    assert _failure(lambda: parse_update_info(b'<update uuid="u" version="1"/>')) == [
        "INVALID_UPDATE", "missing <name-label> in update.xml"]
    assert _failure(lambda: parse_update_info(
        b'<update uuid="u" name-label="n" version="1"><name-description/></update>')) == [
        "INVALID_UPDATE", "missing <name-description> in update.xml"]
    assert _failure(lambda: parse_update_info(b'<update uuid="u" name-label="n" version="1"/>')) == [
        "INTERNAL_ERROR", "Not_found"]


def test_parse_gpg_status_wants_goodsig_and_ultimate_trust():
    good = ("[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 8332EF02493DCF69 t <t@example.invalid>\n"
            "[GNUPG:] VALIDSIG 89446C443D7A3DF6E45B74E78332EF02493DCF69 2026-12-02 1796195523 0 4 0 1 8 00 "
            "89446C443D7A3DF6E45B74E78332EF02493DCF69\n[GNUPG:] TRUST_ULTIMATE 0 pgp\n")
    assert parse_gpg_status(good) == "89446C443D7A3DF6E45B74E78332EF02493DCF69"
    from xscontainer.sim.pool_update import InvalidSignature
    for status in (good.replace("TRUST_ULTIMATE", "TRUST_UNDEFINED"),
                   good.replace("GOODSIG", "BADSIG"), ""):
        with pytest.raises(InvalidSignature):
            parse_gpg_status(status)


def xe(sim, *args):
    env = dict(os.environ, XSCONTAINER_XAPI_SOCKET=sim.socket_path)
    proc = subprocess.run([sys.executable, "-m", "xscontainer.sim.xe"] + list(args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_xe_update_upload(sim, session, keys, keyring, tmp_path):
    api = session.xenapi
    uuid = "6f0b6a38-3f55-4c1e-9d5e-0d1f2b7f1a11"
    update_xml = md.update_xml(uuid, "xscontainer", "11.0.1", "XenServer Container Management", 77)
    vdis = sorted(api.VDI.get_all())
    unsigned = tmp_path / "unsigned.iso"
    unsigned.write_bytes(make_iso({"update.xml": update_xml, "repodata/repomd.xml": REPOMD}))
    assert xe(sim, "update-upload", "file-name=%s" % unsigned) == (
        1, "", "The uploaded update package is invalid.\ninfo: Invalid signature\n")
    assert sorted(api.VDI.get_all()) == vdis  # the upload's VDI is destroyed again
    signed = tmp_path / "signed.iso"
    signed.write_bytes(make_iso(signed_files(keys[0], update_xml=update_xml)))
    assert xe(sim, "update-upload", "file-name=%s" % signed) == (0, uuid + "\n", "")
    record = api.pool_update.get_record(api.pool_update.get_by_uuid(uuid))
    assert (record["name_label"], record["version"], record["installation_size"]) == ("xscontainer", "11.0.1", "77")
    assert xe(sim, "update-upload", "file-name=%s" % signed) == (
        1, "", "The uploaded update already exists\nuuid: %s\n" % uuid)
    assert xe(sim, "update-upload", "file-name=%s" % (tmp_path / "absent.iso")) == (
        1, "", "Operation failed. Error: file '%s' does not exist\n" % (tmp_path / "absent.iso"))
