"""Driver errors into domain errors at the boundary of every adapter, and a circuit breaker so
that a store that is down or hung costs a request at most one timeout.

Without the breaker a request that touches a hung store N times waits N timeouts (a feed read
with Redis hung took 12 s). With it, the first call that fails opens the breaker for a short
cool-down: every later call fails at once with the store's `StoreUnavailable`, which the domain
turns into a degraded answer or a 503. After the cool-down one call is let through as a probe;
its success closes the breaker.

Every failure is counted by store and kind (`feed_store_errors_total`): timeout, unavailable,
busy, or shed (refused by the open breaker without a call).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from newsfeed.errors import StoreUnavailable
from newsfeed.telemetry import NO_TELEMETRY, STORE_ERRORS, Telemetry

C = TypeVar("C", bound=type)

DEFAULT_COOL_DOWN_SECONDS = 2.0


def failure_kind(exc: BaseException) -> str:
    """ "timeout" when the driver gave up waiting (the exception or one it chains is a timeout),
    else "unavailable" (refused, reset, failing over). pymongo's server selection timeout is a
    timeout only when the server did not answer; a refused connection ends that way too."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        name = type(seen).__name__.lower()
        if "serverselection" in name:
            return "timeout" if "timed out" in str(seen) else "unavailable"
        if isinstance(seen, TimeoutError) or "timeout" in name:
            return "timeout"
        seen = seen.__cause__ or seen.__context__
    return "unavailable"


class StoreBreaker:
    """Per store client, shared by its threads. Open after a failure for `cool_down` seconds.
    `store` and `telemetry` say where its failures are counted."""

    def __init__(
        self,
        store: str = "",
        telemetry: Telemetry = NO_TELEMETRY,
        cool_down: float = DEFAULT_COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._telemetry = telemetry
        self._cool_down = cool_down
        self._clock = clock
        self._open_until = 0.0
        self._probing = False
        self._lock = threading.Lock()
        # Adapter methods call each other (author_lists -> read_candidates): only the outermost
        # call of a thread is guarded and counted.
        self._depth = threading.local()

    def allow(self) -> bool:
        """True if a call may go to the store: the breaker is closed, or this call is the one
        probe let through after the cool-down."""
        if self._open_until == 0.0:
            return True
        with self._lock:
            if self._open_until == 0.0:
                return True
            if self._clock() < self._open_until or self._probing:
                return False
            self._probing = True
            return True

    def failed(self) -> None:
        with self._lock:
            self._open_until = self._clock() + self._cool_down
            self._probing = False

    def succeeded(self) -> None:
        """The store answered (with a result, or an error that is not an outage)."""
        if self._open_until != 0.0:
            with self._lock:
                self._open_until = 0.0
                self._probing = False

    def record(self, kind: str) -> None:
        """Count one failed call of this store."""
        self._telemetry.count(STORE_ERRORS, store=self.store or "unknown", kind=kind)

    @property
    def is_open(self) -> bool:
        return self._open_until != 0.0

    def nested(self) -> bool:
        return getattr(self._depth, "n", 0) > 0

    def enter(self) -> None:
        self._depth.n = getattr(self._depth, "n", 0) + 1

    def leave(self) -> None:
        self._depth.n -= 1


def _wrap(
    method: Callable[..., Any],
    driver_errors: tuple[type[BaseException], ...],
    domain_error: type[StoreUnavailable],
    busy_errors: tuple[type[BaseException], ...] = (),
) -> Callable[..., Any]:
    # The driver's message (hosts, ports) stays in the chained cause, for the logs only.
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            breaker: StoreBreaker | None = getattr(self, "breaker", None)
            guarded = breaker is not None and not breaker.nested()
            if guarded and not breaker.allow():  # type: ignore[union-attr]
                breaker.record("shed")  # type: ignore[union-attr]
                raise domain_error()
            outcome = "answered"
            try:
                yield from method(self, *args, **kwargs)
            except driver_errors as exc:
                outcome = "failed"
                if breaker is not None:  # nested too: the outer call only fails, uncounted
                    breaker.record(failure_kind(exc))
                raise domain_error() from exc
            finally:
                # Also when the consumer stops early (GeneratorExit): a probe that is never
                # settled would keep the breaker open for good.
                if guarded:
                    if outcome == "failed":
                        breaker.failed()  # type: ignore[union-attr]
                    else:
                        breaker.succeeded()  # type: ignore[union-attr]

        return generator

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        breaker: StoreBreaker | None = getattr(self, "breaker", None)
        if breaker is None or breaker.nested():
            try:
                return method(self, *args, **kwargs)
            except (*busy_errors, *driver_errors) as exc:
                # Counted here, where the driver error is seen; the outer call only fails.
                busy = isinstance(exc, busy_errors)
                if breaker is not None:
                    breaker.record("busy" if busy else failure_kind(exc))
                error = domain_error()
                error.store_busy = busy  # the outer call leaves the breaker closed for it
                raise error from exc
        if not breaker.allow():
            breaker.record("shed")
            raise domain_error()
        breaker.enter()
        try:
            result = method(self, *args, **kwargs)
        except busy_errors as exc:
            # The store answered: it is busy (a lock wait or a statement past its timeout,
            # a deadlock). The caller may retry; other calls need not be failed fast.
            breaker.succeeded()
            breaker.record("busy")
            raise domain_error() from exc
        except driver_errors as exc:
            breaker.failed()
            breaker.record(failure_kind(exc))
            raise domain_error() from exc
        except domain_error as exc:  # from a nested call of the same adapter (counted there)
            if getattr(exc, "store_busy", False):
                breaker.succeeded()
            else:
                breaker.failed()
            raise
        except BaseException:
            breaker.succeeded()  # the store answered; the error is not an outage
            raise
        finally:
            breaker.leave()
        breaker.succeeded()
        return result

    return call


def unavailable_on(
    driver_errors: tuple[type[BaseException], ...],
    domain_error: type[StoreUnavailable],
    busy_errors: tuple[type[BaseException], ...] = (),
) -> Callable[[C], C]:
    """Class decorator: every public method re-raises `driver_errors` (a store that is down,
    hung past its timeout or failing over) as `domain_error`, and goes through the instance's
    `breaker` (a StoreBreaker) when it has one. `busy_errors` (subclasses the store raises while
    answering: lock and statement timeouts, deadlocks) become `domain_error` too but leave the
    breaker closed. Other driver errors (a bad query, a script bug) stay what they are: bugs,
    answered 500 and logged."""

    def decorate(cls: C) -> C:
        for name, member in list(vars(cls).items()):
            if name.startswith("_") or not inspect.isfunction(member):
                continue
            setattr(cls, name, _wrap(member, driver_errors, domain_error, busy_errors))
        return cls

    return decorate
