"""The xapi message that tells administrators a VM cannot be monitored (as the original did)."""

import logging
from typing import Optional

from xscontainer.monitor.xapipool import SessionPool
from xscontainer.xapi import Failure

LOG = logging.getLogger(__name__)
MESSAGE_NAME = "Container Management cannot monitor VM"
MESSAGE_PRIORITY = "3"  # warning


class Alerts:
    def __init__(self, sessions: SessionPool) -> None:
        self._sessions = sessions

    def raise_alert(self, vm_uuid: str, body: str) -> Optional[str]:
        """Create the message unless one is already there; returns its ref."""
        existing = self.find(vm_uuid)
        if existing:
            return existing
        with self._sessions.session() as session:
            ref = session.xenapi.message.create(MESSAGE_NAME, MESSAGE_PRIORITY, "VM", vm_uuid, body)
        LOG.warning("VM %s: cannot monitor: %s", vm_uuid, body)
        return ref

    def find(self, vm_uuid: str) -> Optional[str]:
        with self._sessions.session() as session:
            for ref, record in session.xenapi.message.get_all_records().items():
                if record["name"] == MESSAGE_NAME and record["obj_uuid"] == vm_uuid:
                    return ref
        return None

    def clear(self, vm_uuid: str) -> None:
        """Destroy every such message about the VM (ours, or left by an earlier run)."""
        with self._sessions.session() as session:
            for ref, record in session.xenapi.message.get_all_records().items():
                if record["name"] == MESSAGE_NAME and record["obj_uuid"] == vm_uuid:
                    try:
                        session.xenapi.message.destroy(ref)
                    except Failure as exc:
                        if exc.details[0] != "HANDLE_INVALID":
                            raise
