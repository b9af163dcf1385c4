"""The one exception tree of xscontainer: a stable machine code plus a sentence a user can act on.

Every boundary (xapi, SSH/TLS transport, Docker engine, config drive) translates its own
failures into one of these with ``raise ... from exc``; entry points map them to exit codes or
plugin failures.
"""

from typing import Any, Dict, Optional


class XSContainerError(Exception):
    """Base of every error xscontainer raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, code: Optional[str] = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details  # type: Dict[str, Any]

    def __str__(self) -> str:
        return self.message


class InvalidArgument(XSContainerError):
    code = "INVALID_ARGUMENT"


class NotFound(XSContainerError):
    code = "NOT_FOUND"


class XapiError(XSContainerError):
    """xapi refused a call or could not be reached."""

    code = "XAPI_ERROR"


class ConnectionFailure(XSContainerError):
    """A VM's engine could not be reached (SSH or TLS); ``code`` says why."""

    code = "VM_UNREACHABLE"


class EngineError(XSContainerError):
    """The Docker engine answered, but with an error or something we cannot accept."""

    code = "ENGINE_ERROR"


class ConfigDriveError(XSContainerError):
    code = "CONFIG_DRIVE_ERROR"


class PackagingError(XSContainerError):
    code = "PACKAGING_ERROR"
