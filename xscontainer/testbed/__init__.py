"""The testbed: an xapi simulator with VMs made of namespaces running real sshd and dockerd.

Product code (it doubles as the demo): ``Testbed(directory).up(...)``, ``.info()``, ``.down()``;
the ``xscontainer-testbed`` command is a thin layer over it.
"""

from xscontainer.testbed.system import TestbedError
from xscontainer.testbed.testbed import Testbed, missing_prerequisites

__all__ = ["Testbed", "TestbedError", "missing_prerequisites"]
