"""The simulator's one failure type: an xapi ErrorDescription (code plus string parameters)."""

from typing import Any, List


class XapiFailure(Exception):
    """Raised anywhere in the simulator; the dispatcher turns it into a Failure envelope."""

    def __init__(self, code: str, *params: Any) -> None:
        self.details = [code] + [str(p) for p in params]  # type: List[str]
        super().__init__(self.details)


def handle_invalid(cls: str, ref: Any) -> XapiFailure:
    return XapiFailure("HANDLE_INVALID", cls, ref)
