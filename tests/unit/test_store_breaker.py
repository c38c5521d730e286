"""The circuit breaker of the store adapters: a failing store is given up on for a cool-down,
then probed once; nested adapter calls count once; non-outage errors keep it closed."""

from __future__ import annotations

import pytest

from feed_adapters.translate import StoreBreaker, unavailable_on
from newsfeed.errors import NotFound, TimelineStoreUnavailable


class Down(Exception):
    """A driver's "cannot reach the server"."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@unavailable_on((Down,), TimelineStoreUnavailable)
class Store:
    def __init__(self, clock: Clock) -> None:
        self.breaker = StoreBreaker(cool_down=2.0, clock=clock)
        self.calls = 0
        self.fail: Exception | None = None

    def read(self) -> str:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return "ok"

    def read_twice(self) -> str:
        return self.read() + self.read()

    def scan(self):  # a generator method
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        yield 1


def test_one_failure_opens_it_for_the_cool_down_then_one_probe_closes_it() -> None:
    clock = Clock()
    store = Store(clock)
    store.fail = Down()
    with pytest.raises(TimelineStoreUnavailable):
        store.read()
    store.fail = None
    with pytest.raises(TimelineStoreUnavailable):  # open: not even tried
        store.read()
    with pytest.raises(TimelineStoreUnavailable):
        list(store.scan())
    assert store.calls == 1
    clock.now += 2.1
    assert store.read() == "ok"  # the probe
    assert not store.breaker.is_open and store.calls == 2


def test_a_failed_probe_keeps_it_open() -> None:
    clock = Clock()
    store = Store(clock)
    store.fail = Down()
    with pytest.raises(TimelineStoreUnavailable):
        store.read()
    clock.now += 2.1
    with pytest.raises(TimelineStoreUnavailable):
        store.read()  # probe fails
    store.fail = None
    with pytest.raises(TimelineStoreUnavailable):
        store.read()
    assert store.calls == 2


def test_nested_calls_are_one_call_and_a_nested_failure_opens_it() -> None:
    clock = Clock()
    store = Store(clock)
    assert store.read_twice() == "okok"
    store.fail = Down()
    with pytest.raises(TimelineStoreUnavailable):
        store.read_twice()
    assert store.breaker.is_open and store.calls == 3
    clock.now += 2.1
    store.fail = None
    assert store.read_twice() == "okok"  # the probe's nested calls are let through
    assert not store.breaker.is_open


def test_errors_that_are_not_outages_leave_it_closed() -> None:
    store = Store(Clock())
    store.fail = NotFound("no such user")
    with pytest.raises(NotFound):
        store.read()
    store.fail = ValueError("a bug")
    with pytest.raises(ValueError):
        store.read()
    assert not store.breaker.is_open


def test_a_generator_probe_closes_it_and_one_stopped_early_does_not_pin_it_open() -> None:
    clock = Clock()
    store = Store(clock)
    store.fail = Down()
    with pytest.raises(TimelineStoreUnavailable):
        store.read()
    store.fail = None
    clock.now += 2.1
    assert list(store.scan()) == [1]  # the probe is a generator that runs to its end
    assert not store.breaker.is_open
    store.fail = Down()
    with pytest.raises(TimelineStoreUnavailable):
        store.read()
    store.fail = None
    clock.now += 2.1
    scan = store.scan()
    next(scan)
    scan.close()  # the consumer stops early
    assert store.read() == "ok"


class Busy(Down):
    """A driver's "the server answered: lock wait timed out" (a subclass of its outage type)."""


@unavailable_on((Down,), TimelineStoreUnavailable, (Busy,))
class BusyStore:
    def __init__(self, clock: Clock) -> None:
        self.breaker = StoreBreaker(cool_down=2.0, clock=clock)
        self.fail: Exception | None = None

    def read(self) -> str:
        if self.fail is not None:
            raise self.fail
        return "ok"


def test_a_busy_store_is_unavailable_to_the_caller_but_not_given_up_on() -> None:
    store = BusyStore(Clock())
    store.fail = Busy()
    with pytest.raises(TimelineStoreUnavailable):
        store.read()
    assert not store.breaker.is_open  # the next call still goes to the store
    store.fail = None
    assert store.read() == "ok"
