"""The circuit breaker of the store adapters: a failing store is given up on for a cool-down,
then probed once; nested adapter calls count once; non-outage errors keep it closed. Each
failure is counted (feed_store_errors_total) by kind: timeout, unavailable, busy or shed."""

from __future__ import annotations

import pytest

from feed_adapters.translate import StoreBreaker, failure_kind, unavailable_on
from newsfeed.errors import NotFound, TimelineStoreUnavailable
from newsfeed.telemetry import STORE_ERRORS
from tests.fakes.telemetry import RecordingTelemetry


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


# -- failure kinds and counting (feed_store_errors_total) ---------------------------------------


class ReadTimeout(Exception):
    """A driver's own timeout class, not a TimeoutError (redis-py's TimeoutError, httpx's
    ReadTimeout, botocore's ReadTimeoutError)."""


class ServerSelectionTimeoutError(Exception):
    """pymongo's: raised both when no server answered in time and when every server refused."""


def chained(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise exc from inner
    except BaseException as outer:
        return outer


def implicitly_chained(exc: BaseException, context: BaseException) -> BaseException:
    try:
        try:
            raise context
        except BaseException:
            raise exc  # noqa: B904 - the implicit __context__ is the point
    except BaseException as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError("timed out"), "timeout"),
        (ReadTimeout("read"), "timeout"),
        (chained(Down("giving up"), TimeoutError()), "timeout"),
        (chained(Down("giving up"), ReadTimeout()), "timeout"),
        (implicitly_chained(Down("while handling"), TimeoutError()), "timeout"),
        (chained(Down("a"), chained(Down("b"), TimeoutError())), "timeout"),
        (ConnectionRefusedError(111, "Connection refused"), "unavailable"),
        (ConnectionResetError(104, "Connection reset by peer"), "unavailable"),
        (Down("cannot reach the server"), "unavailable"),
        (chained(Down("giving up"), ConnectionRefusedError()), "unavailable"),
        (
            ServerSelectionTimeoutError(
                "127.0.0.1:27017: timed out (configured timeouts: socketTimeoutMS: 800.0ms, "
                "connectTimeoutMS: 800.0ms), Timeout: 0.8s"
            ),
            "timeout",
        ),
        (
            ServerSelectionTimeoutError(
                "127.0.0.1:21007: [Errno 111] Connection refused (configured timeouts: "
                "socketTimeoutMS: 800.0ms, connectTimeoutMS: 800.0ms), Timeout: 0.8s"
            ),
            "unavailable",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{type(v).__name__}({v})",
)
def test_failure_kind(exc: BaseException, kind: str) -> None:
    assert failure_kind(exc) == kind


def test_the_real_pymongo_selection_timeout_is_classified_by_its_message() -> None:
    from pymongo.errors import ServerSelectionTimeoutError as PyMongoSelectionTimeout

    assert failure_kind(PyMongoSelectionTimeout("localhost:1: timed out")) == "timeout"
    assert failure_kind(PyMongoSelectionTimeout("localhost:1: [Errno 111] refused")) == (
        "unavailable"
    )


@unavailable_on((Down, OSError), TimelineStoreUnavailable, (Busy,))
class CountedStore:
    def __init__(self, clock: Clock, telemetry: RecordingTelemetry) -> None:
        self.breaker = StoreBreaker("redis", telemetry, cool_down=2.0, clock=clock)
        self.fail: BaseException | None = None
        self.inner_fail: BaseException | None = None

    def read(self) -> str:
        if self.fail is not None:
            raise self.fail
        return "ok"

    def inner(self) -> str:
        if self.inner_fail is not None:
            raise self.inner_fail
        return "in"

    def outer(self) -> str:
        return self.inner() + self.inner()

    def outer_scan(self) -> list[int]:
        return list(self.scan())

    def scan(self):  # a generator method
        if self.fail is not None:
            raise self.fail
        yield 1


def kinds(telemetry: RecordingTelemetry) -> list[str]:
    assert all(s["store"] == "redis" for s in telemetry.label_sets(STORE_ERRORS))
    return [s["kind"] for s in telemetry.label_sets(STORE_ERRORS)]


def test_each_failure_is_counted_by_store_and_kind_and_shed_calls_too() -> None:
    clock, telemetry = Clock(), RecordingTelemetry()
    store = CountedStore(clock, telemetry)
    store.fail = TimeoutError()
    with pytest.raises(TimelineStoreUnavailable):
        store.read()
    assert kinds(telemetry) == ["timeout"]
    store.fail = None
    for _ in range(3):  # open: refused without a call
        with pytest.raises(TimelineStoreUnavailable):
            store.read()
    with pytest.raises(TimelineStoreUnavailable):
        list(store.scan())
    assert kinds(telemetry) == ["timeout", "shed", "shed", "shed", "shed"]
    assert telemetry.total(STORE_ERRORS) == 5
    clock.now += 2.1
    assert store.read() == "ok"  # the probe closes it; successes count nothing
    assert store.read() == "ok"
    assert telemetry.total(STORE_ERRORS) == 5


def test_a_generator_failure_is_counted_with_its_kind() -> None:
    telemetry = RecordingTelemetry()
    store = CountedStore(Clock(), telemetry)
    store.fail = ConnectionRefusedError()
    with pytest.raises(TimelineStoreUnavailable):
        list(store.scan())
    assert kinds(telemetry) == ["unavailable"]


def test_busy_is_counted_as_busy_and_leaves_the_breaker_closed() -> None:
    telemetry = RecordingTelemetry()
    store = CountedStore(Clock(), telemetry)
    store.fail = Busy("lock wait timeout")  # a subclass of Down, named nothing like a timeout
    for _ in range(2):
        with pytest.raises(TimelineStoreUnavailable):
            store.read()
    assert kinds(telemetry) == ["busy", "busy"]  # never "shed": the breaker stayed closed


def test_a_nested_calls_failure_is_counted_once() -> None:
    clock, telemetry = Clock(), RecordingTelemetry()
    store = CountedStore(clock, telemetry)
    store.inner_fail = TimeoutError()
    with pytest.raises(TimelineStoreUnavailable):
        store.outer()
    assert kinds(telemetry) == ["timeout"]
    assert store.breaker.is_open
    clock.now += 2.1
    store.inner_fail = Busy()
    with pytest.raises(TimelineStoreUnavailable):
        store.outer()  # the probe's nested call is busy: counted there, once
    assert kinds(telemetry) == ["timeout", "busy"]


def test_a_nested_busy_error_leaves_the_breaker_closed_as_a_direct_one_does() -> None:
    # unavailable_on: busy errors "become domain_error too but leave the breaker closed".
    telemetry = RecordingTelemetry()
    store = CountedStore(Clock(), telemetry)
    store.inner_fail = Busy("lock wait timeout")
    with pytest.raises(TimelineStoreUnavailable):
        store.outer()
    assert kinds(telemetry) == ["busy"]
    assert not store.breaker.is_open
    store.inner_fail = None
    assert store.outer() == "inin"  # not shed: the store answered, it was only busy


def test_a_nested_generators_failure_is_counted_once() -> None:
    telemetry = RecordingTelemetry()
    store = CountedStore(Clock(), telemetry)
    store.fail = TimeoutError()
    with pytest.raises(TimelineStoreUnavailable):
        store.outer_scan()
    assert store.breaker.is_open
    assert kinds(telemetry) == ["timeout"]


def test_errors_that_are_not_outages_count_nothing() -> None:
    telemetry = RecordingTelemetry()
    store = CountedStore(Clock(), telemetry)
    store.fail = NotFound("no such user")
    with pytest.raises(NotFound):
        store.read()
    store.fail = ValueError("a bug")
    with pytest.raises(ValueError):
        store.read()
    assert telemetry.measurements == []


def test_a_breaker_without_a_store_name_counts_under_unknown() -> None:
    telemetry = RecordingTelemetry()
    StoreBreaker(telemetry=telemetry).record("timeout")
    assert telemetry.label_sets(STORE_ERRORS) == [{"store": "unknown", "kind": "timeout"}]
