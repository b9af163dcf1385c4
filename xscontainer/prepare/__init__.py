"""``xscontainer-prepare-vm``: make an existing VM manageable (pool key or TLS material, settings
in xapi, monitoring switched on) and check that monitoring then works.

Modules: ``authkeys`` and ``options`` are pure; ``vm`` is the xapi side, ``guest`` the
administrator's SSH connection to the VM, ``tls`` the certificate files; ``steps`` puts them
together and ``cli`` is the thin entry point.
"""
