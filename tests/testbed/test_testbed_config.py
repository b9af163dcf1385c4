"""Pure: the sshd flags the testbed adds for the installed OpenSSH (config.sshd_flags)."""

import pytest

from xscontainer.testbed import config


@pytest.mark.parametrize("banner, flags", [
    ("OpenSSH_8.4p1 Debian-5+deb11u3, OpenSSL 1.1.1w  11 Sep 2023", ["-r"]),
    ("OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026\n", ["-r"]),
    ("unknown option -- V\nOpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19", ["-r"]),
    ("OpenSSH_9.8p1, OpenSSL 3.3.1", []),
    ("OpenSSH_10.0p2 Debian-7, OpenSSL 3.5.1", []),
    ("", []),
])
def test_sshd_is_not_re_executed_per_connection_where_openssh_allows(banner, flags):
    assert config.sshd_flags(banner) == flags
