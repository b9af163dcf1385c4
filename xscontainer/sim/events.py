"""``event.from``, ``event.inject``, ``event.get_current_id`` (contract §7.1, §7.3).

Tokens are ``"%020d,%020d"`` (DB generation, message generation). Changes after the token's
generation coalesce per object into one add, mod or del; a blocked call waits on the
database's condition and fails with SESSION_INVALID once its session is gone.

Like xapi, a call batches: it looks at the database only after a delay, and again after a delay
each time it wakes up without events (``batching_delays``), so the changes of a burst come back
together instead of one call each.
"""

import re
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from xscontainer.sim import datamodel as dm
from xscontainer.sim.failures import XapiFailure
from xscontainer.sim.rpc import I4

# Tables without events in the result's valid_ref_counts (messages are not DB rows in xapi).
_NOT_COUNTED = ("message",)
_INT64 = re.compile(r"^\s*[-+]?[0-9]+\s*$")
# (before the first look, the longest delay between looks), in seconds: xapi's defaults
# event_from_delay and event_from_task_delay (ocaml/xapi/xapi_globs.ml, since v26.10.0; before
# that no delay before the first look and 50 ms after each wake-up).
EVENT_FROM_DELAY = (0.05, 0.05)
EVENT_FROM_TASK_DELAY = (0.0, 0.05)  # a subscription to tasks alone: its answer is awaited


def parse_token(token: Any) -> Tuple[int, int]:
    if not isinstance(token, str):
        raise XapiFailure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)
    parts = token.split(",")
    if parts == [""]:
        return 0, 0
    if len(parts) != 2 or not all(_INT64.match(p) for p in parts):
        raise XapiFailure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)
    return int(parts[0]), int(parts[1])


def parse_subscriptions(classes: Any) -> List[Tuple[str, Optional[str]]]:
    """[(lower-case class or "*", object ref or None)]."""
    if not isinstance(classes, list):
        raise XapiFailure("FIELD_TYPE_ERROR", "classes")
    subs = []
    for item in classes:
        if not isinstance(item, str):
            raise XapiFailure("EVENT_SUBSCRIPTION_PARSE_FAILURE", item)
        if item == "*":
            subs.append(("*", None))
            continue
        parts = item.split("/")
        if len(parts) == 1:
            subs.append((parts[0].lower(), None))
        elif len(parts) == 2:
            subs.append((parts[0].lower(), parts[1]))
        else:
            raise XapiFailure("EVENT_SUBSCRIPTION_PARSE_FAILURE", item)
    return subs


def _wanted(subs: List[Tuple[str, Optional[str]]], table: str, ref: str) -> bool:
    lower = table.lower()
    for cls, obj in subs:
        if cls == "*" or (cls == lower and (obj is None or obj == ref)):
            return True
    return False


def _subscribed(subs: List[Tuple[str, Optional[str]]], table: str) -> bool:
    lower = table.lower()
    return any(cls == "*" or cls == lower for cls, _ in subs)


def collect(api: Any, subs: List[Tuple[str, Optional[str]]], last: int,
            last_msg: int) -> List[Dict[str, Any]]:
    db = api.db
    messages, adds, mods, dels = [], [], [], []  # type: ignore
    for table in dm.TABLES:
        if not _subscribed(subs, table):
            continue
        is_msg = table == "message"
        added, modified, deleted = db.changes_since(table, last_msg if is_msg else last)
        for op, refs, out in (("add", added, adds), ("mod", modified, mods),
                              ("del", deleted, dels)):
            for ref in refs:
                if not _wanted(subs, table, ref):
                    continue
                if op == "del":
                    gen = db.tombs[table][ref][1]
                else:
                    gen = db.stamps[table][ref][1]
                event = {"id": "0" if is_msg else str(gen), "timestamp": "0.0",
                         "class": table.lower(), "operation": op, "ref": ref}
                if op != "del":
                    event["snapshot"] = api.record(table, ref)
                (messages if is_msg else out).append(event)
    return messages + adds + mods + dels


def batching_delays(subs: List[Tuple[str, Optional[str]]]) -> Iterator[float]:
    """The delay before each look at the database: xapi's Throttle.Batching.with_recursive_loop
    (ocaml/xapi-aux/throttle.ml): ``before`` once, then from ``between``/8 doubling up to
    ``between``."""
    task_only = all(cls == "task" for cls, _ in subs)
    before, between = EVENT_FROM_TASK_DELAY if task_only else EVENT_FROM_DELAY
    yield before
    delay = between / 16
    while True:
        delay = min(between, 2 * delay)
        yield delay


def event_from(api: Any, ctx: Any, classes: Any, token: Any, timeout: Any) -> Dict[str, Any]:
    subs = parse_subscriptions(classes)
    last, last_msg = parse_token(token)
    timeout = dm.decode(dm.Kind("float"), timeout, "timeout")
    deadline = time.monotonic() + max(0.0, timeout)
    db = api.db
    for delay in batching_delays(subs):
        if delay:
            time.sleep(delay)
        with db.lock:
            if not db.exists("session", ctx.session):
                raise XapiFailure("SESSION_INVALID", ctx.session)
            events = collect(api, subs, last, last_msg)
            remaining = deadline - time.monotonic()
            if events or remaining <= 0 or db.closing:
                return {
                    "events": events,
                    "valid_ref_counts": {t.lower(): I4(len(db.tables[t])) for t in dm.TABLES
                                         if t not in _NOT_COUNTED},
                    "token": db.token(),
                }
            db.blocked_event_calls += 1
            try:
                db.changed.wait(remaining)
            finally:
                db.blocked_event_calls -= 1
    raise AssertionError("batching_delays never ends")


def inject(api: Any, ctx: Any, cls: Any, ref: Any) -> str:
    table = next((t for t in dm.TABLES if isinstance(cls, str) and t.lower() == cls.lower()),
                 None)
    if table is None or not api.db.exists(table, ref):
        raise XapiFailure("HANDLE_INVALID", cls, ref)
    gen = api.db.touch(table, ref)
    return "%020d,%020d" % (gen - 1, 0)


def register(api: Any) -> None:
    # event.from blocks: it takes the lock itself and waits on the condition.
    api.add("event", "from", lambda ctx, *a: event_from(api, ctx, *a), 3, locked=False)
    api.add("event", "inject", lambda ctx, *a: inject(api, ctx, *a), 2)
    api.add("event", "get_current_id", lambda ctx: str(api.db.generation), 0)
    # Not in xapi: lets a test act once a call is known to wait instead of sleeping and hoping.
    api.add("sim", "blocked_event_calls", lambda ctx: I4(api.db.blocked_event_calls), 0)
