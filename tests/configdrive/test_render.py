"""The pure config drive logic, with literal inputs."""

import json

import pytest
import yaml

from xscontainer.configdrive import guestformats, render
from xscontainer.configdrive.operations import load_template
from xscontainer.errors import ConfigDriveError

ED_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl xscontainer"
ED_B64 = ED_LINE.split()[1]
RSA_LINE = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 xscontainer"
VM_UUID = "6f2d0d6c-1d3e-4a59-9b0a-0c1d2e3f4a5b"


def ctx(name="Test VM_1", line=ED_LINE, hin=None):
    return render.RenderContext(VM_UUID, name, line, hin)


@pytest.mark.parametrize("placeholder,expected", [
    ("%XSVMNAMETOHOSTNAME%", "testvm1"),
    ("%VMNAMETOHOSTNAME%", "testvm1"),
    ("%XSCONTAINERRSAPUB%", ED_B64),
    ("%CONTAINERRSAPUB%", ED_B64),
    ("%XSCONTAINERPUBKEY%", " ".join(ED_LINE.split()[:2])),
    ("%CONTAINERPUBKEY%", " ".join(ED_LINE.split()[:2])),
])
def test_each_placeholder(placeholder, expected):
    assert render.render_placeholders(placeholder, ctx()) == expected


@pytest.mark.parametrize("placeholder", ["%XSHIN%", "%HIN%"])
def test_host_internal_network_device(placeholder):
    assert render.render_placeholders(placeholder, ctx(hin="3")) == "3"


def test_compound_template_as_the_original_tested_it():
    template = "\nHostname: %VMNAMETOHOSTNAME%\n\nSSH_PUB_KEY: %CONTAINERRSAPUB%\n\nHIMN: %HIN%\n"
    result = render.render_placeholders(template, ctx(name="testvm", line=RSA_LINE, hin="0"))
    assert result == "\nHostname: testvm\n\nSSH_PUB_KEY: AAAAB3NzaC1yc2EAAAADAQABAAABAQC7\n\nHIMN: 0\n"


@pytest.mark.parametrize("prefix", ["%CONTAINERRSAPUB%", "%XSCONTAINERRSAPUB%"])
def test_ssh_rsa_line_becomes_the_whole_ed25519_key_line(prefix):
    text = "ssh_authorized_keys:\n  - ssh-rsa %s\n" % prefix
    result = render.render_placeholders(text, ctx())
    assert result == "ssh_authorized_keys:\n  - %s\n" % " ".join(ED_LINE.split()[:2])
    assert "ssh-rsa" not in result


def test_ssh_rsa_line_with_an_rsa_pool_key_is_unchanged_in_meaning():
    result = render.render_placeholders("  - ssh-rsa %CONTAINERRSAPUB%", ctx(line=RSA_LINE))
    assert result == "  - ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"


def test_substitution_is_single_pass():
    # A VM name cannot inject another placeholder (names are reduced to [a-z0-9]).
    assert render.render_placeholders("%VMNAMETOHOSTNAME%", ctx(name="%HIN%")) == "hin"


def test_unknown_placeholders_and_percent_signs_are_left_alone():
    text = "a: 50%\nb: %NOTOURS%\n"
    assert render.render_placeholders(text, ctx()) == text


@pytest.mark.parametrize("start,end", [("%HINEXISTS%", "%ENDHINEXISTS%"),
                                       ("%XSHINEXISTS%", "%XSENDHINEXISTS%"),
                                       ("%XSHINEXISTS%", "%ENDXSHINEXISTS%")])
def test_hin_blocks_removed_without_a_device(start, end):
    text = "this is a test %s this should disappear %smore text" % (start, end)
    assert render.render_placeholders(text, ctx()) == "this is a test more text"


def test_hin_block_multiline_removed():
    text = "this is a test\n%HINEXISTS%\nsome config here eth%HIN%\n%ENDHINEXISTS%\nsome more text"
    assert render.render_placeholders(text, ctx()) == "this is a test\n\nsome more text"


def test_hin_block_kept_without_markers_with_a_device():
    text = "a\n%HINEXISTS%\nName=eth%HIN%\n%ENDHINEXISTS%\nb %XSHINEXISTS%x%XSHIN%%XSENDHINEXISTS%"
    assert render.render_placeholders(text, ctx(hin="2")) == "a\n\nName=eth2\n\nb x2"


def test_two_blocks_both_removed():
    text = "1%HINEXISTS%a%ENDHINEXISTS%2%HINEXISTS%b%ENDHINEXISTS%3"
    assert render.render_placeholders(text, ctx()) == "123"


@pytest.mark.parametrize("text", ["x %HINEXISTS% y", "x %ENDHINEXISTS% y", "x %XSHINEXISTS% y"])
def test_unbalanced_hin_markers_are_invalid(text):
    with pytest.raises(ConfigDriveError) as info:
        render.render_placeholders(text, ctx())
    assert info.value.code == "INVALID_CONFIGURATION"


def test_hin_outside_a_block_without_a_device_is_invalid():
    with pytest.raises(ConfigDriveError) as info:
        render.render_placeholders("name: eth%HIN%", ctx())
    assert info.value.code == "INVALID_CONFIGURATION"
    assert "host-internal" in info.value.message


@pytest.mark.parametrize("name,expected", [
    ("CoreOS 1", "coreos1"), ("my_vm-01.example", "myvm01example"), ("Été", "t"),
    ("x" * 80, "x" * 63), ("!!!", "vm6f2d0d6c"),
])
def test_vm_name_to_hostname(name, expected):
    assert render.vm_name_to_hostname(name, VM_UUID) == expected


def test_decode_br():
    assert render.decode_br("#cloud-config%BR%hostname: a%BR%") == "#cloud-config\r\nhostname: a\r\n"


@pytest.mark.parametrize("text,fmt", [
    ("#cloud-config\na: 1\n", guestformats.FORMAT_CLOUD_CONFIG),
    ("\ufeff#cloud-config\r\na: 1\r\n", guestformats.FORMAT_CLOUD_CONFIG),
    ('  {"ignition": {"version": "3.3.0"}}', guestformats.FORMAT_IGNITION),
    ("#!/bin/sh\necho hi\n", guestformats.FORMAT_SCRIPT),
])
def test_detect_format(text, fmt):
    assert guestformats.detect_format(text) == fmt


@pytest.mark.parametrize("text", [
    "hostname: a\n",  # YAML without the header: cloud-init would ignore it
    "#cloud-config\nhostname: [a\n",
    "#cloud-config\n- a\n- b\n",
    "#cloud-config\nkey: value\n  bad indentation: here\n",
    '{"ignition": {"version": "3.3.0"}',
    '{"passwd": {}}',
    '{"ignition": {"version": "3.3.0"}, "passwd": {"users": {}}}',
    "   \n",
    "",
])
def test_invalid_configurations(text):
    with pytest.raises(ConfigDriveError) as info:
        render.render_user_data(text, ctx())
    assert info.value.code == "INVALID_CONFIGURATION"
    assert info.value.message


def test_yaml_error_says_where():
    with pytest.raises(ConfigDriveError) as info:
        render.render_user_data("#cloud-config\nhostname: a\nusers: [\n", ctx())
    assert "line" in info.value.message


def test_cloud_config_authorization_detected_for_users_and_top_level():
    for text in ("#cloud-config\nssh_authorized_keys:\n  - ssh-rsa %CONTAINERRSAPUB%\n",
                 "#cloud-config\nusers:\n  - name: core\n    ssh_authorized_keys:\n      - %CONTAINERPUBKEY%\n",
                 "#cloud-config\nusers:\n  - name: core\n    ssh-authorized-keys: [\"%CONTAINERPUBKEY%\"]\n"):
        rendered = render.render_user_data(text, ctx())
        assert rendered.authorizes_pool_key, text
        assert rendered.format == guestformats.FORMAT_CLOUD_CONFIG


def test_commented_key_does_not_authorize():
    text = "#cloud-config\nssh_authorized_keys:\n  # - ssh-rsa %CONTAINERRSAPUB%\n  - ssh-ed25519 AAAAother me\n"
    rendered = render.render_user_data(text, ctx())
    assert not rendered.authorizes_pool_key
    meta = render.meta_data(ctx(), rendered)
    assert meta["public_keys"] == {}


def test_ignition_gets_the_key_merged_into_core():
    config = {"ignition": {"version": "3.3.0"},
              "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAAmine me"]},
                                   {"name": "other"}]}}
    rendered = render.render_user_data(json.dumps(config), ctx())
    data = json.loads(rendered.user_data)
    core = [u for u in data["passwd"]["users"] if u["name"] == "core"][0]
    assert core["sshAuthorizedKeys"][0] == "ssh-ed25519 AAAAmine me"
    assert ED_B64 in core["sshAuthorizedKeys"][1].split()
    assert rendered.authorizes_pool_key and rendered.format == guestformats.FORMAT_IGNITION
    # merging again does not duplicate
    again = render.render_user_data(rendered.user_data, ctx())
    core = [u for u in json.loads(again.user_data)["passwd"]["users"] if u["name"] == "core"][0]
    assert len(core["sshAuthorizedKeys"]) == 2


def test_ignition_without_users_gets_a_core_user():
    rendered = render.render_user_data('{"ignition": {"version": "2.3.0"}}', ctx())
    users = json.loads(rendered.user_data)["passwd"]["users"]
    assert users == [{"name": "core", "sshAuthorizedKeys": [" ".join(ED_LINE.split()[:2]) + " xscontainer"]}]


def test_script_is_accepted_verbatim_and_not_marked():
    rendered = render.render_user_data("#!/bin/sh\necho %VMNAMETOHOSTNAME%\n", ctx())
    assert rendered.user_data == "#!/bin/sh\necho testvm1\n"
    assert not rendered.authorizes_pool_key


def test_meta_data_and_drive_files():
    template = "#cloud-config\nhostname: %VMNAMETOHOSTNAME%\nssh_authorized_keys:\n  - ssh-rsa %CONTAINERRSAPUB%\n"
    rendered = render.render_user_data(template, ctx())
    files = render.drive_files(template, ctx(), rendered, {"xe-daemon": b"bin"})
    assert set(files) == {render.USER_DATA, render.USER_DATA_TEMPLATE, render.META_DATA, "agent/xe-daemon"}
    assert files[render.USER_DATA_TEMPLATE] == template.encode()
    meta = json.loads(files[render.META_DATA].decode())
    assert meta["uuid"] == VM_UUID and meta["hostname"] == "testvm1" and meta["name"] == "Test VM_1"
    assert meta["public_keys"] == {"xscontainer": " ".join(ED_LINE.split()[:2])}
    assert yaml.safe_load(files[render.USER_DATA])["hostname"] == "testvm1"


def test_default_template_hin_policy():
    template = "#cloud-config\na: 1\n%HINEXISTS%\nb: eth%HIN%\n%ENDHINEXISTS%\n"
    off = render.default_template_text(template, False, "/x/t")
    assert "HIN" not in off and off.endswith("\n\n# Template loaded from /x/t")
    on = render.default_template_text(template, True, "/x/t")
    assert "%HINEXISTS%" in on and "%HIN%" in on


def test_packaged_default_template_renders_for_flatcar_and_cloud_init():
    text, source = load_template(override_path=None)
    default = render.default_template_text(text, False, source)
    assert "etcd" not in default and "fleet" not in default
    rendered = render.render_user_data(default, ctx(name="Flatcar 1"))
    data = yaml.safe_load(rendered.user_data)
    assert rendered.authorizes_pool_key
    assert data["hostname"] == "flatcar1"
    core = data["users"][0]
    assert core["name"] == "core" and ED_B64 in core["ssh_authorized_keys"][0]
    assert [u["name"] for u in data["coreos"]["units"]] == ["docker.service", "xe-linux-distribution.service"]
    with_hin = render.render_user_data(render.default_template_text(text, True, source), ctx(hin="1"))
    units = yaml.safe_load(with_hin.user_data)["coreos"]["units"]
    assert "00-eth1.network" in [u["name"] for u in units]


@pytest.mark.parametrize("paths,newest", [
    (["/i/xs-tools-6.5.0.iso", "/i/xs-tools-6.5.0-2001.iso", "/i/xs-tools-6.5.0-1001.iso"],
     "/i/xs-tools-6.5.0-2001.iso"),
    (["/i/xs-tools-9.iso", "/i/xs-tools-10.iso"], "/i/xs-tools-10.iso"),
    (["/i/guest-tools.iso"], "/i/guest-tools.iso"),
    ([], None),
])
def test_newest_tools_iso(paths, newest):
    assert render.newest_tools_iso(paths) == newest


def test_hin_device_of():
    networks = {"OpaqueRef:n1": {"bridge": "xenbr0"}, "OpaqueRef:n2": {"bridge": "xenapi"}}
    vifs = [{"network": "OpaqueRef:n1", "device": "0"}, {"network": "OpaqueRef:n2", "device": "2"}]
    assert render.hin_device_of(vifs, networks) == "2"
    assert render.hin_device_of(vifs[:1], networks) is None


@pytest.mark.parametrize("value,expected", [("1", True), ("Yes", True), ("on", True), ("true", True),
                                            ("0", False), ("", False), (None, False), ("enabled", False)])
def test_true_words(value, expected):
    assert render.is_true_word(value) is expected


def test_round_up():
    assert render.round_up(1, 2 << 20) == 2 << 20
    assert render.round_up(2 << 20, 2 << 20) == 2 << 20
    assert render.round_up((2 << 20) + 1, 2 << 20) == 4 << 20


def test_guest_authorized_keys_for_core():
    cloud = "#cloud-config\nssh_authorized_keys: [a]\nusers:\n  - name: core\n    ssh_authorized_keys: [b]\n" \
            "  - name: other\n    ssh_authorized_keys: [c]\n"
    assert guestformats.guest_authorized_keys(cloud) == ["a", "b"]
    ignition = '{"ignition": {"version": "3.3.0"}, "passwd": {"users": [{"name": "core", ' \
               '"sshAuthorizedKeys": ["k1"]}, {"name": "x", "sshAuthorizedKeys": ["k2"]}]}}'
    assert guestformats.guest_authorized_keys(ignition) == ["k1"]
    assert guestformats.guest_authorized_keys("#!/bin/sh\n") == []


# Hostile configurations: each ends in INVALID_CONFIGURATION with a sentence, never in an internal
# error, and nothing the guest would have to expand without bound is accepted.
def billion_laughs(levels=9, width=9):
    lines = ["#cloud-config", "a0: &a0 [%s]" % ", ".join(['"lol"'] * width)]
    for level in range(1, levels):
        lines.append("a%d: &a%d [%s]" % (level, level, ", ".join(["*a%d" % (level - 1)] * width)))
    return "\n".join(lines) + "\n"


def refused(text):
    with pytest.raises(ConfigDriveError) as info:
        render.render_user_data(text, ctx())
    assert info.value.code == "INVALID_CONFIGURATION"
    return info.value.message


DEEP = 100000
IGNITION_HEAD = '{"ignition": {"version": "3.3.0"}, "storage": '


@pytest.mark.parametrize("text", [
    "#cloud-config\nruncmd: " + "[" * DEEP + "]" * DEEP + "\n",
    "#cloud-config\nruncmd: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
    "#cloud-config\n" + "".join(" " * i + "k:\n" for i in range(200)),
    IGNITION_HEAD + "[" * DEEP + "]" * DEEP + "}",
    IGNITION_HEAD + '{"a": ' * DEEP + "1" + "}" * DEEP + "}",
], ids=["yaml-flow-sequences", "yaml-flow-mappings", "yaml-block-mappings", "ignition-arrays",
        "ignition-objects"])
def test_deep_nesting_is_refused(text):
    assert "nest" in refused(text)


def test_ordinary_nesting_is_accepted():
    render.render_user_data("#cloud-config\na: " + "[" * 30 + "]" * 30 + "\n", ctx())
    render.render_user_data(IGNITION_HEAD + "[" * 30 + "]" * 30 + "}", ctx())


def test_billion_laughs_is_refused():
    text = billion_laughs()
    assert len(text) < 1000
    assert "alias" in refused(text)
    # The same with the anchors padded out to the 60 KB of the report.
    padded = billion_laughs().replace('"lol"', '"%s"' % ("lol" * 2000))
    assert len(padded) > 50000
    assert "alias" in refused(padded)


def test_aliases_that_expand_through_nesting_are_refused():
    # Each anchor nests the previous one 50 levels deeper: shallow as written, 500 levels expanded.
    lines = ["#cloud-config", "a0: &a0 " + "[" * 50 + "1" + "]" * 50]
    for level in range(1, 10):
        lines.append("a%d: &a%d %s*a%d%s" % (level, level, "[" * 50, level - 1, "]" * 50))
    assert "nest" in refused("\n".join(lines) + "\n")


def test_recursive_alias_is_refused():
    assert "alias" in refused("#cloud-config\na: &a [1, *a]\n")


def test_modest_anchors_and_merge_keys_are_accepted():
    text = ("#cloud-config\n"
            "file_defaults: &defaults {owner: 'root:root', permissions: '0644'}\n"
            "write_files:\n"
            "  - <<: *defaults\n    path: /etc/a\n    content: a\n"
            "  - <<: *defaults\n    path: /etc/b\n    content: b\n"
            "ssh_authorized_keys: &keys\n  - %s\n"
            "users:\n  - name: core\n    ssh_authorized_keys: *keys\n" % ED_LINE)
    rendered = render.render_user_data(text, ctx())
    assert rendered.authorizes_pool_key
    data = yaml.safe_load(rendered.user_data)
    assert data["write_files"][1] == {"owner": "root:root", "permissions": "0644", "path": "/etc/b", "content": "b"}
