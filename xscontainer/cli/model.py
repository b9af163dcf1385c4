"""What the command line knows about pool objects (pure records)."""

from typing import Dict, NamedTuple, Optional

from xscontainer.vmsettings import MONITOR_KEY


class VmInfo(NamedTuple):
    ref: str
    uuid: str
    name_label: str
    power_state: str
    host_ref: Optional[str]  # where it runs (None when halted)
    host_uuid: Optional[str]
    host_name: Optional[str]
    other_config: Dict[str, str]

    @property
    def managed(self) -> bool:
        """XenCenter's IsEnlightened: other_config:xscontainer-monitor is "true" (any case)."""
        return self.other_config.get(MONITOR_KEY, "").lower() == "true"


class Named(NamedTuple):
    ref: str
    uuid: str
    name_label: str
