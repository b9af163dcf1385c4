"""The RPM as ``rpm -qp`` sees it: files, modes, scripts, dependencies, header."""

import os
import re

from pkgharness import run

SITELIB = "/usr/lib/python3.6/site-packages"
EXPECTED_FILES = [
    "/etc/xapi.d/plugins/xscontainer",
    "/usr/bin/xscontainer",
    "/usr/bin/xscontainer-monitor",
    "/usr/bin/xscontainer-prepare-vm",
    "/usr/lib/systemd/system/xscontainer-monitor.service",
    "/usr/lib/systemd/system-preset/80-xscontainer.preset",
    "/etc/xensource/bugtool/xscontainer.xml",
    "/etc/xensource/bugtool/xscontainer",
    "/etc/xensource/bugtool/xscontainer/xscontainer_logs.xml",
    "/etc/logrotate.d/xscontainer",
    SITELIB + "/xscontainer/__init__.py",
    SITELIB + "/xscontainer/vendorpath.py",
    SITELIB + "/xscontainer/plugin/entry.py",
    SITELIB + "/xscontainer/data/cloud-config.template",
    "/usr/share/xscontainer/templates/coreos.json",
    "/usr/share/xscontainer/templates/flatcar.json",
]
VENDORED_MODULES = ["paramiko/__init__.py", "cryptography/__init__.py", "bcrypt/__init__.py",
                    "nacl/__init__.py", "yaml/__init__.py", "pycdlib/__init__.py", "XenAPI/__init__.py",
                    "cffi/__init__.py", "pycparser/__init__.py"]


def qf(path, fmt):
    return run(["rpm", "-qp", "--qf", fmt, path]).stdout


def test_rpm_lists_every_installed_file(built, rpm_files):
    for path in EXPECTED_FILES:
        assert path in rpm_files, path
    for module in VENDORED_MODULES:
        assert "/usr/lib/xscontainer/vendor/" + module in rpm_files, module
    assert not [p for p in rpm_files if "__pycache__" in p or p.endswith(".pyc")]
    # Directories owned by xapi are not claimed by the package.
    assert "/etc/xapi.d/plugins" not in rpm_files
    assert "/etc/xensource/bugtool" not in rpm_files


def test_rpm_ships_every_source_file_of_the_package(snapshot, rpm_files):
    shipped = {p[len(SITELIB) + 1:] for p in rpm_files if p.startswith(SITELIB + "/xscontainer/")}
    expected = set()
    for dirpath, dirnames, filenames in os.walk(os.path.join(snapshot, "xscontainer")):
        for name in filenames:
            expected.add(os.path.relpath(os.path.join(dirpath, name), snapshot))
    assert expected and expected <= shipped


def test_file_modes_and_executables(built):
    out = run(["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILENAMES}\n]",
               built.path("rpm")]).stdout
    modes = {line.split()[2]: (line.split()[0], line.split()[1]) for line in out.splitlines()}
    for exe in ("/etc/xapi.d/plugins/xscontainer", "/usr/bin/xscontainer",
                "/usr/bin/xscontainer-monitor", "/usr/bin/xscontainer-prepare-vm"):
        assert modes[exe] == ("-rwxr-xr-x", "root"), exe
    assert modes["/usr/lib/systemd/system/xscontainer-monitor.service"][0] == "-rw-r--r--"
    assert modes[SITELIB + "/xscontainer/__init__.py"][0] == "-rw-r--r--"
    assert all(owner == "root" for _, owner in modes.values())


def test_rpm_header(built):
    info = run(["rpm", "-qpi", built.path("rpm")]).stdout
    assert re.search(r"^Name\s*: xscontainer$", info, re.M)
    assert re.search(r"^Version\s*: %s$" % re.escape(built.manifest["version"]), info, re.M)
    assert re.search(r"^Architecture: noarch$", info, re.M)
    assert re.search(r"^Summary\s*: XenServer Container Management$", info, re.M)
    assert re.search(r"^Build Host\s*: xscontainer$", info, re.M)
    import xscontainer
    assert built.manifest["version"] == xscontainer.__version__
    # dom0's rpm 4.11 reads gzip payloads, not zstd.
    assert qf(built.path("rpm"), "%{PAYLOADCOMPRESSOR}") == "gzip"


def test_dependencies(built):
    requires = run(["rpm", "-qpR", built.path("rpm")]).stdout.splitlines()
    assert "python3 >= 3.6" in requires
    assert "systemd" in requires
    # No automatic ELF dependencies from the vendored shared objects.
    assert not [r for r in requires if "GLIBC" in r or ".so" in r]
    provides = run(["rpm", "-qp", "--provides", built.path("rpm")]).stdout.splitlines()
    assert "bundled(python3-paramiko) = 3.5.1" in provides
    assert "bundled(python3-cryptography) = 40.0.2" in provides
    update_requires = run(["rpm", "-qpR", built.path("update_rpm")]).stdout.splitlines()
    assert "xscontainer >= %s-1" % built.manifest["version"] in update_requires
    assert "platform-version >= 3.2.0" in update_requires


def test_scriptlets_enable_restart_and_disable_the_unit(built):
    scripts = run(["rpm", "-qp", "--scripts", built.path("rpm")]).stdout
    sections = re.split(r"^(\w+) scriptlet \(using /bin/sh\):$", scripts, flags=re.M)
    by_name = dict(zip(sections[1::2], sections[2::2]))
    assert set(by_name) == {"postinstall", "preuninstall", "postuninstall"}
    post, preun, postun = by_name["postinstall"], by_name["preuninstall"], by_name["postuninstall"]
    assert "systemctl daemon-reload" in post
    assert re.search(r'if \[ "\$1" -eq 1 \]; then\s+systemctl enable xscontainer-monitor.service', post)
    assert re.search(r'"\$1" -eq 0.*\n\s+systemctl stop xscontainer-monitor.service.*\n'
                     r'\s+systemctl disable xscontainer-monitor.service', preun)
    assert re.search(r'if \[ "\$1" -ge 1 \]; then\s+systemctl try-restart xscontainer-monitor.service',
                     postun)


def test_unit_file_contents(payload):
    unit = payload("/usr/lib/systemd/system/xscontainer-monitor.service")
    assert "After=xapi.service" in unit and "Wants=xapi.service" in unit
    assert "Restart=on-failure" in unit
    assert "ExecStart=/usr/bin/xscontainer-monitor" in unit
    assert "WantedBy=multi-user.target" in unit
    logs = payload("/etc/xensource/bugtool/xscontainer/xscontainer_logs.xml")
    pattern = re.search(r'pattern="([^"]+)"', logs).group(1)
    for name in ("xscontainer.log", "xscontainer.log.1", "xscontainer.log.2.gz"):
        assert re.match(pattern, name), name
    assert not re.match(pattern, "xscontainer.log.bak")
    assert ">/var/log</directory>" in logs
    rotate = payload("/etc/logrotate.d/xscontainer")
    assert rotate.startswith("/var/log/xscontainer.log {")


def test_wrappers_activate_the_vendor_dir_and_call_main(payload):
    for cmd, module in (("xscontainer-monitor", "xscontainer.monitor.cli"),
                        ("xscontainer-prepare-vm", "xscontainer.prepare.cli"),
                        ("xscontainer", "xscontainer.cli.main")):
        text = payload("/usr/bin/" + cmd)
        assert text.startswith("#!/usr/bin/python3\n")
        assert text.index("vendorpath.activate()") < text.index("from %s import main" % module)
        compile(text, cmd, "exec")


def test_vendored_wheels_are_for_python36_manylinux2014(built, rpm_files):
    assert sorted(built.manifest["vendored"], key=str.lower) == sorted([
        "bcrypt==4.0.1", "cffi==1.15.1", "cryptography==40.0.2", "paramiko==3.5.1",
        "pycdlib==1.14.0", "pycparser==2.21", "PyNaCl==1.5.0", "PyYAML==6.0.1",
        "XenAPI==26.21.1"], key=str.lower)
    shared = [p for p in rpm_files if p.endswith(".so")]
    assert shared and all(("abi3" in p or "cpython-36m" in p) for p in shared), shared


