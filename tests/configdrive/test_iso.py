"""Config drive images, checked with tools that are not ours: blkid, xorriso, cloud-init."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from xscontainer.configdrive import iso, render
from xscontainer.configdrive.operations import load_template
from xscontainer.errors import ConfigDriveError

ED_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl xscontainer"
VM_UUID = "6f2d0d6c-1d3e-4a59-9b0a-0c1d2e3f4a5b"
CONTEXT = render.RenderContext(VM_UUID, "Flatcar One", ED_LINE, None)
AGENT = {"xe-daemon": b"#!/bin/sh\necho daemon\n", "xe-linux-distribution": b"#!/bin/sh\n",
         "xe-linux-distribution.service": b"[Unit]\n", "versions.deb": b"1.0\n"}


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed" % tool)


def _run(args):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def default_template():
    text, source = load_template(override_path=None)
    return render.default_template_text(text, False, source)


@pytest.fixture(scope="module")
def drive(tmp_path_factory, default_template):
    rendered = render.render_user_data(default_template, CONTEXT)
    files = render.drive_files(default_template, CONTEXT, rendered, AGENT)
    data = iso.build_iso(files)
    path = tmp_path_factory.mktemp("drive") / "config-drive.iso"
    path.write_bytes(data)
    return str(path), data, files


def test_blkid_sees_an_iso9660_labelled_config_2(drive):
    _need("blkid")
    code, out, err = _run(["blkid", "-p", "-o", "export", drive[0]])
    assert code == 0, err
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert fields["TYPE"] == "iso9660"
    assert fields["LABEL"] == "config-2"


def test_xorriso_lists_the_openstack_and_agent_files(drive):
    _need("xorriso")
    code, out, err = _run(["xorriso", "-indev", drive[0], "-find", "/", "-type", "f"])
    assert code == 0, err
    listed = sorted(line.strip().strip("'") for line in out.splitlines() if line.startswith("'"))
    assert listed == sorted("/" + path for path in drive[2])
    assert "/openstack/latest/user_data.template" in listed


def test_xorriso_extracts_identical_content_and_joliet_names(drive, tmp_path):
    _need("osirrox")
    target = tmp_path / "out"
    code, _, err = _run(["osirrox", "-indev", drive[0], "-extract", "/", str(target)])
    assert code == 0, err
    for path, content in drive[2].items():
        assert (target / path).read_bytes() == content
    assert os.access(str(target / "agent" / "xe-daemon"), os.X_OK)
    # Joliet names, for readers without Rock Ridge
    code, out, err = _run(["xorriso", "-rockridge", "off", "-indev", drive[0],
                           "-find", "/openstack/latest", "-type", "f"])
    assert code == 0, err
    assert "'/openstack/latest/meta_data.json'" in out


def test_pycdlib_reads_back_and_meta_data_is_complete(drive):
    with iso.IsoReader(drive[1]) as reader:
        assert reader.volume_label() == "config-2"
        assert sorted(reader.list_dir("openstack/latest")) == ["meta_data.json", "user_data",
                                                                "user_data.template"]
        meta = json.loads(reader.read(render.META_DATA).decode())
    assert meta["uuid"] == VM_UUID
    assert meta["hostname"] == "flatcarone"
    assert ED_LINE.split()[1] in meta["public_keys"]["xscontainer"]


def test_cloud_init_schema_accepts_the_rendered_default(drive, tmp_path):
    _need("cloud-init")
    user_data = tmp_path / "user_data"
    user_data.write_bytes(iso.read_drive_file(drive[1], render.USER_DATA))
    code, out, err = _run(["cloud-init", "schema", "--config-file", str(user_data)])
    assert code == 0, out + err
    assert "Valid cloud-config" in out
    data = yaml.safe_load(user_data.read_text())
    assert ED_LINE.split()[1] in data["users"][0]["ssh_authorized_keys"][0]


def test_cloud_init_schema_accepts_the_default_with_host_internal_network(tmp_path):
    _need("cloud-init")
    text, source = load_template(override_path=None)
    rendered = render.render_user_data(render.default_template_text(text, True, source),
                                       CONTEXT._replace(hin_device="1"))
    path = tmp_path / "user_data"
    path.write_text(rendered.user_data)
    code, out, err = _run(["cloud-init", "schema", "--config-file", str(path)])
    assert code == 0, out + err


def test_cloud_init_schema_rejects_what_we_would_not_catch_ourselves(tmp_path):
    # Proves the schema check above is a real check, not one that accepts everything.
    _need("cloud-init")
    path = tmp_path / "user_data"
    path.write_text("#cloud-config\nhostname: 1\nusers: 5\n")
    code, _, _ = _run(["cloud-init", "schema", "--config-file", str(path)])
    assert code != 0


def test_a_drive_made_by_mkisofs_is_read_back(tmp_path):
    # Drives made by the original product (mkisofs -R -J -V config-2).
    _need("xorriso")
    tree = tmp_path / "tree" / "openstack" / "latest"
    tree.mkdir(parents=True)
    (tree / "user_data").write_text("#cloud-config\nhostname: old\n")
    (tree / "user_data.template").write_text("#cloud-config\nhostname: %VMNAMETOHOSTNAME%\n")
    image = tmp_path / "old.iso"
    code, _, err = _run(["xorriso", "-as", "mkisofs", "-R", "-J", "-V", "config-2", "-o", str(image),
                         str(tmp_path / "tree")])
    assert code == 0, err
    data = image.read_bytes()
    assert iso.read_drive_file(data, render.USER_DATA_TEMPLATE) == \
        b"#cloud-config\nhostname: %VMNAMETOHOSTNAME%\n"


def _tools_iso(tmp_path, name, rock_ridge=True):
    _need("xorriso")
    linux = tmp_path / ("tools-" + name) / "Linux"
    linux.mkdir(parents=True)
    for file_name, content in AGENT.items():
        (linux / file_name).write_bytes(content)
    (linux / "unrelated.txt").write_text("not copied")
    directory = tmp_path / "iso"
    directory.mkdir(exist_ok=True)
    target = directory / name
    args = ["xorriso", "-as", "mkisofs", "-V", "XS-TOOLS", "-o", str(target)]
    args += ["-R", "-J"] if rock_ridge else ["-J"]
    code, _, err = _run(args + [str(linux.parent)])
    assert code == 0, err
    return directory


def test_agent_files_read_from_the_newest_tools_iso(tmp_path):
    directory = _tools_iso(tmp_path, "xs-tools-8.2.0-100.iso")
    (directory / "xs-tools-8.2.0-99.iso").write_bytes(b"not an iso at all")
    (directory / "readme.iso").write_bytes(b"ignored")
    assert iso.find_tools_iso(str(directory)).endswith("xs-tools-8.2.0-100.iso")
    assert iso.load_agent_files(str(directory)) == AGENT


def test_agent_files_read_from_a_joliet_only_guest_tools_iso(tmp_path):
    directory = _tools_iso(tmp_path, "guest-tools.iso", rock_ridge=False)
    assert iso.load_agent_files(str(directory)) == AGENT


def test_no_tools_iso_means_no_agent_files(tmp_path, caplog):
    caplog.set_level("INFO")
    assert iso.load_agent_files(str(tmp_path)) == {}
    assert "without the Linux guest agent" in caplog.text


def test_unreadable_tools_iso_means_no_agent_files(tmp_path):
    (tmp_path / "guest-tools.iso").write_bytes(b"\0" * 4096)
    assert iso.load_agent_files(str(tmp_path)) == {}


def test_not_an_iso_is_a_clear_error():
    with pytest.raises(ConfigDriveError) as info:
        iso.read_drive_file(b"\0" * (64 * 1024), render.USER_DATA_TEMPLATE)
    assert info.value.code == "NOT_A_CONFIG_DRIVE"


def test_an_iso_without_the_template_is_a_clear_error():
    data = iso.build_iso({"other/file": b"x"})
    with pytest.raises(ConfigDriveError) as info:
        iso.read_drive_file(data, render.USER_DATA_TEMPLATE)
    assert info.value.code == "NOT_A_CONFIG_DRIVE"


def test_long_and_colliding_names_stay_distinct():
    files = {"agent/xe-linux-distribution.service": b"1", "agent/xe_linux_distribution.service": b"2",
             "agent/" + "a" * 60 + ".verylongextension": b"3"}
    data = iso.build_iso(files)
    with iso.IsoReader(data) as reader:
        for path, content in files.items():
            assert reader.read(path) == content


def test_only_root_may_read_the_user_data_in_the_guest(drive):
    # user_data may carry the VM's SSH host private key: a guest that mounts the drive (Flatcar:
    # /media/configdrive) must not show it to every user. The rest stays world-readable.
    _need("xorriso")
    code, out, err = _run(["xorriso", "-indev", drive[0], "-find", "/openstack/latest", "-type", "f",
                           "-exec", "lsdl"])
    assert code == 0, err
    modes = {line.split()[-1].strip("'"): line.split()[0] for line in out.splitlines() if line.startswith("-")}
    assert modes["/openstack/latest/user_data"] == "-r--------"
    assert modes["/openstack/latest/meta_data.json"] == "-r--r--r--"
    assert modes["/openstack/latest/user_data.template"] == "-r--r--r--"
