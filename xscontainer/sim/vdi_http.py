"""HTTP ``PUT /import_raw_vdi`` and ``GET /export_raw_vdi`` (contract §9), bytes in DIR/vdis.

As in xapi, import sends its 200 headers (with ``task-id``) before reading the body, so a
failure after that point is visible only through the task.
"""

import base64
import http.cookies
import logging
import os
import urllib.parse
from typing import Any, Dict, Optional, Tuple


from xscontainer.sim import rpc
from xscontainer.sim.failures import XapiFailure

log = logging.getLogger(__name__)

CHUNK = 1 << 20
FORMATS = ("raw", "vhd", "tar", "qcow2")
CONTENT_TYPES = {"raw": "application/octet-stream", "vhd": "application/vhd",
                 "tar": "application/x-tar", "qcow2": "application/x-qemu-disk"}


def vdi_path(api: Any, vdi_uuid: str) -> str:
    return os.path.join(api.config.vdi_dir, vdi_uuid + ".raw")


def _query(handler: Any) -> Dict[str, str]:
    parsed = urllib.parse.urlsplit(handler.path)
    return {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query,
                                                        keep_blank_values=True).items()}


def _authorised(api: Any, handler: Any, query: Dict[str, str]) -> bool:
    if handler.server.preauth:
        return True
    session = None  # type: Optional[str]
    cookie_header = handler.headers.get("Cookie")
    if cookie_header:
        try:
            cookies = http.cookies.SimpleCookie(cookie_header)
            if "session_id" in cookies:
                session = cookies["session_id"].value
        except http.cookies.CookieError:
            session = None
    session = session or query.get("session_id")
    if session:
        with api.db.lock:
            return api.db.exists("session", session)
    auth = handler.headers.get("Authorization", "")
    if auth.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == api.config.username and password == api.config.password
    return False


def _resolve_vdi(api: Any, value: str) -> Tuple[str, Dict[str, Any]]:
    with api.db.lock:
        if api.db.exists("VDI", value):
            return value, dict(api.db.get("VDI", value))
        ref = api.db.by_uuid_ref("VDI", value)
        return ref, dict(api.db.get("VDI", ref))


def _task_for(api: Any, query: Dict[str, str], label: str) -> str:
    task = query.get("task_id")
    with api.db.lock:
        if task and api.db.exists("task", task):
            return task
    return api.create_task(label)


def _preamble(api: Any, handler: Any, need_vdi: bool) -> Optional[Tuple[Dict[str, str], str,
                                                                         Optional[str],
                                                                         Dict[str, Any]]]:
    """Checks common to both handlers; sends the error itself and returns None on failure."""
    query = _query(handler)
    if handler.headers.get("Transfer-Encoding"):
        handler.send_error(404, "Chunked encoding not yet implemented")
        return None
    if not _authorised(api, handler, query):
        handler.send_error(401, "Unauthorised")
        return None
    fmt = query.get("format", "raw").lower()
    if fmt not in FORMATS or query.get("chunked", "false").lower() == "true" and fmt != "raw":
        handler.send_error(404, "Unknown format %s" % fmt)
        return None
    if fmt != "raw":
        # Deviation: the simulator stores raw bytes only.
        handler.send_error(404, "The simulator supports only format=raw")
        return None
    if "vdi" not in query:
        if need_vdi:
            handler.send_error(500, "Missing vdi query parameter")
            return None
        return query, fmt, None, {}
    try:
        ref, row = _resolve_vdi(api, query["vdi"])
    except XapiFailure as exc:
        handler.send_error(500, "Internal error", " ".join(exc.details))
        return None
    return query, fmt, ref, row


def handle_import(api: Any, handler: Any) -> None:
    checked = _preamble(api, handler, need_vdi=False)
    if checked is None:
        return
    query, fmt, vdi, row = checked
    length_header = handler.headers.get("Content-Length")
    try:
        length = int(length_header) if length_header is not None else None
    except ValueError:
        handler.send_error(400, "Bad Content-Length")
        return
    if length is not None and length < 0:
        handler.send_error(400, "Bad Content-Length")
        return
    if vdi is None:
        if length is None or not (query.get("sr_id") or query.get("sr_uuid")):
            handler.send_error(500, "Missing vdi query parameter")
            return
        try:
            vdi, row = _new_vdi(api, query, length)
        except XapiFailure as exc:
            handler.send_error(500, "Internal error", " ".join(exc.details))
            return
    task = _task_for(api, query, "VDI import")
    handler.close_connection = True
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.send_header("Cache-Control", "no-cache, no-store")
    handler.send_header("task-id", task)
    handler.send_header("Content-Type", CONTENT_TYPES[fmt])
    handler.end_headers()
    handler.wfile.flush()
    size = int(row["virtual_size"])
    try:
        written = _receive(handler, vdi_path(api, row["uuid"]), length, size)
    except XapiFailure as exc:
        api.finish_task(task, {"status": "failure", "error_info": exc.details})
        return
    except OSError as exc:
        api.finish_task(task, {"status": "failure",
                               "error_info": ["VDI_IO_ERROR", "import failed: %s" % exc]})
        return
    log.info("VDI %s: imported %d bytes", row["uuid"], written)
    api.finish_task(task, {"status": "success", "result": rpc.value_xml(vdi)})


def _new_vdi(api: Any, query: Dict[str, str], length: int) -> Tuple[str, Dict[str, Any]]:
    with api.db.lock:
        sr = query.get("sr_id") or api.db.by_uuid_ref("SR", query.get("sr_uuid"))
        api.db.get("SR", sr)
        ref = api.devices.vdi_create(None, {
            "SR": sr, "virtual_size": str(length), "type": "user", "sharable": False,
            "read_only": False, "other_config": {}, "name_label": "Imported VDI"})
        return ref, dict(api.db.get("VDI", ref))


def _receive(handler: Any, path: str, length: Optional[int], size: int) -> int:
    """Write the body from offset 0 (the rest of the disk is kept, as on a block device)."""
    mode = "r+b" if os.path.exists(path) else "wb"
    written = 0
    with open(path, mode) as out:
        while length is None or written < length:
            want = CHUNK if length is None else min(CHUNK, length - written)
            data = handler.rfile.read(want)
            if not data:
                if length is not None:
                    raise XapiFailure("VDI_IO_ERROR", "short body: %d of %d bytes"
                                      % (written, length))
                break
            if written + len(data) > size:
                raise XapiFailure("VDI_IO_ERROR", "write beyond the end of the VDI "
                                  "(virtual_size %d)" % size)
            out.write(data)
            written += len(data)
    return written


def handle_export(api: Any, handler: Any) -> None:
    checked = _preamble(api, handler, need_vdi=True)
    if checked is None:
        return
    query, fmt, vdi, row = checked
    task = _task_for(api, query, "VDI export")
    size = int(row["virtual_size"])
    handler.close_connection = True
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.send_header("task-id", task)
    handler.send_header("Content-Type", CONTENT_TYPES[fmt])
    handler.send_header("Content-Disposition", 'attachment; filename="%s.%s"'
                        % (row["uuid"], fmt))
    handler.send_header("Content-Length", str(size))
    handler.end_headers()
    sent = 0
    try:
        path = vdi_path(api, row["uuid"])
        if os.path.exists(path):
            with open(path, "rb") as src:
                while sent < size:
                    data = src.read(min(CHUNK, size - sent))
                    if not data:
                        break
                    handler.wfile.write(data)
                    sent += len(data)
        zeros = b"\0" * CHUNK
        while sent < size:
            part = min(CHUNK, size - sent)
            handler.wfile.write(zeros[:part])
            sent += part
    except OSError as exc:
        api.finish_task(task, {"status": "failure",
                               "error_info": ["VDI_IO_ERROR", "export failed: %s" % exc]})
        return
    api.finish_task(task, {"status": "success", "result": rpc.value_xml("")})



