"""Which pymongo errors mean "the server is unavailable" (down, unreachable, timed out, no
primary), as opposed to a bad query."""

from __future__ import annotations

from pymongo import errors as mongo_errors

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    mongo_errors.ConnectionFailure,  # AutoReconnect, NetworkTimeout, ServerSelectionTimeout, ...
    mongo_errors.ExecutionTimeout,
    mongo_errors.WTimeoutError,
)
