"""The plugin's shared file (/dev/shm/metrics/<uid> on a host), written as rrdd needs it.

rrdd maps the file once, at registration, with its size then (rrd_file_reader.ml), so: the
file is created full-sized under a ``.tmp`` name and renamed (rrdd ignores ``*.tmp``), later
readings are written in place, values before the header that carries their checksums (as
xen-api's rrdd.py does), and a reading that no longer fits means a new, larger file which rrdd
must be told about (``write`` returns True then: deregister and register again).
"""

import os

PAGE = 4096


def capacity_for(size: int) -> int:
    """Pages enough for twice the payload: containers come and go without a new file each time."""
    return max(PAGE, -(-2 * size // PAGE) * PAGE)


class PluginFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self.capacity = 0

    def write(self, payload: bytes, header_size: int) -> bool:
        """Publish one reading; True when the file was (re)created."""
        if len(payload) > self.capacity or not os.path.exists(self.path):
            self._create(payload)
            return True
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, payload[header_size:], header_size)
            os.pwrite(fd, payload[:header_size], 0)
        finally:
            os.close(fd)
        return False

    def _create(self, payload: bytes) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        capacity = capacity_for(len(payload))
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload + b"\0" * (capacity - len(payload)))
        os.rename(tmp, self.path)
        self.capacity = capacity

    def remove(self) -> None:
        for path in (self.path, self.path + ".tmp"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.capacity = 0
