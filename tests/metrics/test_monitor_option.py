"""The monitor's --rrdd-socket: xcp-rrdd's socket by default, the environment's in the testbed,
and '' to turn the metrics off."""

from xscontainer.monitor.cli import _parser


def test_rrdd_socket_default_environment_and_off(monkeypatch):
    monkeypatch.delenv("XSCONTAINER_RRDD_SOCKET", raising=False)
    assert _parser().parse_args([]).rrdd_socket == "/var/lib/xcp/xcp-rrdd"
    monkeypatch.setenv("XSCONTAINER_RRDD_SOCKET", "/tmp/sim/xcp-rrdd-1234abcd")
    assert _parser().parse_args([]).rrdd_socket == "/tmp/sim/xcp-rrdd-1234abcd"
    assert _parser().parse_args(["--rrdd-socket", ""]).rrdd_socket == ""
