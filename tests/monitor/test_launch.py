"""Watchers started together connect once they are all started (Services.holding_connects)."""

import threading

from xscontainer.monitor.service import MonitorOptions, Services


def services(slots):
    return Services(None, None, None, MonitorOptions(max_concurrent_connects=slots), lambda: 0.0, None)


def test_no_watcher_connects_while_a_batch_of_watchers_starts():
    shared = services(3)
    with shared.holding_connects(1000):
        assert not shared.connect_slots.acquire(blocking=False)
    for _ in range(3):  # every slot is back afterwards
        assert shared.connect_slots.acquire(blocking=False)


def test_connections_under_way_go_on_and_keep_their_slots():
    shared = services(3)
    assert shared.connect_slots.acquire(blocking=False)  # a watcher connecting already
    with shared.holding_connects(50):
        assert not shared.connect_slots.acquire(blocking=False)
    shared.connect_slots.release()
    for _ in range(3):
        assert shared.connect_slots.acquire(blocking=False)


def test_a_single_new_watcher_is_not_held_back():
    shared = services(2)
    started = threading.Event()
    with shared.holding_connects(1):
        assert shared.connect_slots.acquire(blocking=False)
        started.set()
        shared.connect_slots.release()
    assert started.is_set()
