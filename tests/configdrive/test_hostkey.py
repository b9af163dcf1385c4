"""The SSH host key a config drive gives its VM, with literal inputs: where it goes in each format,
that the key pinned is the one the guest will serve, and when a drive may pin at all."""

import base64
import json
import shutil
import subprocess
import urllib.parse

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from xscontainer.configdrive import guestformats, render
from xscontainer.configdrive.operations import DRIVE_HOSTKEY_KEY, drive_may_pin, load_template
from xscontainer.hostkeys import fingerprint
from xscontainer.poolkeys import generate_keypair
from xscontainer.vmsettings import HOSTKEY_FINGERPRINT_KEY, HOSTKEY_KEY, HOSTKEY_VM_KEY

POOL = generate_keypair()
HOST = generate_keypair("root@vm")
HOST_KEY = guestformats.HostKey(HOST.private_pem, HOST.public_line)
VM_UUID = "6f2d0d6c-1d3e-4a59-9b0a-0c1d2e3f4a5b"
OTHER_UUID = "0a1b2c3d-0000-4000-8000-000000000000"
AUTHORIZING = "#cloud-config\nhostname: web\nssh_authorized_keys:\n  - %CONTAINERPUBKEY%\n"


def ctx(host_key=HOST_KEY):
    return render.RenderContext(VM_UUID, "web", POOL.public_line, None, host_key)


def public_blob_of_private(private_text):
    key = serialization.load_ssh_private_key(private_text.encode("ascii"), password=None)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode("ascii")
    return line.split()[1]


def files_by_path(entries):
    return {entry["path"]: entry for entry in entries}


def data_url_content(source):
    assert source.startswith("data:")
    head, _, body = source[len("data:"):].partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(body).decode("ascii")
    return urllib.parse.unquote(body)


def test_cloud_config_carries_the_key_for_cloud_init_and_for_coreos_cloudinit():
    rendered = render.render_user_data(AUTHORIZING, ctx())
    assert rendered.user_data.startswith("#cloud-config\n")
    data = yaml.safe_load(rendered.user_data)
    assert data["hostname"] == "web"
    assert data["ssh_keys"] == {"ed25519_private": HOST.private_pem, "ed25519_public": HOST.public_line}
    files = files_by_path(data["write_files"])
    assert files[guestformats.HOST_KEY_PATH]["content"] == HOST.private_pem
    assert files[guestformats.HOST_KEY_PATH]["permissions"] == "0600"
    assert files[guestformats.HOST_KEY_PATH + ".pub"]["content"] == HOST.public_line + "\n"
    assert files[guestformats.HOST_KEY_PATH + ".pub"]["permissions"] == "0644"
    # What dom0 pins is the public half of the private key the guest gets.
    assert rendered.host_key_pinned == HOST.public_line.split()[1]
    assert public_blob_of_private(data["ssh_keys"]["ed25519_private"]) == rendered.host_key_pinned
    assert guestformats.guest_host_key(rendered.user_data) == HOST.private_pem


def test_the_users_own_files_and_keys_are_kept_and_a_clashing_host_key_file_replaced():
    text = AUTHORIZING + (
        "write_files:\n"
        "  - path: /etc/motd\n    content: hi\n    permissions: 0644\n"
        "  - path: /etc/ssh/ssh_host_ed25519_key\n    content: not ours\n"
        "ssh_keys:\n  rsa_private: R\n  rsa_public: ssh-rsa AAAA r\n  ed25519_private: theirs\n")
    data = yaml.safe_load(render.render_user_data(text, ctx()).user_data)
    files = files_by_path(data["write_files"])
    assert sorted(files) == ["/etc/motd", guestformats.HOST_KEY_PATH, guestformats.HOST_KEY_PATH + ".pub"]
    assert files[guestformats.HOST_KEY_PATH]["content"] == HOST.private_pem
    # 0644 unquoted is the integer 420 in YAML 1.1: written back as the octal string it meant.
    assert files["/etc/motd"]["permissions"] == "0644" and files["/etc/motd"]["content"] == "hi"
    assert data["ssh_keys"]["rsa_private"] == "R"
    assert data["ssh_keys"]["ed25519_private"] == HOST.private_pem


@pytest.mark.parametrize("version,v2", [("3.3.0", False), ("3.0.0", False), ("2.3.0", True)])
def test_ignition_gets_the_key_files_merged(version, v2):
    config = {"ignition": {"version": version},
              "storage": {"files": [{"path": "/etc/hostname", "mode": 420,
                                     "contents": {"source": "data:,web"}}]}}
    rendered = render.render_user_data(json.dumps(config), ctx())
    data = json.loads(rendered.user_data)
    files = files_by_path(data["storage"]["files"])
    assert sorted(files) == ["/etc/hostname", guestformats.HOST_KEY_PATH, guestformats.HOST_KEY_PATH + ".pub"]
    private, public = files[guestformats.HOST_KEY_PATH], files[guestformats.HOST_KEY_PATH + ".pub"]
    assert private["mode"] == 0o600 and public["mode"] == 0o644
    assert data_url_content(private["contents"]["source"]) == HOST.private_pem
    assert data_url_content(public["contents"]["source"]) == HOST.public_line + "\n"
    if v2:
        assert private["filesystem"] == "root" and "overwrite" not in private
    else:
        assert private["overwrite"] is True and "filesystem" not in private
    assert rendered.host_key_pinned == public_blob_of_private(HOST.private_pem)
    assert guestformats.guest_host_key(rendered.user_data) == HOST.private_pem
    # The pool key is merged as before.
    assert POOL.public_line.split()[1] in data["passwd"]["users"][0]["sshAuthorizedKeys"][0]


def test_ignition_without_storage_gets_one():
    rendered = render.render_user_data('{"ignition": {"version": "3.3.0"}}', ctx())
    assert guestformats.HOST_KEY_PATH in files_by_path(json.loads(rendered.user_data)["storage"]["files"])


@pytest.mark.parametrize("storage", ['"x"', '{"files": 3}'])
def test_ignition_with_a_malformed_storage_is_invalid(storage):
    with pytest.raises(Exception) as info:
        render.render_user_data('{"ignition": {"version": "3.3.0"}, "storage": %s}' % storage, ctx())
    assert getattr(info.value, "code", None) == "INVALID_CONFIGURATION"


@pytest.mark.parametrize("text", [
    "#cloud-config\nhostname: web\n",  # does not authorize the pool key: dom0 will not connect
    "#cloud-config\nssh_authorized_keys:\n  # - %CONTAINERPUBKEY%\n  - ssh-ed25519 AAAAother me\n",
    "#!/bin/sh\necho hello\n",
])
def test_no_key_when_the_drive_does_not_authorize_the_pool_key(text):
    rendered = render.render_user_data(text, ctx())
    assert rendered.host_key_pinned is None
    assert "PRIVATE KEY" not in rendered.user_data
    assert guestformats.guest_host_key(rendered.user_data) is None


def test_no_key_when_none_is_given():
    rendered = render.render_user_data(AUTHORIZING, ctx(host_key=None))
    assert rendered.user_data == AUTHORIZING.replace("%CONTAINERPUBKEY%", " ".join(POOL.public_line.split()[:2]))
    assert rendered.host_key_pinned is None


def test_the_template_stored_on_the_drive_never_holds_the_private_key():
    rendered = render.render_user_data(AUTHORIZING, ctx())
    files = render.drive_files(AUTHORIZING, ctx(), rendered)
    assert files[render.USER_DATA_TEMPLATE] == AUTHORIZING.encode()
    assert b"PRIVATE KEY" in files[render.USER_DATA]
    assert all(b"PRIVATE KEY" not in content for path, content in files.items() if path != render.USER_DATA)


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init is not installed")
def test_cloud_init_schema_accepts_the_default_with_a_host_key(tmp_path):
    text, source = load_template(override_path=None)
    rendered = render.render_user_data(render.default_template_text(text, True, source),
                                       render.RenderContext(VM_UUID, "web", POOL.public_line, "1", HOST_KEY))
    assert rendered.host_key_pinned
    path = tmp_path / "user_data"
    path.write_text(rendered.user_data)
    proc = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = yaml.safe_load(rendered.user_data)
    assert [u["name"] for u in data["coreos"]["units"]][:2] == ["docker.service", "00-eth1.network"]


def pin(key_b64, vm=VM_UUID, by_drive=False):
    config = {HOSTKEY_KEY: key_b64, HOSTKEY_VM_KEY: vm}
    if by_drive:
        config[DRIVE_HOSTKEY_KEY] = fingerprint(key_b64)
    return config


BLOB = HOST.public_line.split()[1]


@pytest.mark.parametrize("other_config,may", [
    ({}, True),                                               # a new VM: nothing vouches for it
    (pin(BLOB, by_drive=True), True),                         # the previous drive's key
    (pin(BLOB, vm=OTHER_UUID), True),                         # a clone's copy vouches for nothing
    (pin(BLOB, vm=OTHER_UUID, by_drive=True), True),
    (pin(BLOB), False),                                       # verified by an administrator
    ({HOSTKEY_KEY: BLOB}, False),                             # the original's pin, kept on upgrade
    ({HOSTKEY_KEY: BLOB, DRIVE_HOSTKEY_KEY: fingerprint(BLOB)}, False),  # unbound: not ours
    (dict(pin(BLOB), **{DRIVE_HOSTKEY_KEY: fingerprint(POOL.public_line.split()[1])}), False),
    ({HOSTKEY_VM_KEY: VM_UUID, HOSTKEY_FINGERPRINT_KEY: fingerprint(BLOB)}, False),  # registered
])
def test_a_drive_pins_only_where_no_administrator_vouched(other_config, may):
    assert drive_may_pin(VM_UUID, other_config) is may
