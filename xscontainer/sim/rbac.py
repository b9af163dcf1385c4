"""A minimal RBAC (a documented deviation: xapi's roles come from external authentication).

``sim.add_user(name, password, role)`` adds a user who logs in over TCP; a ``read-only`` user's
session may read (``get_*``, ``event.*`` but ``inject``, ``session.*``) and gets xapi's
``RBAC_PERMISSION_DENIED [permission, message]`` (``rbac.ml``) for anything else.
"""

import threading
from typing import Any, Dict, Optional, Tuple

from xscontainer.sim import datamodel as dm
from xscontainer.sim.failures import XapiFailure

ROLES = ("pool-admin", "read-only")
# Roles holding a permission, listed as xapi lists them (Datamodel_roles order). Exact for the
# calls xscontainer makes; other classes get their class default or the pool-operator one.
_VM_ADMIN = "pool-admin, pool-operator, vm-power-admin, vm-admin"
_ROLES_OF = {"host.call_plugin": "pool-admin"}
_CLASS_ROLES = {"vm": _VM_ADMIN}
_POOL_OP = "pool-admin, pool-operator"


def permission_denied(cls: str, msg: str) -> XapiFailure:
    permission = ("%s.%s" % (cls, msg)).lower()
    roles = _ROLES_OF.get(permission, _CLASS_ROLES.get(cls.lower(), _POOL_OP))
    return XapiFailure("RBAC_PERMISSION_DENIED", permission,
                       "No permission in user session. (Roles with this permission: %s)" % roles)


def read_only_may(cls: str, msg: str) -> bool:
    if cls == "session" or (cls == "event" and msg != "inject"):
        return True
    return msg.startswith("get_")


class Users:
    """The added users and the role of each of their sessions (kept in memory only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = {}  # type: Dict[str, Tuple[str, str]]
        self._sessions = {}  # type: Dict[str, str]

    def add(self, name: str, password: str, role: str) -> None:
        with self._lock:
            self._users[name] = (password, role)

    def role_for_login(self, name: str, password: str) -> Optional[str]:
        with self._lock:
            entry = self._users.get(name)
        return entry[1] if entry is not None and entry[0] == password else None

    def opened(self, session: str, role: str) -> None:
        with self._lock:
            self._sessions[session] = role

    def closed(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)

    def role_of(self, session: str) -> Optional[str]:
        with self._lock:
            return self._sessions.get(session)


def register(api: Any) -> None:
    string = dm.Kind("string")

    def add_user(ctx: Any, name: Any, password: Any, role: Any) -> None:
        name = dm.decode(string, name, "name")
        password = dm.decode(string, password, "password")
        role = dm.decode(string, role, "role")
        if role not in ROLES:
            raise XapiFailure("INVALID_VALUE", "role", role)
        if name == api.config.username:
            raise XapiFailure("INVALID_VALUE", "name", name)
        api.users.add(name, password, role)

    api.add("sim", "add_user", add_user, 3)
