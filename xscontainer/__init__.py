"""xscontainer: container management for XenServer / XCP-ng pools (runs in dom0)."""

__version__ = "11.0.0"
