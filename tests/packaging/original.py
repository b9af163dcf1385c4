"""A stand-in for the package XCP-ng shipped, ``xscontainer-10.0.4-1``, built with rpmbuild.

Its spec is the original's (xcp-ng-rpms/xscontainer ``SPECS/xscontainer.spec``: the same %files
globs, Requires and scriptlets, with CentOS 7's systemd macros written out) and its files are
those ``python2 setup.py install -O2`` puts in the buildroot at the tag v10.0.4 of
xenserver/xscontainer (packages xscontainer, .docker_monitor, .remote_helper, .util, their
package data, two scripts, four overlay files) plus the spec's preset file, with dummy content.
"""

import os

from pkgharness import run

VERSION, RELEASE = "10.0.4", "1"
SITELIB = "/usr/lib/python2.7/site-packages"
MODULES = ["__init__", "api_helper", "coreos", "docker",
           "docker_monitor/__init__", "docker_monitor/api",
           "remote_helper/__init__", "remote_helper/constants", "remote_helper/ssh", "remote_helper/tls",
           "util/__init__", "util/log", "util/tls_cert", "util/tls_secret"]
DATA = ["cloud-config.README", "cloud-config.template", "configure_tls.cmd", "daemon.json"]
FILES = (["/usr/bin/xscontainer-monitor", "/usr/bin/xscontainer-prepare-vm",
          "/etc/xapi.d/plugins/xscontainer",
          "/etc/xensource/bugtool/xscontainer.xml",
          "/etc/xensource/bugtool/xscontainer/xscontainer_logs.xml",
          "/usr/lib/systemd/system/xscontainer-monitor.service",
          "/usr/lib/systemd/system-preset/80-xscontainer.preset",
          SITELIB + "/xscontainer-0.1-py2.7.egg-info"]
         + ["%s/xscontainer/%s.%s" % (SITELIB, m, ext) for m in MODULES for ext in ("py", "pyc", "pyo")]
         + ["%s/xscontainer/data/%s" % (SITELIB, name) for name in DATA])

# The original's %files claims %{python_sitelib} itself, a directory python-libs owns on dom0:
# it is not the original's to take away.
SYSTEM_DIRS = [SITELIB]

UNIT = """[Unit]
Description=xscontainer-monitor
After=xapi.service
Wants=xapi.service

[Service]
Type=idle
Restart=on-failure
ExecStart=/usr/bin/xscontainer-monitor

[Install]
WantedBy=multi-user.target
"""

SPEC = """Name:    xscontainer
Version: %(version)s
Release: %(release)s
Summary: XenServer Container Manager
License: BSD
BuildArch: noarch
AutoReqProv: no
Requires: python-paramiko
Requires: mkisofs

%%description
Stand-in for the original xscontainer package (test fixture).

%%install
cp -a %(src)s/. %%{buildroot}/

%%post
if [ $1 -eq 1 ] ; then
        # Initial installation
        systemctl preset xscontainer-monitor.service >/dev/null 2>&1 || :
fi

# Start the monitor service if we're running in a real XenServer environment
# and it has not been explicitly disabled.
if systemctl is-active xapi.service 2>&1 > /dev/null && \\
   systemctl is-enabled xscontainer-monitor.service 2>&1 > /dev/null; then
    systemctl start xscontainer-monitor.service
fi

%%preun
if [ $1 -eq 0 ] ; then
        # Package removal, not upgrade
        systemctl --no-reload disable xscontainer-monitor.service > /dev/null 2>&1 || :
        systemctl stop xscontainer-monitor.service > /dev/null 2>&1 || :
fi

%%postun
systemctl daemon-reload >/dev/null 2>&1 || :
if [ $1 -ge 1 ] ; then
        # Package upgrade, not uninstall
        systemctl try-restart xscontainer-monitor.service >/dev/null 2>&1 || :
fi

%%files
%%{_bindir}/*
%%{_sysconfdir}/xensource/bugtool/*
%%{_sysconfdir}/xapi.d/plugins/*
%%{python_sitelib}
%%{_unitdir}/*
%%{_presetdir}/*
"""


def _content(path):
    if path.endswith(".service"):
        return UNIT
    if path.endswith(".preset"):
        return "enable xscontainer-monitor.service\n"
    return "original xscontainer %s: %s\n" % (VERSION, path)


def build_original(workdir):
    """Build the stand-in under ``workdir``; return the path of its noarch RPM."""
    src = os.path.join(workdir, "src")
    for path in FILES:
        target = os.path.join(src, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(_content(path))
        os.chmod(target, 0o755 if "/bin/" in path or "/plugins/" in path else 0o644)
    spec = os.path.join(workdir, "xscontainer.spec")
    with open(spec, "w") as handle:
        handle.write(SPEC % {"version": VERSION, "release": RELEASE, "src": src})
    topdir = os.path.join(workdir, "rpmbuild")
    run(["rpmbuild", "-bb", "--quiet", "--define", "_topdir %s" % topdir,
         "--define", "python_sitelib %s" % SITELIB,
         "--define", "_unitdir /usr/lib/systemd/system",
         "--define", "_presetdir /usr/lib/systemd/system-preset",
         "--define", "__os_install_post %{nil}", spec])
    return os.path.join(topdir, "RPMS", "noarch", "xscontainer-%s-%s.noarch.rpm" % (VERSION, RELEASE))
