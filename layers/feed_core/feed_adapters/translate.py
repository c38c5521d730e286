"""Driver errors into domain errors, at the boundary of every adapter."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from newsfeed.errors import StoreUnavailable

C = TypeVar("C", bound=type)


def _wrap(
    method: Callable[..., Any],
    driver_errors: tuple[type[BaseException], ...],
    domain_error: type[StoreUnavailable],
) -> Callable[..., Any]:
    # The driver's message (hosts, ports) stays in the chained cause, for the logs only.
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from method(*args, **kwargs)
            except driver_errors as exc:
                raise domain_error() from exc

        return generator

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except driver_errors as exc:
            raise domain_error() from exc

    return call


def unavailable_on(
    driver_errors: tuple[type[BaseException], ...], domain_error: type[StoreUnavailable]
) -> Callable[[C], C]:
    """Class decorator: every public method re-raises `driver_errors` (a store that is down,
    hung past its timeout or failing over) as `domain_error`. Other driver errors (a bad query,
    a script bug) stay what they are: bugs, answered 500 and logged."""

    def decorate(cls: C) -> C:
        for name, member in list(vars(cls).items()):
            if name.startswith("_") or not inspect.isfunction(member):
                continue
            setattr(cls, name, _wrap(member, driver_errors, domain_error))
        return cls

    return decorate
