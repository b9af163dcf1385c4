"""Raw VDI contents in and out of xapi over HTTP on its local Unix socket.

``PUT /import_raw_vdi`` and ``GET /export_raw_vdi`` (see contracts/xapi.md §9). xapi sends the
200 status line of an import before it reads the body, so an import's outcome is read from the
task passed as ``task_id`` when xapi lets us create one.
"""

import http.client
import logging
import time
from typing import Callable, Optional
from urllib.parse import urlencode

from xscontainer.errors import ConfigDriveError
from xscontainer.transport.unixhttp import UnixHTTPConnection
from xscontainer.xapi import Failure, Session
from xscontainer.xapi.session import local_socket_path

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
_CHUNK = 1 << 20


def session_handle(session: Session) -> str:
    # XenAPI.Session keeps the logged-in (or plugin-given) session reference here.
    return session._session


def _path(name: str, session: Session, vdi_uuid: str, task_ref: Optional[str]) -> str:
    query = [("session_id", session_handle(session)), ("vdi", vdi_uuid), ("format", "raw")]
    if task_ref:
        query.append(("task_id", task_ref))
    return "/%s?%s" % (name, urlencode(query))


def _create_task(session: Session, label: str) -> Optional[str]:
    try:
        return session.xenapi.task.create(label, "xscontainer config drive transfer")
    except Failure as exc:
        LOG.debug("Cannot create a task for %s (%s): relying on the HTTP status", label, exc.details)
        return None


def _destroy_task(session: Session, task_ref: str) -> None:
    try:
        session.xenapi.task.destroy(task_ref)
    except Failure:
        pass


def wait_task(session: Session, task_ref: str, timeout: float = DEFAULT_TIMEOUT,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait for a task to leave ``pending``; raise with its error_info when it failed."""
    deadline = clock() + timeout
    while True:
        status = session.xenapi.task.get_status(task_ref)
        if status == "success":
            return
        if status != "pending":
            error = session.xenapi.task.get_error_info(task_ref)
            raise ConfigDriveError("xapi could not write the config drive: %s" % (error,),
                                   code=_code_of(error, "UPLOAD_FAILED"), xapi_error=error)
        if clock() >= deadline:
            raise ConfigDriveError("xapi did not finish writing the config drive within %d s."
                                   % timeout, code="UPLOAD_FAILED")
        sleep(0.05)


def _code_of(error_info, default: str) -> str:
    if error_info and error_info[0] in ("SR_FULL", "VDI_TOO_LARGE"):
        return "SR_FULL" if error_info[0] == "SR_FULL" else "DISK_TOO_LARGE"
    return default


def import_raw(session: Session, vdi_uuid: str, data: bytes,
               socket_path: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Write ``data`` at offset 0 of the VDI."""
    path = socket_path or local_socket_path()
    task_ref = _create_task(session, "xscontainer import config drive %s" % vdi_uuid)
    try:
        connection = UnixHTTPConnection(path, timeout)
        try:
            connection.putrequest("PUT", _path("import_raw_vdi", session, vdi_uuid, task_ref),
                                  skip_accept_encoding=True)
            connection.putheader("Content-Length", str(len(data)))
            connection.putheader("Content-Type", "application/octet-stream")
            connection.endheaders()
            try:
                view = memoryview(data)
                for offset in range(0, len(data), _CHUNK):
                    connection.send(view[offset:offset + _CHUNK])
            except (BrokenPipeError, ConnectionResetError) as exc:
                # xapi answers first and may close early on an error: its status says why.
                LOG.debug("Upload to VDI %s interrupted: %s", vdi_uuid, exc)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise ConfigDriveError("xapi refused the config drive upload to VDI %s: HTTP %d %s %s"
                                   % (vdi_uuid, response.status, response.reason,
                                      body[:200].decode("utf-8", "replace")),
                                   code="UPLOAD_FAILED", http_status=response.status)
        if task_ref:
            wait_task(session, task_ref, timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise ConfigDriveError("Cannot upload the config drive to xapi on %s: %s" % (path, exc),
                               code="UPLOAD_FAILED") from exc
    finally:
        if task_ref:
            _destroy_task(session, task_ref)


def export_raw(session: Session, vdi_uuid: str, max_size: int,
               socket_path: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The VDI's contents (at most ``max_size`` bytes are accepted)."""
    path = socket_path or local_socket_path()
    try:
        connection = UnixHTTPConnection(path, timeout)
        try:
            connection.request("GET", _path("export_raw_vdi", session, vdi_uuid, None))
            response = connection.getresponse()
            if response.status != 200:
                body = response.read(200)
                raise ConfigDriveError("xapi refused to export VDI %s: HTTP %d %s %s"
                                       % (vdi_uuid, response.status, response.reason,
                                          body.decode("utf-8", "replace")),
                                       code="DOWNLOAD_FAILED", http_status=response.status)
            data = response.read(max_size + 1)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as exc:
        raise ConfigDriveError("Cannot download VDI %s from xapi on %s: %s" % (vdi_uuid, path, exc),
                               code="DOWNLOAD_FAILED") from exc
    if len(data) > max_size:
        raise ConfigDriveError("VDI %s is larger than any config drive: it is not one." % vdi_uuid,
                               code="NOT_A_CONFIG_DRIVE")
    return data
