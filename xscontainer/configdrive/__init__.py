"""Config drives: the ISO9660 "config-2" disk a guest reads on first boot (cloud-init, Flatcar).

``render`` and ``guestformats`` are the pure logic (the drive's user_data; the guests' formats),
``iso`` builds and reads images with pycdlib, ``transfer`` moves raw VDI contents over xapi's HTTP,
``disks`` makes and removes a drive's VDI and VBD, and ``operations`` holds the plugin-facing calls
below.
"""

from xscontainer.configdrive.operations import (  # noqa: F401
    CLOUD_CONFIG_OVERRIDE_PATH,
    create_config_drive,
    get_config_drive_configuration,
    get_config_drive_default,
)
