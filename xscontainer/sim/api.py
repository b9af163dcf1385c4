"""The XenAPI surface: method table, dispatch rules, sessions, generic accessors, async tasks.

Method lookup follows xapi's generated dispatcher: ``cls.msg`` and ``cls_msg``, an ``Async.``
prefix only where xapi has an async form, MESSAGE_METHOD_UNKNOWN, then
MESSAGE_PARAMETER_COUNT_MISMATCH (counts exclude the session), then SESSION_INVALID.
Class-specific semantics live in ``devices``, ``events`` and ``plugins``.
"""

import logging
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from xscontainer.sim import datamodel as dm
from xscontainer.sim import rbac, rpc
from xscontainer.sim.db import Database
from xscontainer.sim.failures import XapiFailure

log = logging.getLogger(__name__)


class SimConfig(NamedTuple):
    directory: str
    username: str
    password: str
    plugins_dir: Optional[str]
    unix_socket: str
    vdi_dir: str
    inventories: Dict[str, str]          # host uuid -> inventory file
    dom0_roots: Dict[str, str]           # host uuid -> its dom0 tree (xscontainer.sim.dom0)


class Context(NamedTuple):
    session: str      # the caller's session ref ("" for session-less calls)
    preauth: bool     # arrived on the Unix socket
    method: str       # the wire name as called (without Async.)


class Method(NamedTuple):
    fn: Callable[..., Any]
    min_params: int
    max_params: int
    has_async: bool = False
    needs_session: bool = True
    locked: bool = True


class Api:
    """Owns the method table; ``call`` is what the XML-RPC layer invokes."""

    def __init__(self, db: Database, config: SimConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.methods = {}  # type: Dict[Tuple[str, str], Method]
        self._task_threads = []  # type: List[threading.Thread]
        self._task_lock = threading.Lock()
        self._classes_by_length = sorted(list(dm.TABLES) + ["event", "sim"], key=len,
                                         reverse=True)
        self.devices = None  # type: Any  # set by devices.register
        self._register_generic()
        self._register_session()
        # Late imports keep each module focused; they register their own methods.
        from xscontainer.sim import devices, events, faults, plugins, pool_update, rrdxapi
        self.users = rbac.Users()
        self.faults = None  # type: Any  # set by faults.register
        events.register(self)
        devices.register(self)
        plugins.register(self)
        faults.register(self)
        rbac.register(self)
        pool_update.register(self)
        rrdxapi.register(self)

    # ---- registration ---------------------------------------------------------------------
    def add(self, cls: str, msg: str, fn: Callable[..., Any], nparams: int,
            max_params: Optional[int] = None, has_async: bool = False,
            needs_session: bool = True, locked: bool = True) -> None:
        self.methods[(cls, msg)] = Method(fn, nparams, nparams if max_params is None
                                          else max_params, has_async, needs_session, locked)

    def _register_generic(self) -> None:
        for cls in dm.TABLES:
            fields = dm.CLASSES[cls]
            self.add(cls, "get_all", self._get_all(cls), 0)
            self.add(cls, "get_all_records", self._get_all_records(cls), 0)
            self.add(cls, "get_record", self._get_record(cls), 1)
            self.add(cls, "get_by_uuid", self._get_by_uuid(cls), 1)
            if cls == "message":
                continue  # xapi's message class has no field accessors
            if "name_label" in fields:
                self.add(cls, "get_by_name_label", self._get_by_name_label(cls), 1)
            for name, f in fields.items():
                self.add(cls, "get_" + name, self._getter(cls, name), 1)
                if not f.rw:
                    continue
                self.add(cls, "set_" + name, self._setter(cls, name), 2)
                if f.kind.kind == "map":
                    self.add(cls, "add_to_" + name, self._map_add(cls, name), 3)
                    self.add(cls, "remove_from_" + name, self._map_remove(cls, name), 2)
                elif f.kind.kind == "set":
                    self.add(cls, "add_" + name, self._set_member(cls, name, add=True), 2)
                    self.add(cls, "remove_" + name, self._set_member(cls, name, add=False), 2)

    def record(self, cls: str, ref: str) -> rpc.Marshalled:
        """The record as it goes on the wire (call with the lock held), marshalled once per
        change of the row: with a thousand VMs, each change of one went out to every event.from
        watcher, and marshalling it for each of them was a third of the simulator's CPU."""
        return self.db.derived(cls, ref, "xmlrpc", lambda row: rpc.marshalled(dm.encode_record(cls, row)))

    def _get_all(self, cls: str) -> Callable[..., Any]:
        return lambda ctx: self.db.refs(cls)

    def _get_all_records(self, cls: str) -> Callable[..., Any]:
        return lambda ctx: {ref: self.record(cls, ref) for ref in self.db.refs(cls)}

    def _get_record(self, cls: str) -> Callable[..., Any]:
        return lambda ctx, ref: self.record(cls, ref)

    def _get_by_uuid(self, cls: str) -> Callable[..., Any]:
        return lambda ctx, uuid: self.db.by_uuid_ref(cls, uuid)

    def _get_by_name_label(self, cls: str) -> Callable[..., Any]:
        def fn(ctx: Context, label: Any) -> List[str]:
            label = dm.decode(dm.Kind("string"), label, "label")
            return self.db.find(cls, name_label=label)
        return fn

    def _getter(self, cls: str, name: str) -> Callable[..., Any]:
        kind = dm.field(cls, name).kind
        return lambda ctx, ref: dm.encode(kind, self.db.get(cls, ref)[name])

    def _setter(self, cls: str, name: str) -> Callable[..., Any]:
        kind = dm.field(cls, name).kind

        def fn(ctx: Context, ref: Any, value: Any) -> None:
            self.db.get(cls, ref)
            self.set_field(cls, ref, name, dm.decode(kind, value, "value"))
        return fn

    def set_field(self, cls: str, ref: str, name: str, value: Any) -> None:
        """The hook for setters with side effects (e.g. pool.default_SR must be an SR)."""
        kind = dm.field(cls, name).kind
        if kind.kind == "ref" and value != dm.NULL_REF and kind.target in self.db.tables:
            self.db.get(kind.target, value)  # type: ignore
        self.db.set(cls, ref, name, value)

    def _map_add(self, cls: str, name: str) -> Callable[..., Any]:
        kind = dm.field(cls, name).kind

        def fn(ctx: Context, ref: Any, key: Any, value: Any) -> None:
            row = self.db.get(cls, ref)
            key = dm.decode(dm.Kind("string"), key, "key")
            value = dm.decode(kind.elem, value, "value")  # type: ignore
            if key in row[name]:
                raise XapiFailure("MAP_DUPLICATE_KEY", cls, name, ref, key)
            row[name][key] = value
            self.db.touch(cls, ref)
        return fn

    def _map_remove(self, cls: str, name: str) -> Callable[..., Any]:
        def fn(ctx: Context, ref: Any, key: Any) -> None:
            row = self.db.get(cls, ref)
            key = dm.decode(dm.Kind("string"), key, "key")
            if key in row[name]:  # a missing key is a no-op, as in xapi
                del row[name][key]
                self.db.touch(cls, ref)
        return fn

    def _set_member(self, cls: str, name: str, add: bool) -> Callable[..., Any]:
        """add_<set> (``add``) or remove_<set>: adding a member already there, or removing one
        that is not, is a no-op, as in xapi."""
        kind = dm.field(cls, name).kind

        def fn(ctx: Context, ref: Any, value: Any) -> None:
            row = self.db.get(cls, ref)
            value = dm.decode(kind.elem, value, "value")  # type: ignore
            if (value in row[name]) != add:
                if add:
                    row[name].append(value)
                else:
                    row[name].remove(value)
                self.db.touch(cls, ref)
        return fn

    # ---- sessions -------------------------------------------------------------------------
    def _register_session(self) -> None:
        self.add("session", "login_with_password", self._login, 2, 4, needs_session=False)
        self.add("session", "slave_local_login_with_password", self._login, 2,
                 needs_session=False)
        self.add("session", "logout", self._logout, 0)
        self.add("session", "local_logout", self._logout, 0)
        self.add("session", "get_this_host", lambda ctx, ref: self.db.get("session", ref)
                 ["this_host"], 1)

    def master(self) -> str:
        return self.db.get("pool", self.db.refs("pool")[0])["master"]

    def _login(self, ctx: Context, uname: Any, pwd: Any, version: Any = "1.0",
               originator: Any = "") -> str:
        uname = dm.decode(dm.Kind("string"), uname, "uname")
        pwd = dm.decode(dm.Kind("string"), pwd, "pwd")
        role = None  # root: the local superuser
        if not ctx.preauth and (uname != self.config.username or pwd != self.config.password):
            role = self.users.role_for_login(uname, pwd)
            if role is None:
                raise XapiFailure("SESSION_AUTHENTICATION_FAILED", uname,
                                  "Authentication failure")
        now = dm.now_string(self.clock)
        ref = self.db.create("session", {
            "this_host": self.master(), "last_active": now, "validation_time": now,
            "is_local_superuser": role is None, "auth_user_name": uname,
            "originator": originator if isinstance(originator, str) else "",
        })
        if role is not None:
            self.users.opened(ref, role)
        log.info("session %s opened for %s (%s)", ref, uname,
                 "unix socket" if ctx.preauth else "tcp")
        return ref

    def _logout(self, ctx: Context) -> None:
        self.db.destroy("session", ctx.session)
        self.users.closed(ctx.session)

    # ---- dispatch -------------------------------------------------------------------------
    def resolve(self, name: str) -> Tuple[Optional[Method], bool, str]:
        is_async = False
        for prefix in ("Async.", "InternalAsync."):
            if name.startswith(prefix):
                is_async, name = True, name[len(prefix):]
                break
        if "." in name:
            cls, _, msg = name.partition(".")
            return self.methods.get((cls, msg)), is_async, name
        if not is_async:
            for cls in self._classes_by_length:
                if name.startswith(cls + "_"):
                    method = self.methods.get((cls, name[len(cls) + 1:]))
                    if method is not None:
                        return method, False, name
        return None, is_async, name

    def call(self, wire_name: str, params: Tuple[Any, ...], preauth: bool) -> Any:
        method, is_async, name = self.resolve(wire_name)
        if method is None:
            raise XapiFailure("MESSAGE_METHOD_UNKNOWN", wire_name)
        received = len(params) - (1 if method.needs_session else 0)
        if not method.min_params <= received <= method.max_params:
            raise XapiFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", name, method.min_params,
                              max(received, 0))
        session = ""
        if method.needs_session:
            session = params[0]
            with self.db.lock:
                if not self.db.exists("session", session):
                    raise XapiFailure("SESSION_INVALID", session)
            params = params[1:]
            self._check_role(session, method)
        if is_async and not method.has_async:
            raise XapiFailure("Fault", "No async mode for this operation (rpc: %s)" % wire_name)
        ctx = Context(session, preauth, name)
        if is_async:
            return self._start_task(ctx, method, params)
        return self.invoke(method, ctx, params)

    def _check_role(self, session: str, method: Method) -> None:
        """xapi's RBAC check (rbac.ml), for the sessions of users added with a role."""
        if self.users.role_of(session) != "read-only":
            return
        cls, msg = next(key for key, m in self.methods.items() if m is method)
        if not rbac.read_only_may(cls, msg):
            raise rbac.permission_denied(cls, msg)

    def invoke(self, method: Method, ctx: Context, params: Tuple[Any, ...]) -> Any:
        if method.locked:
            with self.db.lock:
                return method.fn(ctx, *params)
        return method.fn(ctx, *params)

    # ---- async tasks ----------------------------------------------------------------------
    def _start_task(self, ctx: Context, method: Method, params: Tuple[Any, ...]) -> str:
        with self.db.lock:
            task = self.db.create("task", {
                "name_label": "Async." + ctx.method, "created": dm.now_string(self.clock),
                "status": "pending", "resident_on": self.master(), "progress": 0.0,
                "type": "", "result": "", "error_info": [],
            })
        thread = threading.Thread(target=self._run_task, args=(task, ctx, method, params),
                                  name="sim-task", daemon=True)
        with self._task_lock:
            self._task_threads = [t for t in self._task_threads if t.is_alive()]
            self._task_threads.append(thread)
        thread.start()
        return task

    def _run_task(self, task: str, ctx: Context, method: Method,
                  params: Tuple[Any, ...]) -> None:
        try:
            result = self.invoke(method, ctx, params)
            updates = {"status": "success", "result": rpc.value_xml(result)}
        except XapiFailure as exc:
            updates = {"status": "cancelled" if exc.details[0] == "TASK_CANCELLED"
                       else "failure", "error_info": exc.details}
        except Exception as exc:  # reported through the task, as xapi does
            log.exception("task %s failed", task)
            updates = {"status": "failure",
                       "error_info": ["INTERNAL_ERROR", "%s: %s" % (type(exc).__name__, exc)]}
        self.finish_task(task, updates)

    def finish_task(self, task: str, updates: Dict[str, Any]) -> None:
        with self.db.lock:
            if not self.db.exists("task", task):
                return  # destroyed meanwhile
            row = self.db.get("task", task)
            row.update(updates)
            row["progress"] = 1.0
            row["finished"] = dm.now_string(self.clock)
            self.db.touch("task", task)

    def create_task(self, label: str) -> str:
        with self.db.lock:
            return self.db.create("task", {
                "name_label": label, "created": dm.now_string(self.clock),
                "status": "pending", "resident_on": self.master(), "progress": 0.0})

    def join_tasks(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._task_lock:
            threads = list(self._task_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
